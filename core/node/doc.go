// Package node is Chronik's replicated broker core: one dragonboat
// NodeHost per node, holding a replica of the controller shard and of
// every partition shard placed on the node, and the Go API the Kafka front
// end calls (Metadata, Produce, Fetch, ListOffsets, OffsetForLeaderEpoch,
// DeleteRecords, topic and config admin, InitProducerID, group offsets).
// One node is a one-replica cluster: there is no separate single-node
// path.
//
// # Architecture
//
// Controller shard (meta.ControllerShardID, core/meta). Its voters are the
// first up-to-3 node ids of Config.Peers, sorted. Every other node starts
// its controller replica as a NON-VOTING joiner; the controller leader's
// membership loop (every second) adds every node it knows (Peers, AddNode,
// registered brokers) that is not yet a member, with
// SyncRequestAddNonVoting. So every node holds the whole controller state
// locally and can answer Metadata for the cluster. On start each node
// proposes meta.RegisterBroker until its local view shows it (bounded
// exponential backoff).
//
// Partition shards (core/partition). Each partition is its own Raft group,
// replica id = node id, members = the partition's replicas at the Raft
// addresses of their broker registrations.
//
// Group coordinator shards (meta.GroupStateMachine, groupshards.go). N Raft
// groups holding committed offsets and group records; created once by the
// controller leader, started by the reconciler like partitions (in-memory
// state machines, never stopped), their leaders reported like partition
// leaders. A group's coordinator is its shard's leader once ready
// (GroupShardTerm: ReadIndex, and the legacy import at the shard's first
// ready leader).
//
// Reconciler (one goroutine). Wakes on meta's Changed() (and on a retry
// timer after a failure), walks View.HostedPartitions(self) in shard-id
// order and starts every shard not yet running (StartOnDiskReplica with
// partition.Factory; after a restart dragonboat's bootstrap record supplies
// the members), then stops and deletes (StopShard, SyncRemoveData,
// partition.RemoveData) every running shard no longer placed here (its
// topic was deleted; shard ids are never reused). After a start it first
// waits (bounded) until the local controller replica has applied the
// commands its Raft log held committed (awaitControllerReplay: a restart
// soon after a 1,000-partition topic was deleted started 220 of its
// replicas again from the view of the controller's snapshot), and once it
// has reconciled it sweeps what the node still holds of deleted topics
// (sweepDeleted: Raft data and partition directories of shard ids below
// View.NextShardID that no topic lists; a view that is behind knows fewer
// ids, never a live one).
//
// Leadership view. dragonboat's RaftEventListener pushes LeaderUpdated
// into a bounded channel without ever blocking (a full channel sets a
// resync flag). One goroutine drains it: when this node became leader of a
// partition shard it proposes meta.SetPartitionLeader{shard, self, term};
// stale terms are no-ops in apply. A resync every second re-reports any
// hosted shard led here whose term the view does not show (dropped events,
// failed proposals). Metadata uses nh.GetLeaderID for shards hosted here
// (fresher) and the controller view for the others; a leader that is not a
// registered broker is reported as -1 (LEADER_NOT_AVAILABLE).
//
// Partition moves (reassign.go). MovePartition records a target replica
// set in the controller (meta.ReassignPartition; empty = cancel). While
// the move runs the partition is hosted on Replicas ∪ Target, Metadata
// lists that union (ISR: as measured on the leader; on other nodes, less
// the added nodes not caught up), and produce/fetch go on through the
// shard's Raft leader as always. The reassignment driver (one goroutine
// per node, reassignLoop: wakes on controller changes and every
// reassignPollEvery while a move involving the node is in progress, each
// step bounded by reassignStepTimeout) acts only from (controller
// Target/CaughtUp, Raft membership), so any node can pick a move up where
// it stands:
//
//   - on the shard's leader, one step per round: (1) an added voter that
//     has not reported caught up: wait; (2) more voters than the target,
//     or every target node a voter: remove one voter outside the target
//     (SyncRequestDeleteReplica), other nodes before itself; to remove
//     itself the leader first hands leadership (RequestLeaderTransfer) to
//     a caught-up target voter, and the new leader carries on; (3) a target
//     node is not a voter: add it (SyncRequestAddReplica at its registered
//     Raft address), one at a time; (4) voters == target:
//     meta.CompleteReassignment, after which Replicas = Target;
//   - on a node being added: the reconciler starts its replica as a joiner
//     (no members, join=true) on first start; once the replica is a voter
//     and a linearizable read on it completed (ReadIndex: applied up to the
//     leader's commit index), it proposes meta.ReplicaCaughtUp;
//   - on a node removed: its replica idles (not a member) until completion,
//     then the reconciler stops it and deletes its data; if the node was
//     down then, the reconciler deletes the data of every shard that lists
//     the node as retired when it comes back (sweepRetired).
//
// States and restarts mid-move (R = Replicas, T = Target, V = voters):
//
//   - T recorded, target node not yet added: its joiner idles; restarted,
//     it starts again as a joiner (or from its bootstrap record).
//   - added, catching up (V = R ∪ {t}): quorum still holds without t; if t
//     crashes, it restarts from its bootstrap record and Raft log, catches
//     up again and reports; a leader crash elects another voter, whose
//     driver continues from the membership.
//   - caught up, old replicas being removed: a removed node that restarts
//     idles (not a member); the step repeats on failure (stale config
//     change ids are rejected by dragonboat and retried with fresh ones).
//   - V == T, completion pending or lost: the next leader round proposes
//     it again; CompleteReassignment with a stale target is rejected.
//
// dragonboat never lets a removed replica id rejoin, and replica id = node
// id, so the controller retires the nodes that leave a partition (or
// might have joined it before a cancel) and rejects them as targets.
//
// Leader readiness. Before serving a partition as leader in term T
// (Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords) the
// node completes a linearizable read (nh.SyncRead = ReadIndex) on the
// shard: dragonboat answers it only after the leader committed an entry of
// T and applied up to the read index, so the local state covers everything
// committed before T. The check runs inline in the request (once per
// shard and term; the result is cached in Node.ready); if it fails or the
// term moved meanwhile, the request gets NOT_LEADER_OR_FOLLOWER (or
// REQUEST_TIMED_OUT on the caller's deadline).
//
// # In-sync replicas and min.insync.replicas
//
// Kafka's ISR is the leader plus the followers that have been caught up
// with it within replica.lag.time.max.ms; acks=all waits for every ISR
// member, and min.insync.replicas refuses acks=all writes while the ISR
// is smaller. In Raft a commit needs a majority of the voters, whoever
// they are, so Chronik gives the two settings this meaning:
//
//   - Follower progress. dragonboat keeps each follower's match index but
//     does not expose it, so the node reads it off the wire
//     (netio.WithAckObserver): a follower's non-rejected ReplicateResp
//     carries the index up to which its log matches the leader's (sent
//     after the follower persisted it); the leader's own outgoing
//     Heartbeat carries min(its match index for the follower, its commit
//     index), which covers a follower whose replicate answers came before
//     the shard was tracked (an idle partition right after an election);
//     a follower's HeartbeatResp proves it alive and following. The
//     leader of a partition shard keeps, per follower and for its current
//     term only, the highest index known held and the last time the
//     follower was caught up (isr.go; messages of other terms, shards or
//     nodes are ignored, so an index from a log that a new term could
//     still truncate never counts).
//   - Caught up: at one of the follower's own answers (replicate or
//     heartbeat), the index known held covers everything the leader has
//     applied (partition.Replica.AppliedIndex). As Kafka does for
//     fetches, a follower that trails the latest apply only by entries in
//     flight counts as caught up at its previous answer if it now holds
//     what the leader had applied then.
//   - ISR = the leader + followers caught up within Config.ReplicaLagMax
//     (replica.lag.time.max.ms, default 30 s), in replica-list order. A
//     single-replica partition's ISR is its leader. A new term starts from
//     the leader alone: followers join with their first answer in the
//     term (within a heartbeat or two of the election). Metadata reports this ISR for the partitions
//     led here; a node that does not lead a partition does not see its
//     followers' answers and reports the replica list, as before (less
//     the replicas a move is adding that have not caught up). Kafka
//     clients use the ISR for display and tooling, not for routing.
//   - min.insync.replicas (topic config, TopicSettings.MinInsyncReplicas)
//     applies to acks=-1 only (ProduceWith with ProduceOptions.Acks -1), as
//     in Kafka. Before proposing: if the ISR is smaller, the answer is
//     NOT_ENOUGH_REPLICAS and nothing is proposed. At or below the Raft
//     majority of the partition's replicas (2 of 3) every commit is
//     already held by at least that many replicas, so the setting only
//     gates acceptance on the ISR size. Above the majority (3 of 3) the
//     answer also waits, after the entry is applied and bounded by the
//     request's deadline, until that many replicas (the leader included)
//     have acknowledged the entry's Raft index (partition results carry
//     it); if the deadline passes first the answer is
//     NOT_ENOUGH_REPLICAS_AFTER_APPEND and the records stay in the log, as
//     in Kafka (a retry by an idempotent producer is answered as a
//     duplicate); if leadership moves meanwhile, NOT_LEADER_OR_FOLLOWER.
//     A min.insync.replicas above the replica count can never be met.
//   - Bounds: state exists only for shards led here (added on leader
//     events, the leader resync every leaderResyncEvery and the produce
//     path; dropped when leadership or the shard goes) and holds one entry
//     per replica of the partition. The observer runs on the transport's
//     reader and sender goroutines: a map lookup and a few field writes
//     under the tracker's mutex, no allocation. Waiters block on a channel that
//     acknowledgements close (made only while someone waits), never on a
//     mutex across the clock.
//
// # Concurrency contract
//
// All exported methods are safe for concurrent use. Background goroutines
// (registration, leader reports, membership, reconciler, retention,
// partition moves, committed offset expiry, transaction markers and the
// transaction timeout pass, txn.go; the marker writer's per-transaction
// goroutines are bounded and waited for within each pass) are
// started by Start and stopped and waited for by Close; dragonboat's
// callbacks never block. Node.mu guards small maps only and is never held
// while waiting (a synctest bubble cannot advance time while anyone waits
// on a mutex). Time comes only from Config.Clock; nothing is random; no
// map is iterated where the order reaches output or messages (sortedIDs).
// Every request to dragonboat carries a deadline (requestTimeoutDefault
// when the caller's ctx has none). The ISR tracker's mutex is taken by the
// Raft transport's goroutines for field updates only (lock order:
// tracker, then a partition.Replica's mutex).
//
// # Invariants
//
//   - Never acknowledge before applied: Produce answers success only with
//     the result of its own applied entry (SyncPropose); every dragonboat
//     error maps to a retriable code (NOT_LEADER_OR_FOLLOWER,
//     REQUEST_TIMED_OUT), never to success. A timed-out entry may still
//     commit later; idempotent producers' retries are then answered with
//     the original offsets by the partition state machine.
//   - Invalid batches (CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_TOO_LARGE
//     against the topic's max.message.bytes) are never proposed.
//   - The high watermark served is never above what is applied locally
//     (partition.Replica) and, as leader, never below what a previous
//     leader served (readiness barrier).
//   - Leader epochs are Raft terms: monotonic per shard; a batch is
//     proposed with the term its proposer leads in, and the partition
//     stamps max(epoch, last) so epochs never decrease along a log. The
//     controller keeps the highest reported term per partition.
//
// # Approximations and what is not done
//
//   - Transactions (txn.go): the KIP-890 part 1 check runs on the
//     partition leader before proposing, not atomically with the append,
//     so a produce still in flight when its own client ends the
//     transaction can land after the marker and open a transaction there
//     that the producer's next transaction on that partition closes (or
//     holds the LSO until then). Aborts by the coordinator (timeout,
//     fencing) bump the epoch, and the marker's epoch then fences such a
//     late batch in apply; clients end a transaction only after its
//     produces were answered. KIP-890 part 2 (an epoch bump at every end)
//     would close the rest; it is not built.
//   - ISR is exact only on a partition's leader (see "In-sync replicas");
//     other nodes report the replica list. OfflineReplicas lists replicas
//     that are not registered brokers, not replicas that are down.
//   - Partition moves are explicit (MovePartition); there is no automatic
//     rebalancing, no preferred-leader election, no broker removal flow. A
//     node can never host a partition again after leaving it (see
//     "Partition moves"). New replicas join as voters (no non-voting
//     learner phase: a restarting learner's role cannot be known before
//     dragonboat starts it), so for a move the quorum is computed over
//     R ∪ {t} until the old replica leaves; the leader removes nothing
//     before the added replica caught up.
//   - Controller voters are fixed at bootstrap (the first 3 ids); they are
//     never replaced.
//   - No transactions: LastStableOffset == HighWatermark.
//
// # Settings and retention
//
// TopicSettings (topicconfig.go) is the one place a topic's effective
// settings are computed: its own configs over the cluster-wide dynamic
// broker defaults over Config over Kafka's defaults; TopicConfigValues
// and BrokerConfigValues report them with their sources for
// DescribeConfigs. The retention pass (retention.go, every
// RetentionInterval) pushes segment settings to every hosted replica and,
// on a partition's Raft leader, proposes the log start that retention
// gives as a DeleteRecords, so the log start is identical on every
// replica.
package node
