package group

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/chronik-go/chronik/core/clock"
)

// member is one group member.
type member struct {
	id           string
	instanceID   string // "" for dynamic members
	clientID     string
	clientHost   string
	protocolType string
	protocols    []Protocol
	session      time.Duration
	rebalance    time.Duration
	seq          uint64 // join order: leader choice and listing order
	// isNew: joined but has not yet received a JoinGroup response; such a
	// member is bounded by NewMemberJoinTimeout instead of kept alive.
	isNew bool
	// joinCh is non-nil while the member awaits the end of the join phase
	// ("has rejoined"); syncCh while it awaits the leader's assignment.
	// Both are buffered (1) and receive exactly one value, so a reply never
	// blocks even if the caller has gone.
	joinCh chan JoinResponse
	syncCh chan SyncResponse
	// assignment is valid for generation assignmentGen (-1: none).
	// Invariant: in Stable, assignmentGen == group generation.
	assignment    []byte
	assignmentGen int32
	timer         clock.Timer // session (or new-member) expiry
	timerSeq      uint64
}

func (m *member) replyJoin(r JoinResponse) {
	if m.joinCh != nil {
		m.joinCh <- r
		m.joinCh = nil
	}
}

func (m *member) replySync(r SyncResponse) {
	if m.syncCh != nil {
		m.syncCh <- r
		m.syncCh = nil
	}
}

// matches reports whether protocols equal the member's, in order.
func (m *member) matches(protocolType string, protocols []Protocol) bool {
	return m.protocolType == protocolType && slices.EqualFunc(m.protocols, protocols, func(a, b Protocol) bool {
		return a.Name == b.Name && bytes.Equal(a.Metadata, b.Metadata)
	})
}

func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// pendingMember got MEMBER_ID_REQUIRED and has until its session timeout to
// join with that id.
type pendingMember struct {
	timer    clock.Timer
	timerSeq uint64
}

// group is one classic group. Invariants (checked by checkInvariants):
//   - state is never Dead while the group is in Coordinator.groups;
//   - Empty iff no members; the leader is a member iff there are members;
//   - static maps each instance id to a member with that instance id;
//   - in Stable every member has an assignment of this generation;
//   - joinTimer runs only in PreparingRebalance, syncTimer only in
//     CompletingRebalance or Stable.
type group struct {
	id           string
	state        State
	generation   int32
	protocolType string // of the members; kept while Empty (Kafka does too)
	protocol     string // selected protocol of this generation; "" when Empty
	leader       string
	members      map[string]*member
	static       map[string]string // instance id -> member id
	pending      map[string]*pendingMember
	pendingSync  map[string]struct{} // members yet to SyncGroup this generation

	joinTimer    clock.Timer
	joinTimerSeq uint64
	// Initial delay of an Empty group's first rebalance (Kafka's
	// InitialDelayedJoin): while set the join phase does not end early.
	initialDelay     bool
	initialRemaining time.Duration
	newMemberAdded   bool

	syncTimer    clock.Timer
	syncTimerSeq uint64
	// storeSeq is the Record seq of this generation's record while the
	// leader's SyncGroup waits for it to commit (storeThenInstall); 0
	// otherwise. Only in CompletingRebalance.
	storeSeq uint64
	emptySeq uint64 // when the group last became Empty
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.seq, b.seq) })
	return ms
}

// rebalanceTimeout is the largest of the members' rebalance timeouts.
func (g *group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

// supports reports whether a member with these protocols may be in the
// group: when there are no members any non-empty set; else the same
// protocol type and one protocol every current member supports.
func (g *group) supports(protocolType string, protocols []Protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportedBy(p.Name) == len(g.members) {
			return true
		}
	}
	return false
}

func (g *group) supportedBy(name string) int {
	n := 0
	for _, m := range g.members {
		if slices.ContainsFunc(m.protocols, func(p Protocol) bool { return p.Name == name }) {
			n++
		}
	}
	return n
}

// selectProtocol is Kafka's vote: among the protocols every member
// supports, each member votes for its most preferred; most votes wins. Ties
// go to the smaller name (Kafka: unspecified).
func (g *group) selectProtocol() string {
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.supportedBy(p.Name) == len(g.members) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for name, v := range votes {
		if v > bestVotes || (v == bestVotes && name < best) {
			best, bestVotes = name, v
		}
	}
	if best == "" {
		panic(fmt.Sprintf("group %q: no protocol supported by all %d members", g.id, len(g.members)))
	}
	return best
}

// memberList is the leader's view of the members for the selected protocol.
func (g *group) memberList() []JoinMember {
	ms := g.sortedMembers()
	out := make([]JoinMember, len(ms))
	for i, m := range ms {
		out[i] = JoinMember{MemberID: m.id, InstanceID: m.instanceID, Metadata: m.metadata(g.protocol)}
	}
	return out
}

// currentJoin is a JoinGroup response for m describing this generation.
func (g *group) currentJoin(m *member) JoinResponse {
	r := JoinResponse{
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		LeaderID:     g.leader,
		MemberID:     m.id,
	}
	if m.id == g.leader {
		r.Members = g.memberList()
	}
	return r
}

// allJoined: every member awaits the join and nobody is pending.
func (g *group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if m.joinCh == nil {
			return false
		}
	}
	return true
}

// fenced reports whether instanceID is registered to another member id.
func (g *group) fenced(instanceID, memberID string) bool {
	if instanceID == "" {
		return false
	}
	cur, ok := g.static[instanceID]
	return ok && cur != memberID
}

// validateMember is Kafka's validateCurrentMember.
func (g *group) validateMember(memberID, instanceID string) int16 {
	if instanceID != "" {
		cur, ok := g.static[instanceID]
		if !ok {
			return errUnknownMemberID
		}
		if cur != memberID {
			return errFencedInstanceID
		}
	}
	if g.members[memberID] == nil {
		return errUnknownMemberID
	}
	return errNone
}
