// Package plog is Chronik's partition log: Kafka record batches (magic v2)
// stored exactly as producers sent them, in segment files on a diskio.FS,
// with group-committed fsync, sparse offset and time indexes, crash
// recovery, the retention computation, and the leader-epoch cache.
//
// # Retention and segment settings
//
// The log never deletes data on its own. RetentionStart computes, without
// I/O, the start Kafka's retention.bytes / retention.ms would give now
// (oldest segments first; by size only sealed ones; by age also the
// non-empty active segment, whose expiry gives the log end); the caller
// (the partition leader, core/partition and core/node) replicates that
// move and every replica applies it with DeletePrefix, so log starts are
// equal everywhere. DeletePrefix to the log end rolls a non-empty active
// segment first so it can be deleted too (a quiet topic with a short
// retention.ms frees its disk). SetSegmentLimits changes segment.bytes and
// segment.ms of an open log; it affects the next roll decision only.
// Segment boundaries are local to each log.
//
// The log stamps only the base offset and the partition leader epoch into a
// batch; both sit before the range covered by the batch CRC, so the
// producer's CRC stays valid. Records are never decoded: compressed batches
// pass through, and the record count comes from the batch header.
//
// # Append validation and Kafka error codes
//
// Append validates every batch of the request before writing anything; a
// request of several concatenated batches is appended whole or not at all.
//
//	ErrCorruptBatch   -> CORRUPT_MESSAGE (2):    framing (length fields vs
//	                     buffer, trailing bytes), CRC-32C mismatch
//	ErrInvalidRecord  -> INVALID_RECORD (87):    magic != 2, recordCount !=
//	                     lastOffsetDelta+1 or <= 0, empty request
//	ErrBatchTooLarge  -> MESSAGE_TOO_LARGE (10): batch > BatchBytesMax
//	                     (max.message.bytes), request > AppendBytesMax
//	ErrLogFailed, ErrCorruptLog -> KAFKA_STORAGE_ERROR (56)
//	ErrOffsetOutOfRange -> OFFSET_OUT_OF_RANGE (1)
//
// # Concurrency contract
//
// All methods are safe for concurrent use. Writers (Append, TruncateSuffix,
// DeletePrefix, Close, and the roll inside Append) are
// serialised by a writer lock made of a channel, so that a goroutine waiting
// for it is durably blocked under testing/synctest. A sync.Mutex guards the
// in-memory state and is never held across I/O or a wait. Reads run without
// the writer lock, against a snapshot of segment sizes; a Read that races
// with a truncation or deletion of what it reads is retried on the new state.
//
// Group commit: Append writes (no fsync) and returns a Ticket. WaitDurable
// (and Sync, AppendDurable) wait until an fsync covers the ticket. The first
// waiter that finds no fsync in flight becomes the leader: it records the
// last completed write and fsyncs the active segment, without any lock held;
// the others wait on a channel closed when that fsync ends, then re-check
// (and one of them leads the next fsync if they were not covered). A failed
// fsync fails every waiter it covered and the log: every later Append, Sync
// and WaitDurable returns ErrLogFailed wrapping the cause, until Close and
// Open (recovery decides what survived). Fsync is never retried.
//
// # Files
//
//	<dir>/00000000000000000000.log        segment: frames, named by base offset
//	<dir>/00000000000000000000.index      sparse offset index of that segment
//	<dir>/00000000000000000000.timeindex  time index of that segment
//	<dir>/plog.checkpoint                 recovery checkpoint
//	<dir>/*.tmp                           atomic-write temporaries (removed on Open)
//
// # Segment frame (FrameHeaderBytes = 24, big-endian)
//
//	0       4          8                16            20          24
//	+-------+----------+----------------+-------------+-----------+----------------------+
//	| magic | batchLen |   raftIndex    | writeOffset | headerCRC | Kafka v2 batch       |
//	| CHK1  |  uint32  |     uint64     |   uint32    |  uint32   | (batchLen bytes)     |
//	+-------+----------+----------------+-------------+-----------+----------------------+
//
//	magic       FrameMagic 0x43484b31 ("CHK1")
//	batchLen    == the batch's batchLength + 12
//	raftIndex   the Raft index of the entry that carried the batch
//	            (LastDurableRaftIndex; dragonboat's on-disk state machine)
//	writeOffset bytes from the start of the Append write holding this frame
//	            to this frame (0 for the first batch of a request)
//	headerCRC   CRC-32C (Castagnoli) over frame bytes [0,20) followed by the
//	            batch's bytes [0,21): baseOffset, batchLength,
//	            partitionLeaderEpoch, magic, batch CRC. With the batch's own
//	            CRC over [21, end) every stored byte is checksummed.
//
// One Append is one WriteAt of all its frames to the active segment, and one
// fsync (shared) makes it durable: the hot path writes one file per commit.
// The indexes are kept in memory for the active segment and written when it
// is sealed or a checkpoint is taken, never on the hot path.
//
// # Offset index (IndexEntryBytes = 8) and time index (TimeIndexEntryBytes = 12)
//
//	.index:     +-----------+----------+       .timeindex: +-----------+-----------+
//	            | relOffset | position |                   | timestamp | relOffset |
//	            |  uint32   |  uint32  |                   |   int64   |  uint32   |
//	            +-----------+----------+                   +-----------+-----------+
//
// An offset-index entry maps base offset segmentBase+relOffset to the
// position of its frame; one is added before a batch once
// IndexIntervalBytes have been written since the last. A time-index entry
// (ts, rel) says: every batch whose base offset is below segmentBase+rel has
// maxTimestamp <= ts. One is added with each offset-index entry when the
// segment's largest timestamp grew, and a final one when the segment is
// sealed, so the last entry of a sealed segment holds its largest timestamp
// (RetentionStart reads it from memory). Entries are strictly increasing. Index files are
// written whole, atomically (tmp + Sync + Rename).
//
// # Checkpoint (plog.checkpoint, big-endian, written atomically)
//
//	 0 magic uint32 = CheckpointMagic 0x43484b43 ("CHKC")
//	 4 version uint16 = 1, reserved uint16 = 0
//	 8 logStart int64          durable log start offset (DeletePrefix)
//	16 activeBase int64        segment the verified position refers to
//	24 verifiedPos int64       frames [0, verifiedPos) of it were synced and verified
//	32 nextOffset int64        log end at verifiedPos
//	40 raftIndex uint64        Raft index of the last frame below verifiedPos
//	48 maxTs int64, 56 maxTsOffset int64   that segment's largest timestamp (-1: none)
//	64 indexEntries uint32, 68 timeEntries uint32  valid entries of its index files
//	72 epochCount uint32
//	80 epochCount x (epoch int32, startOffset int64)  leader-epoch cache
//	.. crc uint32              CRC-32C of everything before it
//
// It is written (after syncing the log and writing the active segment's index
// files) at every roll, Close, Open, DeletePrefix and TruncateSuffix
// (before any segment is removed); so it always describes synced data. Recovery therefore
// verifies only the active segment's bytes after verifiedPos: its cost grows
// with the unverified tail (bounded by one segment), not with the log. The
// leader-epoch cache is persisted in it and extended from the batch headers
// of the tail. Without a (matching) checkpoint, recovery walks the frame
// headers of every segment (a full but header-only pass) and verifies the
// active segment from its start. A corrupt checkpoint stops Open with
// ErrCorruptLog (it holds the durable log start; delete it to force the full
// recovery).
//
// # Recovery rules
//
//   - Sealed segments (all but the newest) were synced before their successor
//     was created, so they are trusted to their length. Their index files are
//     checked cheaply (sizes, monotonic entries within bounds, the first and
//     last indexed frames parse and carry the indexed offsets) and rebuilt
//     with full CRC verification if that fails. Bit flips in sealed data are
//     caught when read (Read verifies every batch) and reported as
//     ErrCorruptLog, never served.
//   - The active segment is verified frame by frame from verifiedPos
//     (magic, header CRC, batch CRC, contiguous offsets, non-decreasing Raft
//     index). A bad frame is re-read once (read-path bit flips are transient).
//     If a valid frame follows it that belongs to a later write (its frame
//     position minus writeOffset is past the bad frame), it is mid-log
//     corruption: ErrCorruptLog naming segment and position. Otherwise it is a
//     torn tail (garbage only at the end of the last write): truncated, and
//     the truncation logged.
//
// # Invariants
//
// Written on the fields of Log and segment. In short: segments are
// contiguous (segs[i].next == segs[i+1].base); start <= next; the epoch
// cache is strictly increasing in epoch and start offset, all below next;
// durable.seq <= written.seq; the existence of segment N+1 implies segment N
// is synced and indexed; the checkpoint describes only synced data.
//
// # Limits (see the constants)
//
// SegmentBytesMax <= SegmentBytesLimit (1 GiB) and AppendBytesMax (128 MiB)
// keep positions in uint32. The epoch cache keeps at most EpochEntriesMax
// entries. A Read returns at most ReadBytesLimit bytes (or one batch).
// Indexes of all segments are held in memory: 8 bytes per IndexIntervalBytes
// of log, 2 MiB per full 1 GiB segment at the default interval.
//
// OffsetForTimestamp answers at batch granularity (records are not decoded):
// the base offset of the first batch whose maxTimestamp >= the target.
// Segment age (SegmentAgeMax) is measured from creation or from Open.
// BatchBytesMax is the log's own check; a caller that enforces a per-entry
// limit (core/partition: the command's max.message.bytes) opens the log
// with BatchBytesLimit so the two never disagree.
package plog
