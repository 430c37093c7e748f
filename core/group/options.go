package group

import "time"

// Options configures a Coordinator. Zero fields take the defaults below.
type Options struct {
	// SessionTimeoutMin and SessionTimeoutMax bound JoinGroup's session
	// timeout (Kafka: group.min/max.session.timeout.ms, 6s and 30min);
	// outside them JoinGroup answers INVALID_SESSION_TIMEOUT.
	SessionTimeoutMin time.Duration
	SessionTimeoutMax time.Duration
	// InitialRebalanceDelay delays the first rebalance of an Empty group so
	// that members starting together land in one generation (Kafka:
	// group.initial.rebalance.delay.ms, 3s). Negative disables it.
	InitialRebalanceDelay time.Duration
	// NewMemberJoinTimeout removes a new member that waits in JoinGroup
	// longer than this (Kafka: 5min).
	NewMemberJoinTimeout time.Duration
	// GroupsMax bounds the groups held in memory. At the limit the Empty
	// group that became empty first is evicted; if none is Empty, a join
	// that would create a group gets COORDINATOR_NOT_AVAILABLE.
	GroupsMax int
	// MembersPerGroupMax bounds members of a group (Kafka: group.max.size)
	// and, separately, members awaiting their second join after
	// MEMBER_ID_REQUIRED: GROUP_MAX_SIZE_REACHED beyond it.
	MembersPerGroupMax int
	// ProtocolsPerMemberMax bounds a JoinGroup's protocol list and
	// MemberMetadataBytesMax the sum of its metadata; INVALID_REQUEST beyond.
	ProtocolsPerMemberMax  int
	MemberMetadataBytesMax int
	// AssignmentBytesMax bounds one member's assignment in SyncGroup;
	// INVALID_REQUEST beyond.
	AssignmentBytesMax int
	// Incarnation is mixed into generated member ids so that ids issued by
	// an earlier coordinator of the same groups (another node, or this node
	// before a restart) are never reissued. The shell derives it from, e.g.,
	// the node id and a boot counter or leadership term.
	Incarnation uint64
	// ShardOf maps a group to its coordinator shard (its tenure:
	// BeginShardTenure); nil: one shard, 0. It must be a pure function
	// of the group id (called with the coordinator's lock held).
	ShardOf func(group string) int32
	// Topics returns the node's topics sorted by name (consumer-protocol
	// groups assign their partitions); nil means no topics. It is called
	// with the coordinator's lock held, at every ConsumerGroupHeartbeat,
	// and must be cheap and must not call back into the coordinator.
	Topics func() []TopicInfo
	// ConsumerSessionTimeout removes a consumer-protocol member that has
	// not heartbeaten for this long (Kafka:
	// group.consumer.session.timeout.ms, 45s).
	ConsumerSessionTimeout time.Duration
	// ConsumerHeartbeatInterval is the interval told to consumer-protocol
	// members (Kafka: group.consumer.heartbeat.interval.ms, 5s).
	ConsumerHeartbeatInterval time.Duration
	// Persist, if set, receives a group's record whenever its replicated
	// membership changes (persist.go, consumer_persist.go): the shell proposes it to
	// the controller in the order received and, when done is not nil,
	// calls done exactly once with the outcome (nil: committed), from
	// another goroutine. It is called with the coordinator's lock held: it
	// must not block or call back into the coordinator. The leader's
	// SyncGroup is answered only once its generation's record committed
	// (as in Kafka), and so is a consumer group's join or heartbeat whose
	// answer reflects a change; other records are not waited for (one
	// that never reaches the controller costs a rebalance after the next
	// move). Consumer groups' records always come with a done.
	Persist func(rec Record, done func(error))
	// UnsafeGenerationRestart is a deliberately broken variant for
	// testing the simulator only: every third completed join phase of a
	// classic group restarts its generation at 1 while the members keep
	// their ids (as if membership were half forgotten), and a
	// consumer-protocol member moving to an assignment epoch past 3 is
	// answered epoch 1 once. Never set it elsewhere.
	UnsafeGenerationRestart bool
	// UnsafeSkipRelease is a deliberately broken variant for testing the
	// simulator only: a consumer-protocol member is given a partition of
	// its target even while another member still owns it. Never set it
	// elsewhere.
	UnsafeSkipRelease bool
}

// Defaults and fixed limits.
const (
	SessionTimeoutMinDefault      = 6 * time.Second
	SessionTimeoutMaxDefault      = 30 * time.Minute
	InitialRebalanceDelayDefault  = 3 * time.Second
	NewMemberJoinTimeoutDefault   = 5 * time.Minute
	GroupsMaxDefault              = 10_000
	MembersPerGroupMaxDefault     = 1_000
	ProtocolsPerMemberMaxDefault  = 64
	MemberMetadataBytesMaxDefault = 1 << 20
	AssignmentBytesMaxDefault     = 1 << 20
	// StringBytesMax bounds group ids, member ids, instance ids, client ids,
	// hosts, protocol types and names: INVALID_GROUP_ID for a group id,
	// INVALID_REQUEST for the others.
	StringBytesMax = 4096
	// LeaveMembersMax bounds a LeaveGroup batch: INVALID_REQUEST beyond.
	LeaveMembersMax = MembersPerGroupMaxDefault
	// SubscribedTopicsMax bounds a ConsumerGroupHeartbeat's subscribed
	// topic names and owned topics: INVALID_REQUEST beyond.
	SubscribedTopicsMax = 10_000

	ConsumerSessionTimeoutDefault    = 45 * time.Second
	ConsumerHeartbeatIntervalDefault = 5 * time.Second
)

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.SessionTimeoutMin, SessionTimeoutMinDefault)
	def(&o.SessionTimeoutMax, SessionTimeoutMaxDefault)
	def(&o.InitialRebalanceDelay, InitialRebalanceDelayDefault)
	if o.InitialRebalanceDelay < 0 {
		o.InitialRebalanceDelay = 0
	}
	def(&o.NewMemberJoinTimeout, NewMemberJoinTimeoutDefault)
	def(&o.ConsumerSessionTimeout, ConsumerSessionTimeoutDefault)
	def(&o.ConsumerHeartbeatInterval, ConsumerHeartbeatIntervalDefault)
	defInt(&o.GroupsMax, GroupsMaxDefault)
	defInt(&o.MembersPerGroupMax, MembersPerGroupMaxDefault)
	defInt(&o.ProtocolsPerMemberMax, ProtocolsPerMemberMaxDefault)
	defInt(&o.MemberMetadataBytesMax, MemberMetadataBytesMaxDefault)
	defInt(&o.AssignmentBytesMax, AssignmentBytesMaxDefault)
	return o
}
