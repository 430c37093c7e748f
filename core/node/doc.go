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
// Reconciler (one goroutine). Wakes on meta's Changed() (and on a retry
// timer after a failure), walks View.HostedPartitions(self) in shard-id
// order and starts every shard not yet running (StartOnDiskReplica with
// partition.Factory; after a restart dragonboat's bootstrap record supplies
// the members), then stops and deletes (StopShard, SyncRemoveData,
// partition.RemoveData) every running shard no longer placed here (its
// topic was deleted; shard ids are never reused).
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
// lists that union (ISR: less the added nodes not caught up), and
// produce/fetch go on through the shard's Raft leader as always. The
// reassignment driver (one goroutine per node, reassignLoop: wakes on
// controller changes and every reassignPollEvery while a move involving
// the node is in progress, each step bounded by reassignStepTimeout) acts
// only from (controller Target/CaughtUp, Raft membership), so any node can
// pick a move up where it stands:
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
// # Concurrency contract
//
// All exported methods are safe for concurrent use. Background goroutines
// (registration, leader reports, membership, reconciler, retention) are
// started by Start and stopped and waited for by Close; dragonboat's
// callbacks never block. Node.mu guards small maps only and is never held
// while waiting (a synctest bubble cannot advance time while anyone waits
// on a mutex). Time comes only from Config.Clock; nothing is random; no
// map is iterated where the order reaches output or messages (sortedIDs).
// Every request to dragonboat carries a deadline (requestTimeoutDefault
// when the caller's ctx has none).
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
//   - ISR is reported as the full replica list (no per-follower match state
//     from dragonboat's public API); OfflineReplicas lists replicas that are
//     not registered brokers, not replicas that are down.
//   - Partition moves are explicit (MovePartition); there is no automatic
//     rebalancing, no preferred-leader election, no broker removal flow. A
//     node can never host a partition again after leaving it (see
//     "Partition moves"). New replicas join as voters (no non-voting
//     learner phase: a restarting learner's role cannot be known before
//     dragonboat starts it), so for a move the quorum is computed over
//     R ∪ {t} until the old replica leaves; the leader removes nothing
//     before the added replica caught up.
//   - Orphaned partition data of topics deleted while this node was down is
//     not swept from disk (dragonboat does not restart those shards, so
//     nothing serves it).
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
