// Package group is the coordinator of Kafka's classic consumer group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
// ListGroups, DeleteGroups, and the membership check of OffsetCommit), as
// Apache Kafka's GroupCoordinator/GroupMetadata implement it, including
// KIP-345 static membership, KIP-394 MEMBER_ID_REQUIRED and KIP-814 skip
// assignment. KIP-429 cooperative rebalancing needs nothing here: it lives
// in the clients' assignors over the same protocol.
//
// Membership is in memory on the coordinator node only; committed offsets
// live in the controller shard (core/meta) and are not this package's
// concern: ValidateCommit only says whether a commit may proceed.
//
// # API
//
// Requests and responses are plain structs mirroring the kmsg fields the
// coordinator needs (types.go); error codes are Kafka's (kerr codes). The
// Kafka front end's handlers copy fields in and out:
//
//	JoinGroup     Join(ctx, JoinRequest) (JoinResponse, error)   blocks
//	SyncGroup     Sync(ctx, SyncRequest) (SyncResponse, error)   blocks
//	Heartbeat     Heartbeat(HeartbeatRequest) int16
//	LeaveGroup    Leave(LeaveRequest) LeaveResponse               v0-2: SingleErrorCode
//	DescribeGroups Describe([]string) []GroupDescription
//	ListGroups    List([]State) []GroupListing                   ParseState for filters
//	DeleteGroups  Delete([]string) []DeleteResult                 then delete offsets
//	OffsetCommit  ValidateCommit(group, member, instance, gen) int16, then commit
//	offset expiry Active(group) bool                              members held: keep offsets
//
// A non-nil error from Join or Sync is only ever ctx.Err(): the connection
// went away and no response is sent.
//
// # State machine
//
//	          first join / member added
//	+-------+ ------------------------------> +--------------------+
//	| Empty |                                 | PreparingRebalance |<--+
//	+-------+ <------------------------------ +--------------------+   |
//	    |       join phase ends, no members      |  all rejoined or    |
//	    |                                        |  rebalance timeout  |
//	    v DeleteGroups                           v  (generation+1)     |
//	+-------+                            +---------------------+       |
//	| Dead  |                            | CompletingRebalance |-------+
//	+-------+                            +---------------------+  join with new
//	(not held: a deleted or closed              | leader's           metadata, leave,
//	 group is forgotten)                        | SyncGroup          expiry, sync timeout
//	                                            v                    |
//	                                       +--------+                |
//	                                       | Stable |----------------+
//	                                       +--------+  new member, leader or changed
//	                                                   rejoin, leave, expiry, sync timeout
//
// Join phase: every known member must rejoin; it ends when all have (and no
// MEMBER_ID_REQUIRED id is outstanding) or when the largest rebalance
// timeout of the members runs out, removing the dynamic members that did
// not rejoin. An Empty group's first join phase lasts at least
// InitialRebalanceDelay, extended while new members arrive (Kafka's
// group.initial.rebalance.delay.ms). The leader is kept if it rejoined,
// else the first rejoined member in join order becomes leader. The
// selected protocol is the one the most members prefer among those all
// members support.
//
// Sync phase: after the join phase every member must SyncGroup within the
// rebalance timeout or is removed (Kafka's pending-sync expiry). The
// leader's SyncGroup installs the assignments and makes the group Stable.
//
// Sessions: a heartbeat, a SyncGroup or a valid commit restarts a member's
// session timer; at expiry the member is removed, unless it is blocked in
// JoinGroup or SyncGroup (it cannot heartbeat then). A new member blocked
// in its first JoinGroup is bounded by NewMemberJoinTimeout instead.
//
// Static members (group.instance.id) skip MEMBER_ID_REQUIRED. One that
// rejoins without a member id gets a new id and takes over the old member:
// the old id is fenced (FENCED_INSTANCE_ID), and if the group is Stable and
// the selected protocol would not change there is no rebalance: the member
// keeps the assignment of the current generation. Static members that miss
// a join phase are not removed by it; their session timeout governs.
//
// # Coordinator moves
//
// The coordinator of every group is the controller leader, and membership
// lives only in its memory. When the controller's leadership moves (or
// this node leads again in a later term, after another node may have
// coordinated meanwhile), the front end forgets every group and calls
// BeginTenure. The members, still consuming, learn of it through their
// next Heartbeat or SyncGroup. Their member ids (prefix-<incarnation
// hex>-<counter>) show that an earlier tenure minted them, so they are
// answered REBALANCE_IN_PROGRESS rather than UNKNOWN_MEMBER_ID: both make
// the client rejoin, but UNKNOWN_MEMBER_ID on a heartbeat reaches the
// application as an error (franz-go: "unable to join group session:
// UNKNOWN_MEMBER_ID"), while a rebalance is routine. Their rejoin with the
// old id is answered UNKNOWN_MEMBER_ID, which clients handle silently
// (they rejoin without an id). An eager consumer commits its offsets when
// revoking, before it rejoins; that commit, from a member this coordinator
// cannot validate, is accepted while the group has not completed a join
// phase in this tenure (in Kafka the new coordinator loads the membership
// from __consumer_offsets and validates it).
//
// # Concurrency
//
// One mutex guards all groups. It is never held while blocking: Join and
// Sync register a buffered channel under the lock, release it, then wait
// on the channel together with ctx. Every such channel receives exactly one
// value, so replies never block. Timers come from the injected clock.Clock
// (AfterFunc); each callback takes the lock and runs only if its timer is
// still the live one (a sequence number per timer slot), so stopping a
// timer that already fired is harmless. Close stops every timer and
// answers every waiter with NOT_COORDINATOR; afterwards at most a timer
// callback that had already started may briefly run (and do nothing), so
// the package leaks no goroutines.
//
// # Invariants (checkInvariants; checked by the tests after every step)
//
//   - a held group is never Dead; Empty iff it has no members (transiently
//     also PreparingRebalance with none, until outstanding MEMBER_ID_REQUIRED
//     ids expire);
//   - the generation only grows, by one per completed join phase;
//   - in Stable every member holds an assignment of the current generation
//     (so at most one generation is ever Stable per group);
//   - a member awaits the join only in PreparingRebalance and the sync only
//     in CompletingRebalance; the leader is a member when there are any;
//   - the instance map and the members' instance ids agree; no member is in
//     two groups, nor both a member and pending;
//   - the join timer runs exactly in PreparingRebalance.
//
// # Limits (options.go)
//
// Groups held (GroupsMax; evicts the longest-Empty group, else
// COORDINATOR_NOT_AVAILABLE), members per group and outstanding
// MEMBER_ID_REQUIRED ids (MembersPerGroupMax; GROUP_MAX_SIZE_REACHED),
// protocols per join, metadata bytes per join and assignment bytes per
// member (INVALID_REQUEST), string lengths (StringBytesMax), LeaveGroup
// batch size.
//
// # Deviations from Kafka
//
//   - No persistence: membership is lost with the coordinator, so members
//     rejoin after failover (see "Coordinator moves": heartbeats of a
//     member of an earlier tenure get REBALANCE_IN_PROGRESS, its commits
//     are accepted unvalidated until the group's first join phase here). Member ids are
//     clientID-<incarnation hex>-<counter> (static: instanceID-...), not
//     clientID-UUID, and never repeat for distinct Options.Incarnation.
//   - ValidateCommit never creates a group, and groups with only committed
//     offsets are unknown here (List/Describe/Delete show only groups with
//     membership state); the front end merges in the offset store's view.
//   - An unknown group's commit with generation >= 0 gets
//     ILLEGAL_GENERATION (Kafka's classic coordinator; newer Kafka answers
//     GROUP_ID_NOT_FOUND from v9).
//   - Protocol vote ties go to the smaller name; ListGroups state filters
//     match case-insensitively.
//   - A second JoinGroup from a member already waiting in one answers the
//     first with REBALANCE_IN_PROGRESS (Kafka drops it); a member removed
//     while waiting in SyncGroup gets UNKNOWN_MEMBER_ID (Kafka leaves it
//     waiting).
//   - A full group (MembersPerGroupMax) still admits a known static member
//     rejoining without its member id (Kafka answers
//     GROUP_MAX_SIZE_REACHED, as it counts it as a newcomer).
//   - A pending (MEMBER_ID_REQUIRED) id rejoining with an instance id gets
//     UNKNOWN_MEMBER_ID (Kafka: IllegalStateException).
//   - Limits on group count and sizes that Kafka lacks (see above); a
//     rebalance timeout <= 0 means the session timeout.
//   - One lock for all groups rather than one per group.
package group
