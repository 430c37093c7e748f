package partition

// This file is the contract between the partition state machine (this
// package) and the node that hosts it (core/node). Bodies marked
// "not implemented" are being filled in.

import (
	"errors"
	"log/slog"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

// Sentinel errors of the read side. Produce outcomes are Kafka error codes
// in ProduceResult, not Go errors.
var (
	ErrNotFound   = errors.New("partition: replica not hosted here")
	ErrClosed     = errors.New("partition: replica closed")
	ErrBadCommand = errors.New("partition: undecodable command")
)

// Produce is the command a partition leader proposes for one Kafka produce
// of one partition: every batch of the request for this partition,
// validated by the proposer (and again, cheaply, on apply).
type Produce struct {
	// LeaderEpoch is the Raft term the proposer observed as leader. Apply
	// stamps max(LeaderEpoch, last stamped epoch) so epochs never decrease
	// along the log even when a proposal is forwarded to a newer leader.
	LeaderEpoch int32
	// Batches: one or more Kafka v2 record batches, concatenated.
	Batches []byte
}

// DeleteRecords moves the log start offset forward (Kafka DeleteRecords).
type DeleteRecords struct {
	Offset int64 // new log start offset; -1 means the high watermark
}

// EncodeProduce and EncodeDeleteRecords build entry payloads for
// NodeHost.SyncPropose on a partition shard.
func EncodeProduce(p Produce) []byte             { panic("not implemented") }
func EncodeDeleteRecords(d DeleteRecords) []byte { panic("not implemented") }

// ProduceResult is what applying a Produce returned (sm.Result, decoded).
type ProduceResult struct {
	ErrorCode       int16 // 0, or a kerr code (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, CORRUPT_MESSAGE, ...)
	BaseOffset      int64 // offset of the first record; for a duplicate, of the original
	LastOffset      int64
	LogAppendTimeMs int64 // -1: CreateTime
	LogStartOffset  int64
	Duplicate       bool // an idempotent retry answered with the original offsets
}

// DeleteRecordsResult is what applying a DeleteRecords returned.
type DeleteRecordsResult struct {
	ErrorCode      int16
	LogStartOffset int64
}

// DecodeProduceResult and DecodeDeleteRecordsResult unpack sm.Result.
func DecodeProduceResult(r sm.Result) (ProduceResult, error) { panic("not implemented") }
func DecodeDeleteRecordsResult(r sm.Result) (DeleteRecordsResult, error) {
	panic("not implemented")
}

// Options configure every partition replica on a node.
type Options struct {
	FS     diskio.FS
	Dir    string // root; a replica of shard S lives in Dir/<S>
	Clock  clock.Clock
	Logger *slog.Logger
	// Log is the template for each replica's plog.Options (FS, Dir, Clock
	// and Logger are filled in per replica).
	Log plog.Options
}

// Registry holds the replicas open on this node, so the node reads them
// directly (fetch, offsets) rather than through dragonboat's Lookup.
// Safe for concurrent use.
type Registry struct{}

func NewRegistry() *Registry { panic("not implemented") }

// Get returns the open replica of shardID.
func (r *Registry) Get(shardID uint64) (*Replica, bool) { panic("not implemented") }

// Factory returns the dragonboat constructor for partition shards on this
// node: each state machine it creates registers itself in reg when opened
// and removes itself when closed.
func Factory(opts Options, reg *Registry) sm.CreateOnDiskStateMachineFunc {
	panic("not implemented")
}

// RemoveData deletes a replica's files after its shard was stopped for good
// (topic deleted, replica moved away).
func RemoveData(opts Options, shardID uint64) error { panic("not implemented") }

// Replica is the read side of one partition replica. Everything it returns
// is applied, i.e. committed: it never serves above the high watermark.
type Replica struct{}

// HighWatermark is the offset after the last applied record.
func (r *Replica) HighWatermark() int64 { panic("not implemented") }

// LogStartOffset is the first offset still readable.
func (r *Replica) LogStartOffset() int64 { panic("not implemented") }

// AppliedIndex is the Raft index of the last applied entry.
func (r *Replica) AppliedIndex() uint64 { panic("not implemented") }

// Fetch returns whole batches starting with the one containing offset, up
// to maxBytes (at least one batch if any), never beyond the high
// watermark. offset == HighWatermark returns no bytes; outside
// [LogStartOffset, HighWatermark] returns plog.ErrOffsetOutOfRange.
func (r *Replica) Fetch(offset int64, maxBytes int) ([]byte, error) {
	panic("not implemented")
}

// WaitBeyond returns a channel closed once the high watermark exceeds
// offset or the replica closes (Fetch long polls with it).
func (r *Replica) WaitBeyond(offset int64) <-chan struct{} { panic("not implemented") }

// OffsetForTimestamp: first offset whose batch maxTimestamp >= tsMs.
func (r *Replica) OffsetForTimestamp(tsMs int64) (offset int64, found bool, err error) {
	panic("not implemented")
}

// OffsetForLeaderEpoch: Kafka semantics over the epochs stamped in the log.
func (r *Replica) OffsetForLeaderEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	panic("not implemented")
}

// ProducerState describes one idempotent producer (DescribeProducers).
type ProducerState struct {
	ProducerID        int64
	ProducerEpoch     int16
	LastSequence      int32
	LastTimestampMs   int64
	CoordinatorEpoch  int32
	CurrentTxnStartMs int64
}

// Producers lists the producers this replica knows, by producer id.
func (r *Replica) Producers() []ProducerState { panic("not implemented") }
