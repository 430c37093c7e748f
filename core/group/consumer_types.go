package group

import (
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/clock"
)

// Kafka error codes of the consumer protocol (KIP-848).
var (
	errFencedMemberEpoch    = kerr.FencedMemberEpoch.Code
	errStaleMemberEpoch     = kerr.StaleMemberEpoch.Code
	errUnsupportedAssignor  = kerr.UnsupportedAssignor.Code
	errUnreleasedInstanceID = kerr.UnreleasedInstanceID.Code
	errInvalidRegex         = kerr.InvalidRegularExpression.Code
	errUnsupportedVersion   = kerr.UnsupportedVersion.Code
)

// ConsumerState is a consumer-protocol group's state as Kafka names it.
type ConsumerState uint8

const (
	ConsumerEmpty ConsumerState = iota
	ConsumerAssigning
	ConsumerReconciling
	ConsumerStable
	ConsumerDead
)

var consumerStateNames = [...]string{"Empty", "Assigning", "Reconciling", "Stable", "Dead"}

func (s ConsumerState) String() string {
	if int(s) < len(consumerStateNames) {
		return consumerStateNames[s]
	}
	return "Unknown"
}

// TopicPartitions is one topic's partitions in a heartbeat or description.
type TopicPartitions struct {
	TopicID    [16]byte
	Topic      string // filled in answers; ignored in requests
	Partitions []int32
}

// ConsumerHeartbeatRequest mirrors kmsg.ConsumerGroupHeartbeatRequest.
// Nil pointers and slices mean "unchanged since the last heartbeat", as on
// the wire.
type ConsumerHeartbeatRequest struct {
	Version              int16 // 0: the coordinator mints member ids; 1+: the client does
	Group                string
	MemberID             string
	MemberEpoch          int32 // 0 join, -1 leave, -2 static leave
	InstanceID           *string
	RackID               *string
	RebalanceTimeoutMs   int32 // -1 unchanged
	SubscribedTopicNames []string
	SubscribedTopicRegex *string
	ServerAssignor       *string
	Owned                []TopicPartitions // nil: unchanged
	ClientID             string
	ClientHost           string
	// TopicAllowed filters the topics a regex subscription resolves to
	// (the member's principal needs DESCRIBE on them); nil allows all.
	// The member keeps the last one given.
	TopicAllowed func(topic string) bool
}

// ConsumerHeartbeatResponse mirrors kmsg.ConsumerGroupHeartbeatResponse.
type ConsumerHeartbeatResponse struct {
	ErrorCode           int16
	ErrorMessage        string
	MemberID            string
	MemberEpoch         int32
	HeartbeatIntervalMs int32
	// Assignment is the member's full assignment when HasAssignment (it
	// changed, or the member joined or sent a full request).
	HasAssignment bool
	Assignment    []TopicPartitions
}

// ConsumerMemberDescription mirrors kmsg.ConsumerGroupDescribeResponseGroupMember.
type ConsumerMemberDescription struct {
	MemberID             string
	InstanceID           string
	RackID               string
	MemberEpoch          int32
	ClientID             string
	ClientHost           string
	SubscribedTopicNames []string
	SubscribedTopicRegex string
	Assignment           []TopicPartitions
	TargetAssignment     []TopicPartitions
}

// ConsumerGroupDescription mirrors kmsg.ConsumerGroupDescribeResponseGroup.
// ErrorCode GROUP_ID_NOT_FOUND: unknown here, or a classic group.
type ConsumerGroupDescription struct {
	Group           string
	ErrorCode       int16
	ErrorMessage    string
	State           ConsumerState
	Epoch           int32
	AssignmentEpoch int32
	AssignorName    string
	Members         []ConsumerMemberDescription // by member id
}

// cmember is one member of a consumer-protocol group.
type cmember struct {
	id, instanceID, rackID, clientID, clientHost string
	names                                        []string       // SubscribedTopicNames as sent (sorted)
	regex                                        string         // SubscribedTopicRegex as sent
	re                                           *regexp.Regexp // compiled regex, anchored
	assignor                                     string         // ServerAssignor ("" none)
	rebalance                                    time.Duration
	allowed                                      func(string) bool
	// allowedKnown: allowed was set by a heartbeat of this tenure. A
	// loaded member's is not (a closure does not survive a record), so
	// its regex is not re-resolved until its next heartbeat brings one.
	allowedKnown bool
	topics       []string // resolved subscription: existing topics, sorted
	epoch        int32
	prevEpoch    int32
	staticLeft   bool // left with epoch -2: kept for its instance id's return
	// assigned is what the member may own now; revoking what it must give
	// up (still owned by it until a heartbeat no longer lists them).
	// Invariant: disjoint; each partition of either is owned by this
	// member in cgroup.owners.
	assigned assignment
	revoking assignment
	// sendAssignment: the next answer carries the full assignment.
	sendAssignment bool
	sessionTimer   clock.Timer
	sessionSeq     uint64
	revokeTimer    clock.Timer // rebalance timeout while revoking
	revokeSeq      uint64
}

// cgroup is one consumer-protocol group. Invariants (checkConsumer):
// every member's assigned and revoking partitions are in owners under
// that member, and owners holds nothing else (no partition has two
// owners); static maps instance ids to members with that id;
// assignmentEpoch <= epoch.
type cgroup struct {
	id              string
	epoch           int32 // group epoch: bumped by every change of members, subscriptions or their metadata
	assignmentEpoch int32 // epoch of target
	assignor        string
	members         map[string]*cmember
	static          map[string]string // instance id -> member id
	target          map[string]assignment
	owners          map[topicPartition]string
	// subscribed is the metadata of the topics some member subscribes to,
	// as of the last target computation; metaSeen the coordinator's
	// metadata version then.
	subscribed []TopicInfo
	metaSeen   uint64
	// The group's record (consumer_persist.go): written is the Data last
	// handed to Options.Persist (nil: none, or its write failed, so the
	// next change or heartbeat writes again), writtenSeq its Seq;
	// committedSeq the highest Seq known committed. Invariant:
	// committedSeq <= writtenSeq. waiters are heartbeat answers held
	// until a record at or after their seq commits, at most one per
	// member id.
	written                  []byte
	writtenSeq, committedSeq uint64
	waiters                  []cwaiter
}

// cwaiter is a heartbeat answer held until the record of seq committed.
type cwaiter struct {
	member string
	seq    uint64
	resp   ConsumerHeartbeatResponse
	ch     chan ConsumerHeartbeatResponse // buffered (1); receives exactly one value
}

func (g *cgroup) state() ConsumerState {
	if len(g.members) == 0 {
		return ConsumerEmpty
	}
	if g.assignmentEpoch < g.epoch {
		return ConsumerAssigning
	}
	for _, m := range g.members {
		if m.epoch != g.assignmentEpoch || len(m.revoking) > 0 {
			return ConsumerReconciling
		}
		if t := g.target[m.id]; t.size() != m.assigned.size() {
			return ConsumerReconciling
		}
	}
	return ConsumerStable
}
