package plog

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/diskio"
)

// Sentinel errors. Kafka error codes for the append-validation ones are in
// doc.go.
var (
	// ErrCorruptBatch: a batch failed framing or CRC-32C checks on append
	// (Kafka CORRUPT_MESSAGE, code 2).
	ErrCorruptBatch = errors.New("plog: corrupt record batch")
	// ErrInvalidRecord: a well-framed batch with invalid contents: magic
	// other than 2, recordCount != lastOffsetDelta+1 or <= 0, empty append
	// (Kafka INVALID_RECORD, code 87).
	ErrInvalidRecord = errors.New("plog: invalid record batch")
	// ErrBatchTooLarge: a batch larger than Options.BatchBytesMax, or an
	// append larger than AppendBytesMax (Kafka MESSAGE_TOO_LARGE, code 10).
	ErrBatchTooLarge = errors.New("plog: record batch too large")
	// ErrLogFailed: an fsync (or a write that could not be undone) failed;
	// every later Append and Sync fails until the log is closed and
	// reopened. Wraps the cause (Kafka KAFKA_STORAGE_ERROR, code 56).
	ErrLogFailed = errors.New("plog: log failed")
	// ErrCorruptLog: stored data failed verification in a way a crash cannot
	// explain (mid-log or sealed-segment corruption). The message names the
	// segment and position (Kafka KAFKA_STORAGE_ERROR).
	ErrCorruptLog = errors.New("plog: corrupt log")
	// ErrOffsetOutOfRange: an offset below the log start or beyond the log
	// end (Kafka OFFSET_OUT_OF_RANGE, code 1).
	ErrOffsetOutOfRange = errors.New("plog: offset out of range")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("plog: log closed")
	// ErrInvalidArgument: a caller error (bad options, a Raft index or leader
	// epoch going backwards, a ticket never issued).
	ErrInvalidArgument = errors.New("plog: invalid argument")
)

// Defaults and limits. Names carry units; Max/Min come last.
const (
	DefaultSegmentBytesMax    = 1 << 30 // Kafka segment.bytes
	DefaultSegmentAgeMax      = 7 * 24 * time.Hour
	DefaultIndexIntervalBytes = 4096    // Kafka index.interval.bytes
	DefaultBatchBytesMax      = 1048588 // Kafka max.message.bytes
	DefaultWritebackBytes     = 1 << 20
	// Retention is not applied by the log (the partition leader decides it
	// and replicates a log-start move, see RetentionStart); these are the
	// Kafka defaults the node's topic settings start from.
	DefaultRetentionBytes = -1 // unlimited, as Kafka retention.bytes
	DefaultRetentionAge   = 7 * 24 * time.Hour

	SegmentBytesLimit  = 1 << 30   // largest SegmentBytesMax accepted
	SegmentBytesFloor  = 1024      // smallest SegmentBytesMax accepted
	BatchBytesLimit    = 64 << 20  // largest BatchBytesMax accepted
	AppendBytesMax     = 128 << 20 // one Append call; keeps positions in uint32
	EpochEntriesMax    = 1 << 16   // leader-epoch cache entries; the oldest are dropped beyond
	ReadBytesLimit     = 64 << 20  // a Read's maxBytes is clamped to this
	readChunkBytesMin  = 64 << 10
	readChunkBytesMax  = 1<<20 + 64<<10
	readAttemptsMax    = 4
	headerScanBytesMax = FrameHeaderBytes + batchHeaderBytes
)

// Options configures a Log. Zero values take the named defaults.
type Options struct {
	FS     diskio.FS    // required
	Dir    string       // required; created if missing
	Clock  clock.Clock  // default clock.Real()
	Logger *slog.Logger // default discards

	SegmentBytesMax    int64         // roll when an append would exceed it; [SegmentBytesFloor, SegmentBytesLimit]; live: SetSegmentLimits
	SegmentAgeMax      time.Duration // roll a non-empty segment older than this; live: SetSegmentLimits
	IndexIntervalBytes int64         // bytes between offset-index entries; [1, SegmentBytesMax]
	BatchBytesMax      int           // Kafka max.message.bytes; [batch header, BatchBytesLimit]
	// WritebackBytes: after this many bytes appended to a segment since
	// the last hint, their write-out is started (File.StartWriteback), so
	// that the rare Sync (a snapshot's) flushes little and does not stall
	// the WAL's fsyncs behind a burst. Default DefaultWritebackBytes;
	// negative: never.
	WritebackBytes int64
}

func (o Options) withDefaults() (Options, error) {
	if o.FS == nil || o.Dir == "" {
		return o, fmt.Errorf("%w: FS and Dir are required", ErrInvalidArgument)
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SegmentBytesMax == 0 {
		o.SegmentBytesMax = DefaultSegmentBytesMax
	}
	if o.SegmentAgeMax == 0 {
		o.SegmentAgeMax = DefaultSegmentAgeMax
	}
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if o.BatchBytesMax == 0 {
		o.BatchBytesMax = DefaultBatchBytesMax
	}
	if o.WritebackBytes == 0 {
		o.WritebackBytes = DefaultWritebackBytes
	}
	if err := o.checkSegmentLimits(); err != nil {
		return o, err
	}
	switch {
	case o.IndexIntervalBytes < 1 || o.IndexIntervalBytes > o.SegmentBytesMax:
		return o, fmt.Errorf("%w: IndexIntervalBytes %d", ErrInvalidArgument, o.IndexIntervalBytes)
	case o.BatchBytesMax < batchBytesMin || o.BatchBytesMax > BatchBytesLimit:
		return o, fmt.Errorf("%w: BatchBytesMax %d", ErrInvalidArgument, o.BatchBytesMax)
	}
	return o, nil
}

// checkSegmentLimits validates SegmentBytesMax and SegmentAgeMax (after
// defaults), for Open and SetSegmentLimits alike.
func (o Options) checkSegmentLimits() error {
	switch {
	case o.SegmentBytesMax < SegmentBytesFloor || o.SegmentBytesMax > SegmentBytesLimit:
		return fmt.Errorf("%w: SegmentBytesMax %d outside [%d, %d]", ErrInvalidArgument, o.SegmentBytesMax, SegmentBytesFloor, SegmentBytesLimit)
	case o.SegmentAgeMax < 0:
		return fmt.Errorf("%w: SegmentAgeMax %v", ErrInvalidArgument, o.SegmentAgeMax)
	case o.IndexIntervalBytes > o.SegmentBytesMax:
		// An index interval larger than a segment would index nothing.
		return fmt.Errorf("%w: SegmentBytesMax %d below IndexIntervalBytes %d", ErrInvalidArgument, o.SegmentBytesMax, o.IndexIntervalBytes)
	}
	return nil
}
