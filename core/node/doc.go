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
//   - No partition moves: replicas are fixed at placement; a node added
//     later hosts only partitions created after it registered. No
//     reassignment, no preferred-leader election, no broker removal flow.
//   - Orphaned partition data of topics deleted while this node was down is
//     not swept from disk (dragonboat does not restart those shards, so
//     nothing serves it).
//   - Controller voters are fixed at bootstrap (the first 3 ids); they are
//     never replaced.
//   - No transactions: LastStableOffset == HighWatermark.
//   - DescribeConfigs returns the keys set on the topic, not defaults.
package node
