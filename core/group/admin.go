package group

import (
	"slices"
	"strings"

	"github.com/pingcap/failpoint"
)

// Leave handles LeaveGroup v0-v5. v0-v2 handlers pass one LeaveMember and
// answer SingleErrorCode(); v3+ answer per member. A member named by
// instance id alone (MemberID "") is removed administratively.
func (c *Coordinator) Leave(req LeaveRequest) LeaveResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return LeaveResponse{ErrorCode: errNotCoordinator}
	}
	if len(req.Members) > LeaveMembersMax {
		return LeaveResponse{ErrorCode: errInvalidRequest}
	}
	g := c.groups[req.Group]
	out := LeaveResponse{Members: make([]LeaveMemberResult, len(req.Members))}
	for i, lm := range req.Members {
		out.Members[i] = LeaveMemberResult{MemberID: lm.MemberID, InstanceID: lm.InstanceID}
		if g == nil {
			out.Members[i].ErrorCode = errUnknownMemberID
			continue
		}
		out.Members[i].ErrorCode = c.leaveOne(g, lm)
	}
	return out
}

func (c *Coordinator) leaveOne(g *group, lm LeaveMember) int16 {
	reason := "member left: " + lm.Reason
	if lm.MemberID == "" {
		id, ok := g.static[lm.InstanceID]
		if lm.InstanceID == "" || !ok {
			return errUnknownMemberID
		}
		c.removeMember(g, g.members[id], reason)
		return errNone
	}
	if _, ok := g.pending[lm.MemberID]; ok {
		c.removePending(g, lm.MemberID)
		c.tryCompleteJoin(g)
		return errNone
	}
	if code := g.validateMember(lm.MemberID, lm.InstanceID); code != errNone {
		return code
	}
	c.removeMember(g, g.members[lm.MemberID], reason)
	return errNone
}

// Describe handles DescribeGroups, one description per requested group.
func (c *Coordinator) Describe(groups []string) []GroupDescription {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]GroupDescription, len(groups))
	for i, id := range groups {
		out[i] = GroupDescription{Group: id, State: Dead}
		if c.closed {
			out[i].ErrorCode = errNotCoordinator
			continue
		}
		if g := c.groups[id]; g != nil {
			out[i] = g.describe()
		} else if g := c.cgroups[id]; g != nil {
			out[i] = g.describeClassic()
		}
	}
	return out
}

func (g *group) describe() GroupDescription {
	d := GroupDescription{
		Group:        g.id,
		Known:        true,
		State:        g.state,
		ProtocolType: g.protocolType,
		Generation:   g.generation,
	}
	if g.state == Stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost}
		if g.state == Stable {
			md.Metadata = slices.Clone(m.metadata(g.protocol))
			md.Assignment = slices.Clone(m.assignment)
		}
		d.Members = append(d.Members, md)
	}
	return d
}

// describeClassic is a consumer group as DescribeGroups shows it (Kafka
// does the same): protocol type "consumer", the consumer state's name, the
// members without metadata or assignment bytes. State is the nearest
// classic state (Empty, Stable, else PreparingRebalance) for callers that
// reason in classic states (OffsetDelete then treats every topic as
// subscribed while there are members).
func (g *cgroup) describeClassic() GroupDescription {
	st := g.state()
	d := GroupDescription{Group: g.id, Known: true, ProtocolType: ConsumerProtocolType, Generation: g.epoch, StateName: st.String(), State: PreparingRebalance}
	switch st {
	case ConsumerEmpty:
		d.State = Empty
	case ConsumerStable:
		d.State = Stable
	}
	for _, m := range g.sortedMembers() {
		d.Members = append(d.Members, MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost})
	}
	return d
}

// ConsumerProtocolType is the protocol type consumer-protocol groups show
// in DescribeGroups and ListGroups.
const ConsumerProtocolType = "consumer"

// ListConsumer lists the consumer-protocol groups (ListGroups; Type
// "consumer") whose state name is in states (case-insensitive; all when
// empty), ordered by id.
func (c *Coordinator) ListConsumer(states []string) []GroupListing {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []GroupListing
	ids := make([]string, 0, len(c.cgroups))
	for id := range c.cgroups {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		st := c.cgroups[id].state().String()
		if len(states) == 0 || slices.ContainsFunc(states, func(s string) bool { return strings.EqualFold(s, st) }) {
			out = append(out, GroupListing{Group: id, ProtocolType: ConsumerProtocolType, StateName: st, Type: "consumer"})
		}
	}
	return out
}

// List handles ListGroups: the groups held here whose state is in states
// (all when states is empty), ordered by id. The handler parses the v4+
// states filter with ParseState (unknown names match nothing).
func (c *Coordinator) List(states []State) []GroupListing {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []GroupListing
	for _, g := range c.sortedGroups() {
		if len(states) == 0 || slices.Contains(states, g.state) {
			out = append(out, GroupListing{Group: g.id, ProtocolType: g.protocolType, State: g.state, StateName: g.state.String(), Type: "classic"})
		}
	}
	return out
}

// Delete handles DeleteGroups' membership side: only Empty groups may go
// (NON_EMPTY_GROUP otherwise); GROUP_ID_NOT_FOUND for a group not held
// here. The handler deletes committed offsets itself, and may treat
// GROUP_ID_NOT_FOUND as success when the offset store knows the group. A
// deleted group's tombstone record is written asynchronously: the
// handler waits for DeleteResult.Written before it answers.
func (c *Coordinator) Delete(groups []string) []DeleteResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]DeleteResult, len(groups))
	for i, id := range groups {
		out[i].Group = id
		g := c.groups[id]
		cg := c.cgroups[id]
		switch {
		case c.closed:
			out[i].ErrorCode = errNotCoordinator
		case id == "":
			out[i].ErrorCode = errInvalidGroupID
		case cg != nil && len(cg.members) > 0:
			out[i].ErrorCode = errNonEmptyGroup
		case cg != nil:
			c.killConsumerGroup(cg)
			delete(c.cgroups, id)
			out[i].Written = c.persistDeleted(id)
			c.log.Info("group: deleted", "group", id)
		case g == nil && c.unwritten[id] != 0 && c.unwritten[id] == c.termOf(id):
			// a retry of a deletion whose tombstone failed
			out[i].Written = c.persistDeleted(id)
			c.log.Info("group: deletion retried", "group", id)
		case g == nil:
			out[i].ErrorCode = errGroupIDNotFound
		case g.state != Empty:
			out[i].ErrorCode = errNonEmptyGroup
		default:
			c.killGroup(g, errCoordinatorUnavailable)
			delete(c.groups, id)
			out[i].Written = c.persistDeleted(id)
			c.log.Info("group: deleted", "group", id)
		}
	}
	return out
}

// persistDeleted writes deleted group id's tombstone and returns the
// channel that receives the write's outcome (nil: nothing written). A
// failed write is remembered in unwritten for a retried DeleteGroups,
// unless the group was created again meanwhile.
func (c *Coordinator) persistDeleted(id string) <-chan error {
	ch := make(chan error, 1)
	term := c.termOf(id)
	delete(c.unwritten, id)
	done := func(err error) {
		c.mu.Lock()
		if err != nil && c.groups[id] == nil && c.cgroups[id] == nil && c.termOf(id) == term {
			c.unwritten[id] = term
		}
		c.mu.Unlock()
		ch <- err
	}
	if !c.persistGoneDone(id, done) {
		return nil
	}
	return ch
}

// ValidateCommit checks an OffsetCommit (v0-v9) for the group, as Kafka's
// GroupCoordinator.handleCommitOffsets does, and returns the error code for
// every partition (0: commit). generation -1 with no member id is a simple
// (admin, or non-group-managed consumer) commit: allowed when the group is
// Empty or unknown here. A valid member's commit also counts as a
// heartbeat. Unlike Kafka, a commit to an unknown group does not create an
// Empty group: offsets-only groups live in the offset store. A member of
// an earlier coordinator tenure (BeginTenure) may commit until the group
// completes a join phase in this tenure.
func (c *Coordinator) ValidateCommit(group, memberID, instanceID string, generation int32) int16 {
	return c.ValidateOffsetCommit(group, memberID, instanceID, generation, 8)
}

// ValidateOffsetCommit is ValidateCommit knowing the request version: a
// consumer-protocol group's commit is checked by member epoch (v9+; older
// versions get UNSUPPORTED_VERSION), see validateConsumerCommit. A v9+
// commit with a member id to a group not held here is accepted: its
// member may be of a consumer group of an earlier tenure that had no
// record to load, which rejoins at its next heartbeat.
func (c *Coordinator) ValidateOffsetCommit(group, memberID, instanceID string, generation int32, version int16) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errNotCoordinator
	}
	if cg := c.cgroups[group]; cg != nil {
		return c.validateConsumerCommit(cg, memberID, generation, version)
	}
	if version >= 9 && c.groups[group] == nil && memberID != "" && generation >= 0 {
		return errNone
	}
	failpoint.Inject("validateCommit", func(v failpoint.Value) {
		if code, ok := v.(int); ok {
			failpoint.Return(int16(code))
		}
	})
	g := c.groups[group]
	if g == nil {
		if generation < 0 || c.memberFromEarlierTenure(group, memberID) {
			return errNone // a member of an earlier tenure: see below
		}
		return errIllegalGeneration
	}
	if g.fenced(instanceID, memberID) {
		return errFencedInstanceID
	}
	if generation < 0 && g.state == Empty {
		return errNone
	}
	if g.state == CompletingRebalance {
		return errRebalanceInProgress
	}
	m := g.members[memberID]
	if m == nil {
		// A member of an earlier tenure commits what it consumed before
		// rejoining (an eager consumer's revoke), as it would have under
		// the coordinator that knew it: accepted until the group completes
		// its first join phase here, when every member that went on
		// consuming has rejoined under a new id. It cannot be validated
		// (its group had no record to load); see doc.go, "Coordinator moves".
		if g.generation == 0 && c.memberFromEarlierTenure(group, memberID) {
			return errNone
		}
		return errUnknownMemberID
	}
	if generation != g.generation {
		return errIllegalGeneration
	}
	c.armSession(g, m, m.session)
	return errNone
}

// Known reports whether this coordinator, in its tenure of term of the
// group's shard, knows
// group's membership: it has held the group since the tenure began
// (loaded from its record, or created since), so Active's answer is
// final. A group not held may have members of an earlier tenure that
// have not rejoined yet (a consumer group, or one whose record was not
// written).
func (c *Coordinator) Known(term uint64, group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.closed && term != 0 && c.termOf(group) == term && c.groups[group] != nil
}

// Active reports whether group is held here with members (or members
// awaiting their id), or whether the coordinator is closed and cannot
// tell: the committed offsets of an active group never expire (the offset
// expiry pass, core/node/offsetexpiry.go, asks this).
func (c *Coordinator) Active(group string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return true
	}
	if cg := c.cgroups[group]; cg != nil {
		return len(cg.members) > 0
	}
	g := c.groups[group]
	return g != nil && (len(g.members) > 0 || len(g.pending) > 0 || g.state != Empty)
}
