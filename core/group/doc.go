// Package group is the coordinator of Kafka's classic consumer group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
// ListGroups, DeleteGroups, and the membership check of OffsetCommit), as
// Apache Kafka's GroupCoordinator/GroupMetadata implement it, including
// KIP-345 static membership, KIP-394 MEMBER_ID_REQUIRED and KIP-814 skip
// assignment. KIP-429 cooperative rebalancing needs nothing here: it lives
// in the clients' assignors over the same protocol. Beside the classic
// groups it holds KIP-848 consumer-protocol groups (ConsumerGroupHeartbeat,
// ConsumerGroupDescribe; see "Consumer protocol" below).
//
// Membership is in memory on the coordinator node; a classic group's
// state at each completed generation, and a consumer group's at every
// change, is handed out as a Record (Options.Persist, persist.go and
// consumer_persist.go) for the shell to replicate, and a new coordinator
// tenure loads the records (BeginShardTenure; see "Coordinator moves"). Committed offsets live in the group shards (core/meta) and
// are not this package's concern: ValidateCommit only says whether a
// commit may proceed.
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
//	offset expiry Known(term, group) bool                         membership known in this tenure
//	new tenure    BeginTenure(term, []Record) int                 forget all, load the records
//	ConsumerGroupHeartbeat ConsumerHeartbeat(ctx, ConsumerHeartbeatRequest) (ConsumerHeartbeatResponse, error)  may block
//	ConsumerGroupDescribe  ConsumerDescribe([]string) []ConsumerGroupDescription
//	OffsetCommit v9        ValidateOffsetCommit(group, member, instance, gen, version) int16
//	OffsetFetch v9         ValidateConsumerFetch(group, member, epoch) int16
//	ListGroups             ListConsumer(states) beside List
//
// A non-nil error from Join, Sync or ConsumerHeartbeat is only ever
// ctx.Err(): the connection went away and no response is sent.
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
// leader's SyncGroup installs the assignments and makes the group Stable
// (in a tenure with Options.Persist, once the generation's record
// committed: see "Coordinator moves").
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
// The coordinator of a group is the leader of its group shard (the
// shell's; Options.ShardOf names a group's shard, and tenures are per
// shard: BeginShardTenure forgets and loads only that shard's groups).
// Like Kafka,
// which writes a group's metadata to __consumer_offsets when a generation
// completes and loads it on a new coordinator, this coordinator hands a
// Record of a classic group to Options.Persist when the leader's SyncGroup
// made it Stable (protocol type, protocol, generation, leader, and every
// member's id, instance id, client id and host, timeouts, protocols with
// their metadata, assignment), when a static member was replaced without
// a rebalance, when it became Empty (its generation), and when it was
// deleted, evicted or turned into a consumer group (Data nil). Records
// carry the tenure's term and a sequence number; the shell proposes them
// to the group's shard in that order (core/meta's PutGroupState, which
// refuses writes of a fenced tenure). The leader's SyncGroup, and the
// followers' waiting in theirs, are answered only once the generation's
// record committed (Kafka's storeGroup): a coordinator that lost the
// leadership unawares cannot hand out a generation its successor hands out
// again. If that write fails they get NOT_COORDINATOR and the group
// rebalances. Other records are not waited for; a failed one is logged.
//
// When a group shard's leadership moves (or this node leads it again in a
// later term), the shell fences the shard's records at the new term,
// reads them, and calls BeginShardTenure: every group of the shard held is
// forgotten (blocked requests
// answered NOT_COORDINATOR) and each record loads as its group, Stable at
// its generation with its members, leader, protocol and assignments (or
// Empty at its generation). Every member's session starts at the load, so
// members of the loaded generation go on heartbeating, syncing and
// committing at that generation with no rebalance; one that does not show
// up within its session timeout is removed and the group rebalances as
// usual. A later generation continues from the loaded one, so generations
// of a loaded group never go back across a move.
//
// Consumer groups are persisted too (see "Consumer protocol").
//
// Groups without a record (a write that failed or was still queued, a
// record beyond RecordBytesMax) restart as before (consumer groups: see
// "Consumer protocol"): classic ones' members learn of the move through their next Heartbeat or SyncGroup.
// Their member ids (prefix-<incarnation hex>-<counter>) show that an
// earlier tenure minted them, so they are answered REBALANCE_IN_PROGRESS
// rather than UNKNOWN_MEMBER_ID: both make the client rejoin, but
// UNKNOWN_MEMBER_ID on a heartbeat reaches the application as an error
// (franz-go: "unable to join group session: UNKNOWN_MEMBER_ID"), while a
// rebalance is routine. Their rejoin with the old id is answered
// UNKNOWN_MEMBER_ID, which clients handle silently (they rejoin without an
// id). An eager consumer commits its offsets when revoking, before it
// rejoins; that commit, from a member this coordinator cannot validate, is
// accepted while the group has not completed a join phase in this tenure.
//
// # Consumer protocol (KIP-848)
//
// A consumer group (cgroup, consumer.go) lives in its own map; a group id
// is classic or consumer, never both. The first ConsumerGroupHeartbeat
// creates it, or upgrades an Empty classic group; a classic group with
// members answers INCONSISTENT_GROUP_PROTOCOL, and so does a classic
// JoinGroup to a consumer group with members (an Empty one becomes
// classic). Mixed groups (classic members in a consumer group) are not
// served.
//
// Epochs: the group epoch grows by one for every heartbeat that changes
// the membership, a member's assignor or resolved subscription, or (after
// Options.Topics changed) the partitions of a subscribed topic. Whenever
// it passed the assignment epoch the assignor (assign.go; the one most
// members name, else uniform) computes a new target for every member and
// the assignment epoch catches up: no Assigning state is ever observed
// between requests.
//
// Reconciliation (reconcile, Kafka's CurrentAssignmentBuilder
// simplified), per member at each of its heartbeats: partitions it holds
// outside its target are revoked first (its epoch stays; it answers by a
// heartbeat whose owned partitions no longer list them, within its
// rebalance timeout or it is removed); only then does it take the
// target's partitions that no member owns and move to the assignment
// epoch. A partition still owned (assigned or being revoked) by another
// member is given later, once released. So no partition ever has two
// owners (cgroup.owners; checked by checkInvariants and the model test).
// An answer carries the full assignment when it changed, when the member's
// epoch moved, or when the owned partitions it reports differ.
//
// Errors as Kafka: UNKNOWN_MEMBER_ID (unknown member, or removed),
// FENCED_MEMBER_EPOCH (an epoch other than the member's or, after a lost
// answer, its previous one with only partitions it was given),
// UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION, UNRELEASED_INSTANCE_ID,
// GROUP_MAX_SIZE_REACHED (MembersPerGroupMax), INVALID_REQUEST (a join
// without subscription or rebalance timeout, v1 without member id).
// Leave: epoch -1 removes the member; -2 (static) keeps its partitions
// for its instance id until a new member with that id takes them over
// (no rebalance) or its session ends. Sessions: a member silent for
// ConsumerSessionTimeout is removed.
//
// Subscriptions: topic names and/or an RE2 regex matched against whole
// names; topics starting with "__" never match a regex; a regex resolves
// only to topics the member's TopicAllowed admits (DESCRIBE). Options.Topics
// is read at every heartbeat (the shell caches it by the view's topology
// version); a change makes each group re-resolve at its next request.
//
// Commits (ValidateOffsetCommit): v9+ only for members (v2-8:
// UNSUPPORTED_VERSION); the generation is the member epoch: above it
// FENCED_MEMBER_EPOCH, below STALE_MEMBER_EPOCH, except the previous
// epoch (a member committing what it consumed before its latest answer;
// newer Kafka is similarly lenient). Empty member id and epoch < 0: an
// admin commit, only while the group has no members.
//
// Coordinator moves (consumer_persist.go): the coordinator writes one
// Record per consumer group (kind byte 2; classic records are 1) with
// the group epoch, the assignment epoch and assignor, the subscribed
// topics' metadata as of the target, and per member its id, instance id,
// rack, client id and host, subscribed names and regex, server assignor,
// rebalance timeout, member epoch and previous epoch, whether it left
// with -2, its resolved topics, assigned partitions, partitions pending
// revocation and target. Kafka writes several record types on every
// change; here the group is encoded after every request or timer that
// may change it and its record handed out when the bytes differ from the
// last handed out, replacing the previous one.
//
// Answers wait: a successful join or heartbeat is answered only once the
// record its answer reflects committed (Kafka sends the response after
// the records are written), as the classic leader's SyncGroup is. A
// coordinator that lost its shard's leadership unawares therefore
// hands out no epoch or assignment its successor, loading the previous
// record, contradicts: were a partition given to member A before its
// record committed, the successor, still seeing B revoking it, would
// free it at B's next heartbeat and give it to C while A consumes it. If
// the write fails the waiting answers get NOT_COORDINATOR (clients retry
// the heartbeat keeping their partitions; the state in memory stays and
// the next heartbeat writes it again; the member's next answer carries
// its full assignment). A heartbeat changing nothing while the record is
// committed is answered at once. Leaves and removals by timers are
// written and not waited for: they hand nothing out.
//
// BeginTenure loads each record as its group: members keep their member
// epochs, previous epochs, assignments and revocations, so they go on
// heartbeating and committing at their epochs with no new epoch and no
// reassignment; every session (and a revoking member's rebalance
// timeout) starts at the load; a member absent for the session timeout is
// removed, bumping the group epoch. Each member's first answer carries its
// full assignment (one the old coordinator held back or lost is thus
// delivered; clients ignore an unchanged one). What a record cannot hold
// is re-established at the member's next heartbeat: its TopicAllowed
// check (a closure of its connection's principal) comes with every
// heartbeat, and until then a loaded regex member keeps its recorded
// topics rather than resolve without the check; the subscriptions are
// re-resolved against the topics of the new tenure at the group's next
// request (names) and each regex member's next heartbeat, and the epoch
// bumps only if what they resolve to, or the subscribed topics'
// partitions, changed meanwhile.
//
// Groups with no record (none written yet, a failed write, or one beyond
// RecordBytesMax, persisted as gone) are forgotten at a move as before: a
// member's next heartbeat (epoch > 0) to a group not held here is
// answered FENCED_MEMBER_EPOCH, so it rejoins with epoch 0 and its member
// id, and a v9 commit with a member id to a group not held here is
// accepted (unvalidated, as for classic members of an earlier tenure).
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
//   - Records live in the group shards (the shell's concern), Raft groups
//     rather than __consumer_offsets partitions; a failed Empty, deletion or static-replacement
//     record is not retried. A consumer group is one record replacing
//     the previous, not Kafka's record per member and kind. Member ids are
//     clientID-<incarnation hex>-<counter> (static: instanceID-...), not
//     clientID-UUID, and never repeat for distinct Options.Incarnation.
//     BeginTenure counts the incarnation up, so an id names the tenure
//     that minted it; a loaded group keeps its members' ids of earlier
//     tenures. A group forgotten at a move (no record) restarts at
//     generation 1, so (minting incarnation, generation) is what the
//     simulator's checkers key assignments by.
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
//   - Consumer protocol: no mixed groups and no online upgrade of a
//     classic group with members, no downgrade when the last consumer
//     member leaves (an Empty consumer group becomes classic at the next
//     JoinGroup); the target is computed at once (no
//     group.consumer.assignment.interval, never Assigning between
//     requests); client-side assignors are not served (UNSUPPORTED_ASSIGNOR
//     for any name but uniform and range); racks are recorded but not used
//     by the assignors; the uniform assignor is a simpler sticky balance
//     than Kafka's (balanced and sticky for homogeneous subscriptions;
//     greedy for heterogeneous ones); a member's regex is re-resolved at
//     its own heartbeats, not asynchronously per group; consumer groups
//     count against GroupsMax but are never evicted (COORDINATOR_NOT_AVAILABLE
//     when full); OffsetDelete treats every topic as subscribed while a
//     consumer group has members; COORDINATOR_LOAD_IN_PROGRESS never
//     occurs (requests arriving while a tenure loads wait for it).
package group
