package group

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ConsumerHeartbeat handles ConsumerGroupHeartbeat (KIP-848): join (epoch
// 0), heartbeat, leave (-1) and static leave (-2). In a tenure with
// Options.Persist a successful join or heartbeat whose answer reflects a
// change of the group's record is answered only once that record
// committed (consumer_persist.go); otherwise it never blocks. A non-nil
// error is only ever ctx.Err(): the caller has gone.
func (c *Coordinator) ConsumerHeartbeat(ctx context.Context, req ConsumerHeartbeatRequest) (ConsumerHeartbeatResponse, error) {
	c.mu.Lock()
	r := c.consumerHeartbeat(req)
	ch := c.holdConsumerAnswer(req, &r)
	c.mu.Unlock()
	return await(ctx, r, ch, ConsumerHeartbeatResponse{ErrorCode: errNotCoordinator, MemberID: req.MemberID})
}

func (c *Coordinator) consumerHeartbeat(req ConsumerHeartbeatRequest) ConsumerHeartbeatResponse {
	fail := func(code int16, msg string) ConsumerHeartbeatResponse {
		return ConsumerHeartbeatResponse{ErrorCode: code, ErrorMessage: msg, MemberID: req.MemberID}
	}
	if c.closed {
		return fail(errNotCoordinator, "")
	}
	if code, msg := c.validateConsumerHeartbeat(req); code != errNone {
		return fail(code, msg)
	}
	c.refreshTopics()
	switch {
	case req.MemberEpoch == -1 || req.MemberEpoch == -2:
		return c.consumerLeave(req)
	case req.MemberEpoch == 0:
		return c.consumerJoin(req)
	}
	g := c.cgroups[req.Group]
	if g == nil {
		// Not held here: the coordinator moved since the member joined
		// and the group had no record to load. FENCED_MEMBER_EPOCH makes
		// the client rejoin with epoch 0 and the same member id.
		return fail(errFencedMemberEpoch, "group not held by this coordinator; rejoin")
	}
	m := g.members[req.MemberID]
	if m == nil || m.staticLeft {
		return fail(errUnknownMemberID, "")
	}
	if req.MemberEpoch != m.epoch {
		// A lost answer: the member still runs the previous epoch and owns
		// only partitions it was given (Kafka's rule).
		if req.MemberEpoch != m.prevEpoch || req.Owned == nil || !c.ownedWithin(m, req.Owned) {
			return fail(errFencedMemberEpoch, fmt.Sprintf("member epoch %d, expected %d", req.MemberEpoch, m.epoch))
		}
	}
	if c.updateConsumerMember(m, req) {
		g.epoch++
	}
	if req.Owned != nil {
		c.ackRevocation(g, m, req.Owned)
		if req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil {
			m.sendAssignment = true // a full request: the client may have lost track
		}
	}
	c.refreshGroup(g)
	c.reconcile(g, m)
	// Kafka's rule: the answer carries the assignment when the member's
	// epoch moves (a lost answer included) or what it reports owning is
	// not what it was given.
	if req.MemberEpoch != m.epoch || (req.Owned != nil && !c.ownedEquals(m, req.Owned)) {
		m.sendAssignment = true
	}
	c.armConsumerSession(g, m)
	return c.consumerAnswer(g, m)
}

// ownedEquals reports whether owned lists exactly m's assigned partitions.
func (c *Coordinator) ownedEquals(m *cmember, owned []TopicPartitions) bool {
	n := 0
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !m.assigned.has(topicPartition{t.TopicID, p}) {
				return false
			}
			n++
		}
	}
	return n == m.assigned.size()
}

func (c *Coordinator) validateConsumerHeartbeat(req ConsumerHeartbeatRequest) (int16, string) {
	switch {
	case req.Group == "" || len(req.Group) > StringBytesMax:
		return errInvalidGroupID, ""
	case len(req.MemberID) > StringBytesMax || (req.InstanceID != nil && len(*req.InstanceID) > StringBytesMax) ||
		(req.RackID != nil && len(*req.RackID) > StringBytesMax):
		return errInvalidRequest, "string too long"
	case req.MemberEpoch < -2:
		return errInvalidRequest, "member epoch below -2"
	case req.MemberEpoch == -2 && (req.InstanceID == nil || *req.InstanceID == ""):
		return errInvalidRequest, "static leave without instance id"
	case req.MemberID == "" && (req.MemberEpoch != 0 || req.Version >= 1):
		return errInvalidRequest, "member id required"
	case len(req.SubscribedTopicNames) > SubscribedTopicsMax || len(req.Owned) > SubscribedTopicsMax:
		return errInvalidRequest, "too many topics"
	}
	if req.MemberEpoch == 0 {
		switch {
		case req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
			return errInvalidRequest, "subscription required when joining"
		case req.RebalanceTimeoutMs == -1:
			return errInvalidRequest, "rebalance timeout required when joining"
		}
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != "" && !assignorSupported(*req.ServerAssignor) {
		return errUnsupportedAssignor, "assignors: uniform, range"
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		if len(*req.SubscribedTopicRegex) > StringBytesMax {
			return errInvalidRequest, "regex too long"
		}
		if _, err := regexp.Compile(*req.SubscribedTopicRegex); err != nil {
			return errInvalidRegex, err.Error()
		}
	}
	return errNone, ""
}

// consumerJoin admits a member with epoch 0: a new member, a known member
// rejoining with its id (after FENCED_MEMBER_EPOCH: it keeps its state and
// gets its assignment again), or a static member replacing its departed
// incarnation (it takes over the assignment; no rebalance).
func (c *Coordinator) consumerJoin(req ConsumerHeartbeatRequest) ConsumerHeartbeatResponse {
	fail := func(code int16, msg string) ConsumerHeartbeatResponse {
		return ConsumerHeartbeatResponse{ErrorCode: code, ErrorMessage: msg, MemberID: req.MemberID}
	}
	g, code := c.consumerGroupFor(req.Group)
	if code != errNone {
		return fail(code, "")
	}
	if req.MemberID == "" { // v0: the coordinator names the member
		req.MemberID = c.newMemberID(req.ClientID, "")
	}
	m := g.members[req.MemberID]
	isNew := false
	if m == nil {
		if len(g.members) >= c.opts.MembersPerGroupMax {
			return fail(errGroupMaxSizeReached, "")
		}
		m = &cmember{id: req.MemberID, assigned: assignment{}, revoking: assignment{}, epoch: 0, prevEpoch: -1}
		if req.InstanceID != nil && *req.InstanceID != "" {
			if old := g.static[*req.InstanceID]; old != "" {
				om := g.members[old]
				if !om.staticLeft {
					return fail(errUnreleasedInstanceID, "instance id held by member "+old)
				}
				c.takeOver(g, om, m)
			}
			m.instanceID = *req.InstanceID
			g.static[m.instanceID] = m.id
		}
		if g.members[m.id] == nil {
			g.members[m.id] = m
			isNew = true // the target must include it
		}
	}
	m.sendAssignment = true
	if c.updateConsumerMember(m, req) || isNew {
		g.epoch++
	}
	if req.Owned != nil {
		c.ackRevocation(g, m, req.Owned)
	}
	c.refreshGroup(g)
	c.reconcile(g, m)
	c.armConsumerSession(g, m)
	c.log.Info("group: consumer member joined", "group", g.id, "member", m.id, "group_epoch", g.epoch)
	return c.consumerAnswer(g, m)
}

// takeOver moves a departed static member's state to its successor nm.
func (c *Coordinator) takeOver(g *cgroup, om, nm *cmember) {
	nm.assigned, nm.revoking = om.assigned, om.revoking
	nm.epoch, nm.prevEpoch = om.epoch, om.prevEpoch
	nm.names, nm.regex, nm.re, nm.assignor, nm.topics = om.names, om.regex, om.re, om.assignor, om.topics
	nm.rackID, nm.rebalance, nm.allowed, nm.allowedKnown = om.rackID, om.rebalance, om.allowed, om.allowedKnown
	for _, tp := range nm.assigned.flatten() {
		g.owners[tp] = nm.id
	}
	for _, tp := range nm.revoking.flatten() {
		g.owners[tp] = nm.id
	}
	g.target[nm.id] = g.target[om.id]
	delete(g.target, om.id)
	stopTimer(&om.sessionTimer, &om.sessionSeq)
	stopTimer(&om.revokeTimer, &om.revokeSeq)
	if len(nm.revoking) > 0 {
		c.armRevoke(g, nm)
	}
	delete(g.members, om.id)
	g.members[nm.id] = nm
}

// consumerGroupFor returns the consumer group id, creating it (or
// upgrading an Empty classic group) when absent.
func (c *Coordinator) consumerGroupFor(id string) (*cgroup, int16) {
	if g := c.cgroups[id]; g != nil {
		return g, errNone
	}
	if cg := c.groups[id]; cg != nil {
		if cg.state != Empty {
			return nil, errInconsistentProtocol
		}
		// An Empty classic group becomes a consumer group (Kafka's
		// upgrade of an empty group); its offsets live elsewhere.
		c.killGroup(cg, errCoordinatorUnavailable)
		delete(c.groups, id)
		c.persistGone(id)
		c.log.Info("group: empty classic group upgraded to the consumer protocol", "group", id)
	}
	if len(c.groups)+len(c.cgroups) >= c.opts.GroupsMax {
		return nil, errCoordinatorUnavailable
	}
	g := &cgroup{
		id: id, members: map[string]*cmember{}, static: map[string]string{},
		target: map[string]assignment{}, owners: map[topicPartition]string{}, metaSeen: c.metaVersion,
	}
	c.cgroups[id] = g
	return g, errNone
}

// updateConsumerMember applies the request's non-null fields to m and
// re-resolves its subscription. It reports whether the assignor or the
// subscription changed (the caller bumps the group epoch, once).
func (c *Coordinator) updateConsumerMember(m *cmember, req ConsumerHeartbeatRequest) bool {
	changed := false
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if req.RebalanceTimeoutMs > 0 {
		m.rebalance = msDuration(req.RebalanceTimeoutMs)
	}
	if m.rebalance <= 0 {
		m.rebalance = c.opts.ConsumerSessionTimeout
	}
	if req.TopicAllowed != nil {
		m.allowed = req.TopicAllowed
	}
	m.allowedKnown = true // nil from the shell: no authorizer, all allowed
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		changed = true
	}
	if req.SubscribedTopicNames != nil {
		m.names = slices.Clone(req.SubscribedTopicNames)
		slices.Sort(m.names)
		m.names = slices.Compact(m.names)
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex, m.re = *req.SubscribedTopicRegex, nil
		if m.regex != "" {
			m.re = regexp.MustCompile("^(?:" + m.regex + ")$") // validated
		}
	}
	return c.resolve(m) || changed
}

// resolve recomputes m's subscribed topics from the metadata; it reports
// whether they changed. Internal topics (double underscore) never match a
// regex. A loaded regex member keeps its recorded topics until its next
// heartbeat brings its topic check (allowedKnown).
func (c *Coordinator) resolve(m *cmember) bool {
	if m.re != nil && !m.allowedKnown {
		return false
	}
	var topics []string
	for _, t := range c.topics {
		switch {
		case slices.Contains(m.names, t.Name):
		case m.re != nil && !strings.HasPrefix(t.Name, "__") && m.re.MatchString(t.Name) &&
			(m.allowed == nil || m.allowed(t.Name)):
		default:
			continue
		}
		topics = append(topics, t.Name)
	}
	if slices.Equal(topics, m.topics) {
		return false
	}
	m.topics = topics
	return true
}

// refreshTopics reads the metadata view; a change bumps metaVersion, which
// makes every group re-resolve at its next heartbeat.
func (c *Coordinator) refreshTopics() {
	if c.opts.Topics == nil {
		return
	}
	ts := c.opts.Topics()
	if slices.Equal(ts, c.topics) {
		return
	}
	c.topics = slices.Clone(ts)
	c.topicByID = make(map[[16]byte]TopicInfo, len(ts))
	for _, t := range ts {
		c.topicByID[t.ID] = t
	}
	c.metaVersion++
}

// refreshGroup brings g up to date: subscriptions after a metadata change,
// then the target assignment when the group epoch moved past it.
func (c *Coordinator) refreshGroup(g *cgroup) {
	if g.metaSeen != c.metaVersion {
		g.metaSeen = c.metaVersion
		for _, m := range g.sortedMembers() {
			if c.resolve(m) {
				g.epoch++
			}
		}
		if !slices.Equal(c.subscribedTopics(g), g.subscribed) {
			g.epoch++
		}
	}
	if g.assignmentEpoch < g.epoch {
		c.computeTarget(g)
	}
}

// subscribedTopics is the metadata of the topics some live member
// subscribes to, sorted by name.
func (c *Coordinator) subscribedTopics(g *cgroup) []TopicInfo {
	var out []TopicInfo
	for _, t := range c.topics {
		for _, m := range g.members {
			if slices.Contains(m.topics, t.Name) {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// computeTarget runs the group's assignor and installs the target of the
// current group epoch. A departed static member keeps its target (its
// successor takes it over).
func (c *Coordinator) computeTarget(g *cgroup) {
	g.subscribed = c.subscribedTopics(g)
	g.assignor = preferredAssignor(g)
	var ms []assignorMember
	for _, m := range g.sortedMembers() {
		ms = append(ms, assignorMember{id: m.id, topics: m.topics, prev: g.target[m.id].flatten()})
	}
	target := runAssignor(g.assignor, ms, g.subscribed)
	for id := range g.target {
		if g.members[id] == nil {
			delete(g.target, id)
		}
	}
	for id, a := range target {
		g.target[id] = a
	}
	g.assignmentEpoch = g.epoch
}

// preferredAssignor is the server assignor most members name (ties: the
// smaller name), else uniform (Kafka's default, the first configured).
func preferredAssignor(g *cgroup) string {
	votes := map[string]int{}
	best := ""
	for _, m := range g.sortedMembers() {
		if m.assignor == "" {
			continue
		}
		votes[m.assignor]++
		if v := votes[m.assignor]; best == "" || v > votes[best] || (v == votes[best] && m.assignor < best) {
			best = m.assignor
		}
	}
	if best == "" {
		return AssignorUniform
	}
	return best
}

// sortedMembers returns the members (departed static ones included) by id.
func (g *cgroup) sortedMembers() []*cmember {
	ms := make([]*cmember, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *cmember) int { return cmp.Compare(a.id, b.id) })
	return ms
}

// ackRevocation: once a heartbeat's owned partitions no longer list any
// partition m is revoking, those partitions are free for their new owners.
func (c *Coordinator) ackRevocation(g *cgroup, m *cmember, owned []TopicPartitions) {
	if len(m.revoking) == 0 {
		return
	}
	for _, t := range owned {
		for _, p := range t.Partitions {
			if m.revoking.has(topicPartition{t.TopicID, p}) {
				return
			}
		}
	}
	for _, tp := range m.revoking.flatten() {
		delete(g.owners, tp)
	}
	m.revoking = assignment{}
	stopTimer(&m.revokeTimer, &m.revokeSeq)
}

// ownedWithin reports whether every owned partition is assigned to m or
// being revoked from it.
func (c *Coordinator) ownedWithin(m *cmember, owned []TopicPartitions) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			tp := topicPartition{t.TopicID, p}
			if !m.assigned.has(tp) && !m.revoking.has(tp) {
				return false
			}
		}
	}
	return true
}

// reconcile moves m toward its target (Kafka's CurrentAssignmentBuilder,
// simplified): while it revokes nothing happens; partitions it holds but
// should not are revoked first (epoch unchanged: the member must
// acknowledge by a heartbeat that no longer lists them); otherwise it
// takes the target's partitions nobody owns and moves to the target epoch;
// partitions still owned by another member are added at later heartbeats,
// once released. A partition thus never has two owners.
func (c *Coordinator) reconcile(g *cgroup, m *cmember) {
	if len(m.revoking) > 0 || m.staticLeft {
		return
	}
	tgt := g.target[m.id]
	var revoke []topicPartition
	for _, tp := range m.assigned.flatten() {
		if !tgt.has(tp) {
			revoke = append(revoke, tp)
		}
	}
	if len(revoke) > 0 {
		for _, tp := range revoke {
			m.assigned[tp.topic] = slices.DeleteFunc(m.assigned[tp.topic], func(p int32) bool { return p == tp.part })
			if len(m.assigned[tp.topic]) == 0 {
				delete(m.assigned, tp.topic)
			}
			m.revoking.add(tp)
		}
		m.sendAssignment = true
		c.armRevoke(g, m)
		return
	}
	for _, tp := range tgt.flatten() {
		if m.assigned.has(tp) {
			continue
		}
		if _, taken := g.owners[tp]; taken && !c.opts.UnsafeSkipRelease {
			continue // unreleased: its previous owner still revokes it
		}
		g.owners[tp] = m.id
		m.assigned.add(tp)
		m.sendAssignment = true
	}
	if m.epoch != g.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, g.assignmentEpoch
		if c.opts.UnsafeGenerationRestart && m.epoch > 3 && m.prevEpoch > 1 {
			m.prevEpoch, m.epoch = m.epoch, 1 // back to the assignment epoch at the next heartbeat
		}
	}
}

// consumerAnswer is the success answer to m's heartbeat.
func (c *Coordinator) consumerAnswer(g *cgroup, m *cmember) ConsumerHeartbeatResponse {
	r := ConsumerHeartbeatResponse{
		MemberID: m.id, MemberEpoch: m.epoch,
		HeartbeatIntervalMs: int32(c.opts.ConsumerHeartbeatInterval / time.Millisecond),
	}
	if m.sendAssignment {
		m.sendAssignment = false
		r.HasAssignment = true
		r.Assignment = c.topicPartitions(m.assigned)
	}
	return r
}

// topicPartitions lists a by topic name (unknown ids last, by id).
func (c *Coordinator) topicPartitions(a assignment) []TopicPartitions {
	out := make([]TopicPartitions, 0, len(a))
	for id, ps := range a {
		out = append(out, TopicPartitions{TopicID: id, Topic: c.topicByID[id].Name, Partitions: slices.Clone(ps)})
	}
	slices.SortFunc(out, func(x, y TopicPartitions) int {
		if c := cmp.Compare(x.Topic, y.Topic); c != 0 {
			return c
		}
		return slices.Compare(x.TopicID[:], y.TopicID[:])
	})
	return out
}

// consumerLeave handles epochs -1 (leave) and -2 (static leave: the
// member's partitions stay with its instance id until it returns or its
// session expires).
func (c *Coordinator) consumerLeave(req ConsumerHeartbeatRequest) ConsumerHeartbeatResponse {
	r := ConsumerHeartbeatResponse{MemberID: req.MemberID, MemberEpoch: req.MemberEpoch}
	g := c.cgroups[req.Group]
	var m *cmember
	if g != nil {
		m = g.members[req.MemberID]
	}
	if m == nil {
		r.ErrorCode = errUnknownMemberID
		return r
	}
	if req.MemberEpoch == -2 && m.instanceID != "" {
		m.staticLeft = true
		stopTimer(&m.revokeTimer, &m.revokeSeq)
		c.armConsumerSession(g, m)
		c.log.Info("group: static consumer member left temporarily", "group", g.id, "member", m.id)
		return r
	}
	c.removeConsumerMember(g, m, "left")
	return r
}

// removeConsumerMember frees m's partitions and recomputes the target.
func (c *Coordinator) removeConsumerMember(g *cgroup, m *cmember, why string) {
	stopTimer(&m.sessionTimer, &m.sessionSeq)
	stopTimer(&m.revokeTimer, &m.revokeSeq)
	for tp, owner := range g.owners {
		if owner == m.id {
			delete(g.owners, tp)
		}
	}
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	delete(g.members, m.id)
	delete(g.target, m.id)
	g.epoch++
	c.refreshGroup(g)
	c.log.Info("group: consumer member removed", "group", g.id, "member", m.id, "why", why, "group_epoch", g.epoch)
}

// armConsumerSession (re)starts m's session timer: at expiry it is removed.
func (c *Coordinator) armConsumerSession(g *cgroup, m *cmember) {
	stopTimer(&m.sessionTimer, &m.sessionSeq)
	m.sessionTimer = c.arm(c.opts.ConsumerSessionTimeout, &m.sessionSeq, func() {
		if c.cgroups[g.id] == g && g.members[m.id] == m {
			c.removeConsumerMember(g, m, "session timeout")
			c.persistConsumer(g)
		}
	})
}

// armRevoke starts m's rebalance timer: a member that does not revoke in
// time is removed (fenced) and its partitions freed.
func (c *Coordinator) armRevoke(g *cgroup, m *cmember) {
	stopTimer(&m.revokeTimer, &m.revokeSeq)
	m.revokeTimer = c.arm(m.rebalance, &m.revokeSeq, func() {
		if c.cgroups[g.id] == g && g.members[m.id] == m {
			c.removeConsumerMember(g, m, "rebalance timeout while revoking")
			c.persistConsumer(g)
		}
	})
}

// killConsumerGroup stops g's timers and answers its held heartbeats
// NOT_COORDINATOR; the caller forgets g.
func (c *Coordinator) killConsumerGroup(g *cgroup) {
	for _, m := range g.members {
		stopTimer(&m.sessionTimer, &m.sessionSeq)
		stopTimer(&m.revokeTimer, &m.revokeSeq)
	}
	for _, w := range g.waiters {
		w.ch <- ConsumerHeartbeatResponse{ErrorCode: errNotCoordinator, MemberID: w.member}
	}
	g.waiters = nil
}

// ConsumerDescribe handles ConsumerGroupDescribe.
func (c *Coordinator) ConsumerDescribe(groups []string) []ConsumerGroupDescription {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshTopics()
	out := make([]ConsumerGroupDescription, len(groups))
	for i, id := range groups {
		d := &out[i]
		d.Group = id
		g := c.cgroups[id]
		switch {
		case c.closed:
			d.ErrorCode = errNotCoordinator
			continue
		case g == nil && c.groups[id] != nil:
			d.ErrorCode, d.ErrorMessage, d.State = errGroupIDNotFound, "group "+id+" is not a consumer group", ConsumerDead
			continue
		case g == nil:
			d.ErrorCode, d.ErrorMessage, d.State = errGroupIDNotFound, "group "+id+" not found", ConsumerDead
			continue
		}
		c.refreshGroup(g)
		c.persistConsumer(g)
		d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName = g.state(), g.epoch, g.assignmentEpoch, g.assignor
		if d.AssignorName == "" {
			d.AssignorName = AssignorUniform
		}
		for _, m := range g.sortedMembers() {
			d.Members = append(d.Members, ConsumerMemberDescription{
				MemberID: m.id, InstanceID: m.instanceID, RackID: m.rackID, MemberEpoch: m.epoch,
				ClientID: m.clientID, ClientHost: m.clientHost,
				SubscribedTopicNames: slices.Clone(m.names), SubscribedTopicRegex: m.regex,
				Assignment:       c.topicPartitions(m.assigned),
				TargetAssignment: c.topicPartitions(g.target[m.id]),
			})
		}
	}
	return out
}

// validateConsumerCommit is OffsetCommit's check for a consumer group
// (Kafka's ConsumerGroup.validateOffsetCommit): v9+ only; an empty member
// id with epoch < 0 is an admin commit, allowed only while the group is
// Empty; otherwise the member must be known and send its epoch
// (FENCED_MEMBER_EPOCH above it, STALE_MEMBER_EPOCH below it; the
// previous epoch is accepted, see doc.go).
func (c *Coordinator) validateConsumerCommit(g *cgroup, memberID string, epoch int32, version int16) int16 {
	if memberID == "" && epoch < 0 {
		if len(g.members) == 0 {
			return errNone
		}
		return errUnknownMemberID
	}
	if version < 9 {
		return errUnsupportedVersion
	}
	m := g.members[memberID]
	if m == nil || m.staticLeft {
		return errUnknownMemberID
	}
	return memberEpochCheck(m, epoch)
}

func memberEpochCheck(m *cmember, epoch int32) int16 {
	switch {
	case epoch > m.epoch:
		return errFencedMemberEpoch
	case epoch < m.epoch && (epoch != m.prevEpoch || epoch <= 0):
		return errStaleMemberEpoch
	}
	return errNone
}

// ValidateConsumerFetch is OffsetFetch v9's member check for a consumer
// group: UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH; 0 for groups not held here
// or classic (their members are not checked on fetch).
func (c *Coordinator) ValidateConsumerFetch(group, memberID string, epoch int32) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.cgroups[group]
	if c.closed || g == nil || epoch < 0 {
		return errNone
	}
	m := g.members[memberID]
	if m == nil || m.staticLeft {
		return errUnknownMemberID
	}
	if memberEpochCheck(m, epoch) != errNone {
		return errStaleMemberEpoch
	}
	return errNone
}
