// Package meta is the controller shard's replicated state machine: the
// cluster metadata that every Chronik node agrees on through one dragonboat
// shard (ControllerShardID, replicated on up to three nodes).
//
// # State
//
//   - brokers: node id -> advertised Kafka address, rack, Raft address;
//   - topics: name -> id, partitions (each with its own dragonboat shard id
//     and replica list, Replicas[0] the preferred leader), configs;
//   - the partition shard-id counter (from FirstPartitionShardID up);
//   - the producer-id counter;
//   - the group coordinator shards (groupshard.go): N, shard ids,
//     replicas, reported leaders; committed consumer-group offsets
//     (group -> topic -> partition) live in the group shards
//     (GroupStateMachine, groupsm.go, the same state type restricted to
//     the group commands); the controller's own are legacy, read only
//     once group shards exist.
//   - transactions (txn.go): transactional id -> producer id, epoch,
//     state, partitions and groups of the ongoing transaction, offsets
//     staged by TxnOffsetCommit (the transaction coordinator's state).
//   - group membership records (groupstate.go): group -> the group
//     coordinator's opaque record of its last completed generation, with
//     the (tenure, sequence) that wrote it, and the tenure fence (in the
//     group shards; the controller's are legacy).
//
// # Commands
//
// RegisterBroker, UnregisterBroker, CreateTopic, DeleteTopic,
// CreatePartitions, AlterConfigs, AllocateProducerIDs, CommitOffsets,
// DeleteGroups, DeleteOffsets, ExpireOffsets (the coordinator's
// offsets.retention.minutes pass: a group's offsets committed before the
// proposer's cutoff), SetPartitionLeader (leader.go: the leader
// and Raft term each partition shard last reported, so that every node can
// answer Metadata; stale terms are no-ops), ReassignPartition,
// ReplicaCaughtUp, CompleteReassignment (reassign.go: moving a partition's
// replicas; the target is recorded here, the partition leader drives the
// Raft membership change, completion sets Replicas = Target; nodes that
// left a partition are retired and may never rejoin it, since dragonboat
// never reuses a removed replica id), and the transaction coordinator's
// InitTxnProducer, AddTxnPartitions, AddTxnGroup, TxnCommitOffsets,
// EndTxn, TxnMarkersWritten, AbortTxn, ExpireTxn (txn.go: lifecycle, epochs; clock
// values come from the proposer), and the group coordinator's
// PutGroupState and FenceGroupStates (groupstate.go: a write of an
// earlier coordinator tenure than the fence is refused), CreateGroupShards
// and TxnGroupMarkersWritten (groupshard.go), and the group shards' own
// CommitTxnOffsets, ImportOffsets, ImportGroupState, FinishImport. Encode/Decode give their wire form:
//
//	version (1 byte) | kind (1 byte) | fields
//
// with unsigned integers as uvarints, signed ones as zigzag varints and
// strings/lists with a uvarint length. Every length and count has a named
// limit (limits.go); Decode returns ErrBadCommand for anything malformed and
// never panics. Each command's outcome is a Result (Kafka error code,
// message, payload) packed into dragonboat's sm.Result as Value = error code
// and Data = EncodeResult; DecodeResult unpacks it for the proposer.
//
// # Proposer side
//
//	res, err := nh.SyncPropose(ctx, session, meta.Encode(meta.CreateTopic{...}))
//	r, err := meta.DecodeResult(res) // r.Code, r.Message, r.Topic
//
// Reads: StateMachine.View (lock-free, local), or nh.SyncRead with a Query
// type for a linearizable read (Lookup returns copies).
//
// # Replica placement
//
// Done in apply, from the state only. The replication factor defaults to
// min(3, registered brokers). Partition p of a placement of n partitions
// gets rf consecutive brokers (wrapping) from the sorted broker ids,
// starting at (cursor + p) mod brokers; the cursor then advances by n, so
// preferred leaders rotate across partitions and topics. CreatePartitions
// places new partitions the same way with the topic's current factor.
//
// # Determinism
//
// Apply depends only on the state, the raft index and the command: no
// clock, no randomness, no I/O. Topic ids are a hash of (index, name);
// commit timestamps come from the command; replica placement is computed
// in apply from the sorted broker ids and a placement cursor in the state.
// No Go map is ever iterated where the order can reach a result, a View or
// a snapshot: such walks go through sortedKeys. Snapshots of equal states
// are byte-identical.
//
// # Concurrency
//
// dragonboat drives Update, Lookup, SaveSnapshot and RecoverFromSnapshot; a
// RWMutex serializes them. View, Version and Changed are lock-free
// (atomic.Pointer) and safe from any goroutine. Changed returns a channel
// that is closed and replaced on every state change; the View is published
// before the channel closes, so "ch := Changed(); v := View(); <-ch" never
// misses a change. No goroutines are started.
//
// # Invariants
//
//   - Partition shard ids are >= FirstPartitionShardID, unique, and never
//     reused: the counter only grows, also across topic deletion.
//   - A topic's partitions never shrink; Partitions[i].Index == i.
//   - At placement time every replica is a registered broker and a
//     partition's replicas are distinct; a later UnregisterBroker does not
//     move existing replicas. A reassignment's target is distinct,
//     registered (or already a replica) and holds no retired node;
//     CaughtUp ⊆ Target \ Replicas; Retired is disjoint from Replicas and
//     Target; a reported leader is in Replicas ∪ Target, or -1 after it
//     left in a reassignment.
//   - Topic ids are non-zero and unique among live topics; no two topic
//     names differ only in '.' versus '_' (Kafka's collision rule).
//   - Committed offsets only name existing partitions; deleting a topic
//     deletes its offsets.
//   - Producer-id blocks never overlap: the counter only grows.
//   - Topic values published in a View are never modified (copy on write).
//   - CheckInvariants verifies the above on demand (tests, fuzzing, the
//     simulator); snapshot recovery runs it and rejects a state that fails.
//   - Update never returns an error (dragonboat would stop the node): an
//     undecodable entry becomes an INVALID_REQUEST result.
package meta
