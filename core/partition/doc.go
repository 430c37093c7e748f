// Package partition is the replicated state machine of one Kafka partition:
// a dragonboat on-disk state machine (statemachine.IOnDiskStateMachine) over
// a plog.Log. Offsets are assigned when an entry is applied, so every
// replica assigns the same ones; the idempotent-producer state lives in the
// replicated state, so a retried batch gets its original offset after any
// leader change or restart.
//
// The node proposes EncodeProduce / EncodeDeleteRecords payloads with
// NodeHost.SyncPropose, decodes the sm.Result with DecodeProduceResult /
// DecodeDeleteRecordsResult, and reads (fetch, offsets, producers) through
// the Registry's Replica, never through dragonboat's Lookup (which answers
// only the small Query set).
//
// # Command encoding (frozen; big-endian)
//
//	Produce v1:    | version=1 | kind=1 | leaderEpoch int32 | batches ... |
//	Produce v2:    | version=2 | kind=1 | leaderEpoch int32 | batchBytesMax int32 |
//	               | logAppendTimeMs int64 | batches ... |        (18-byte header)
//	DeleteRecords: | version=1 | kind=2 | offset int64 |       (10 bytes)
//	Marker:        | version=1 | kind=3 | producerId int64 | producerEpoch int16 |
//	               | commit uint8 | coordinatorEpoch int32 | timestampMs int64 |
//	               | leaderEpoch int32 |                     (29 bytes)
//	               [ | decision uint64 | ]                   (37 bytes: Marker.Decision > 0)
//
// EncodeProduce writes v2; v1 (written before v2 existed) decodes as
// batchBytesMax 0 (Options.Log.BatchBytesMax, or plog.DefaultBatchBytesMax)
// and logAppendTimeMs -1 (CreateTime). A v2 produce with batchBytesMax < 0
// or logAppendTimeMs < -1 is a bad command. batchBytesMax is the
// max.message.bytes the proposer checked; logAppendTimeMs the time the
// leader stamped into the batches with StampLogAppendTime (LogAppendTime
// topics: timestamp-type attribute bit 0x08, MaxTimestamp = the time, CRC
// recomputed, as Kafka's broker does), so the Raft log carries the final
// bytes and every replica stores the same ones.
//
// A new command gets a new kind, a new layout a new version; decoders keep
// accepting every version ever written (they live in Raft logs and
// snapshots). DecodeCommand never panics (FuzzPartitionDecodeCommand).
//
// Results share one 37-byte layout, in sm.Result.Data, with the error code
// also in sm.Result.Value:
//
//	| version=1 | kind | errorCode int16 | baseOffset int64 | lastOffset int64 |
//	| logAppendTimeMs int64 (-1: CreateTime) | logStartOffset int64 | flags (1 = duplicate) |
//
// An undecodable entry is answered with kind 0 and INVALID_REQUEST (42) and
// logged; it never returns a Go error (dragonboat stops on Update errors).
//
// # Apply
//
// Produce: the batches are validated (plog.ValidateBatches with the
// command's batchBytesMax, so every replica reaches the same verdict
// whatever its own config; the log itself is opened with
// plog.BatchBytesLimit so it never refuses what apply accepted),
// checked for idempotence (below), then appended with epoch =
// max(command's LeaderEpoch, newest epoch stamped), so epochs never decrease
// along the log. There is no fsync per entry (see Durability). The result
// carries the assigned offsets and the command's logAppendTimeMs (a
// duplicate answers the retry's, the original's is not kept). Error codes:
//
//	CORRUPT_MESSAGE (2)    framing, CRC-32C
//	INVALID_RECORD (87)    magic, record count; a producer id >= 0 with a
//	                       negative epoch or sequence
//	MESSAGE_TOO_LARGE (10) batch > the command's max.message.bytes
//	OUT_OF_ORDER_SEQUENCE_NUMBER (45), INVALID_PRODUCER_EPOCH (47): below
//
// DeleteRecords: offset -1 means the high watermark; above it is
// OFFSET_OUT_OF_RANGE (1); at or below the log start a no-op. The new start
// is durable (plog checkpoint) before the result. It is also how retention
// moves the start (below). A failed segment removal is returned to
// dragonboat like any storage error (it is not retried here).
//
// A failing log (write error, plog.ErrLogFailed) makes Update return an
// error, which stops the replica: fail-stop, like a Kafka log-dir failure.
// Answering KAFKA_STORAGE_ERROR and carrying on would let replicas diverge.
//
// Marker (transactions, txn.go): apply builds Kafka's control batch
// (attributes transactional|control, producer id and epoch, base sequence
// -1, one record: key {version 0, type 0 ABORT / 1 COMMIT}, value
// {version 0, coordinatorEpoch[, decision int64]}, timestamp = the
// command's) and appends it at the next offset, so every replica stores
// the same bytes. A marker whose epoch is below the producer's here is
// INVALID_PRODUCER_EPOCH and appends nothing; a marker of a coordinator
// decision (Marker.Decision, the controller log index of the EndTxn
// decision) at or below the newest decision this partition holds a
// marker of for the producer is a duplicate: it appends nothing and
// succeeds. Without that, a marker written late from a lagging view of
// the controller (a new partition leader whose controller replica still
// shows the transaction preparing) would end the producer's next
// transaction on this partition half way, since a classic producer keeps
// its epoch across transactions and a KIP-890 one writes the next
// transaction's data at the epoch its markers carry; a higher one raises the producer's epoch (its batch
// list reset), fencing older epochs: this is how a coordinator's abort
// with a bumped epoch fences a zombie on every partition of the
// transaction. A client's Produce holding a control batch, or a
// transactional batch without a producer id, is INVALID_RECORD.
//
// # Transactions
//
// A transactional batch opens its producer's transaction on this
// partition (if none is open) at its base offset; a marker closes it, and
// an ABORT marker adds (producer, first offset, marker offset) to the
// aborted index. The last stable offset (LSO) is the smallest first offset
// of the open transactions, else the high watermark; Replica.FetchCommitted
// (isolation_level=read_committed) reads below it only and returns the
// aborted transactions overlapping what it read. Like the producer table,
// this state is a function of the log's batches in offset order (the
// rebuild on open reads a marker's type from its record); aborted entries
// whose marker is below the log start are dropped by DeleteRecords, and at
// most AbortedTxnsMax are kept. Which partitions a transaction may write,
// and when markers are written, is decided by the transaction coordinator
// (core/meta, core/node), not here.
//
// # Idempotence (Kafka 3.x ProducerStateManager rules)
//
// For every batch with producerId >= 0 the table keeps, per producer id, the
// producer epoch and the last BatchesPerProducerMax (5) batches (first and
// last sequence, base and last offset). A request's batches are checked in
// order, each against the table as the earlier batches of the request would
// leave it, and the request is appended whole or not at all:
//
//  1. Same epoch and (firstSeq, lastSeq) equal to one of the last 5: a
//     duplicate. If every batch of the request is a duplicate the result is
//     success with Duplicate=true, the original base offset of the first and
//     last offset of the last, and nothing is appended. A request mixing
//     duplicates and new batches is OUT_OF_ORDER_SEQUENCE_NUMBER (clients
//     never send it).
//  2. Unknown producer id (new, evicted, or state lost): any sequence is
//     accepted, as Kafka >= 2.5 (KIP-360) does. UNKNOWN_PRODUCER_ID is not
//     returned.
//  3. Epoch below the producer's: INVALID_PRODUCER_EPOCH (47). Kafka >= 2.7
//     answers this rather than PRODUCER_FENCED (90) on produce, so that the
//     client aborts and retries instead of dying; PRODUCER_FENCED is for the
//     transaction coordinator.
//  4. Epoch above the producer's: the first sequence must be 0, else
//     OUT_OF_ORDER_SEQUENCE_NUMBER (45); the batch list is reset.
//  5. Same epoch: firstSeq must follow the last sequence (lastSeq+1, or 0
//     after math.MaxInt32: sequences wrap), else
//     OUT_OF_ORDER_SEQUENCE_NUMBER (45).
//
// A batch's last sequence is firstSeq + lastOffsetDelta, wrapping as
// Kafka's DefaultRecordBatch.incrementSequence. Rejected and duplicate
// requests change nothing. Producers whose data was deleted (retention,
// DeleteRecords) are kept, as Kafka keeps them until they expire: the
// table is a function of the appended batches, not of the log start.
//
// The table tracks at most ProducersMax (10,000) producer ids; beyond that
// the one that appended least recently is forgotten (Kafka expires by time,
// transactional.id.expiration / producer.id.expiration.ms; a forgotten
// producer is treated as unknown, rule 2). Recency is by append only, never
// by lookups, so the table is a pure function of the log's batches in
// offset order: replaying or rescanning the log rebuilds exactly the table
// that live applies built.
//
// # Durability: why acknowledging after apply is safe without a plog fsync
//
// A Produce is acknowledged when its entry is applied, and dragonboat
// applies only entries committed on a quorum whose Raft logs (tan) are
// fsynced. The plog write at apply is not fsynced: after a crash it may have
// lost a tail (or hold a torn one, which plog's recovery truncates). Open
// then returns the last applied index that is durable, so dragonboat
// replays every later entry from its fsynced Raft log, and applying is
// deterministic, so the replay rebuilds the identical log and table.
// dragonboat compacts its Raft log only after Sync returns; Sync fsyncs the
// plog and then writes the producer checkpoint recording the applied index,
// so every compacted entry is covered by durable state. Entries that append
// nothing (rejections, duplicates, bad commands) are covered by that
// applied index; entries below it are skipped if they are ever offered
// again.
//
// Open returns max(checkpoint's applied index, plog.LastDurableRaftIndex):
// the checkpoint is written only after the plog is synced, so the log holds
// every batch of the entries up to its index, and every batch found on disk
// (plog's recovery keeps only whole, verified batches, in Raft index order)
// belongs to an applied entry.
//
// # Files (under Options.Dir/<shardID>/)
//
//	log/                 the plog.Log
//	producers.state      producer checkpoint, written atomically (tmp + Sync +
//	                     Rename + SyncDir) by Sync, Close and snapshot recovery
//
// Producer checkpoint (big-endian, frozen):
//
//	 0 magic uint32 = CheckpointMagic "CPPS"
//	 4 version uint16 = 3 (1: no transaction state, 2: no decisions, still read), reserved uint16
//	 8 appliedIndex uint64   last applied Raft index, all durable
//	16 coveredOffset int64   log end offset when written: the table covers [.., covered)
//	24 lastEpoch int32       newest stamped leader epoch (-1: none), reserved uint32
//	32 producer table        (count uint32, then per producer, least recently
//	                         appended first: pid int64, epoch int16,
//	                         lastTimestampMs int64, n uint8, n x (firstSeq
//	                         int32, lastSeq int32, baseOffset int64, lastOffset int64))
//	.. v2: transaction state (open count uint32, (pid int64, first int64) by pid;
//	       aborted count uint32, (pid int64, first int64, last int64) by last)
//	.. v3: decisions         (count uint32, (pid int64, decision uint64) for the
//	                         producers with one, in producer-table order)
//	.. crc uint32            CRC-32C of everything before it
//
// Open rebuilds the table from the checkpoint plus a scan of the batches
// after coveredOffset (bounded reads, headers parsed): its cost is the data
// applied since the last Sync, not the log. Without a usable checkpoint
// (missing, corrupt, or covering more than the log holds) the scan starts at
// the log start (logged); producers known only from deleted data are then
// lost, which rule 2 tolerates.
//
// A DeleteRecords entry that moves the log start first syncs the log and
// writes the checkpoint (the state up to the previous entry), so the
// checkpoint always covers the log start: the batches it deletes can
// never be needed by that scan. Before this rule a replica that crashed
// after a retention delete and before its next checkpoint reopened with
// the sequences of the deleted, uncovered batches missing, refused the
// replayed produces after them (OUT_OF_ORDER_SEQUENCE_NUMBER) where its
// peers had appended them, and diverged (found by the simulator, seed 9;
// TestDeleteRecordsThenCrashKeepsSequences). A checkpoint below the log
// start (a data dir from before the rule) is logged as such.
//
// # Snapshot stream (big-endian, frozen)
//
//	header (40 bytes): magic "CPSN" uint32 | version uint16 = 2 (1 still read) | reserved uint16 |
//	        appliedIndex uint64 | logStart int64 | highWatermark int64 |
//	        lastEpoch int32 | reserved uint32
//	chunks: tag 1 | n uint32 | n bytes of whole v2 batches, as stamped in the
//	        log (base offset, leader epoch), about SnapshotChunkBytes each
//	end:    tag 2 | producer table (as in the checkpoint) | v2: transaction
//	        state (as in the checkpoint) | crc32c uint32 of every byte of the
//	        stream before it
//
// PrepareSnapshot (mutually excluded with Update) captures the applied
// index, log start, high watermark, newest epoch and an encoded copy of the
// table; SaveSnapshot streams the log from that start up to that high
// watermark with plog.Read while Update keeps appending above it. If a
// DeleteRecords (retention) applied meanwhile deleted the start first,
// streaming starts from the new start.
// RecoverFromSnapshot builds the new state in a staging directory
// (<shard>/recover/): an empty log starting at the first streamed batch's
// base offset (an empty segment file named by that offset), the batches
// appended one run of equal leader epochs at a time (so each keeps its
// offset and epoch; all tagged with the snapshot's applied index), the log
// start applied, the table restored, the checksum verified, the log synced
// and a checkpoint written. Then it swaps: remove the live checkpoint,
// remove the live log, rename the staged log and checkpoint into place,
// SyncDir. A crash anywhere leaves one of: the old log at the index it
// proves (without checkpoint: producer table rescanned), no log (index 0),
// or the new log at the snapshot's index; Open removes a leftover staging
// directory. Never a partial log claiming the snapshot's index
// (TestSnapshotRecoveryCutByCrash). A failed recovery before the swap
// leaves the old state serving. Memory is bounded by one chunk.
// The leader-epoch cache below the first streamed batch is not carried:
// OffsetForLeaderEpoch for epochs older than the log start may differ from
// the sender's.
//
// # Concurrency
//
// dragonboat excludes Update, Sync, PrepareSnapshot, RecoverFromSnapshot and
// Close from each other; Lookup and SaveSnapshot run concurrently with them.
// Replica methods are safe at any time: they read a snapshot of
// (log, start, hw, applied) under Replica.mu, which is never held across I/O,
// and read the log outside it (plog is safe for concurrent use). The apply
// path mutates the producer table under the same mutex. WaitBeyond returns
// a broadcast channel, closed and replaced by each apply that moves the high
// watermark, and closed by Close: no goroutines. No goroutine is started by
// this package.
//
// Retention is replicated: the node, on the shard's Raft leader,
// periodically asks Replica.RetentionStart (plog's computation of where
// retention.bytes / retention.ms put the start; no I/O) and, when it is
// above LogStartOffset, proposes a DeleteRecords to it. The log start moves
// only by applied DeleteRecords entries, so it is the same on every replica
// (unlike Kafka, where each broker deletes its own segments).
//
// Segment settings (segment.bytes, segment.ms) are per replica:
// Options.Tuning when the log opens (Open, snapshot recovery; values
// clamped into plog's bounds, never an open failure), Replica.SetTuning
// live. Segment boundaries are therefore local to each replica; nothing
// replicated (offsets, start, bytes, producer table, epochs) depends on
// them.
//
// # Invariants
//
//   - Replica: start <= hw == log end offset after every apply; hw never
//     moves backwards except by snapshot recovery onto a newer state.
//   - start changes only by applying a DeleteRecords entry (or installing
//     a snapshot): equal on every replica at the same applied index.
//   - Every replica stores the same batch bytes at the same offsets (the
//     leader stamps LogAppendTime before proposing; apply only adds the
//     base offset and leader epoch).
//   - applied only increases; every entry <= applied is in durable state
//     once Sync returned.
//   - lastEpoch never decreases; every stamped epoch <= lastEpoch.
//   - The producer table equals the checkpoint's table extended with the
//     log's batches after its covered offset, in offset order (without a
//     checkpoint: the log's batches from the log start); len <=
//     ProducersMax; <= 5 batches per producer, all of its current epoch.
//   - Nothing above hw is ever returned by a Replica; nothing at or above
//     the LSO by FetchCommitted. lso <= hw; the transaction state equals
//     the checkpoint's extended with the log's batches after it.
package partition
