package partition

// This file is the contract between the partition state machine (this
// package) and the node that hosts it (core/node).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
	// BatchBytesMax is the max.message.bytes the proposer checked the
	// batches against; apply enforces exactly it on every replica, so a
	// config change between proposal and apply cannot make replicas
	// disagree. 0: Options.Log.BatchBytesMax (or plog.DefaultBatchBytesMax),
	// as version-1 commands decode.
	BatchBytesMax int32
	// LogAppendTimeMs is the append time the leader stamped into every
	// batch (StampLogAppendTime) for a topic with
	// message.timestamp.type=LogAppendTime; -1: CreateTime. It is returned
	// in ProduceResult.
	LogAppendTimeMs int64
	// Batches: one or more Kafka v2 record batches, concatenated.
	Batches []byte
}

// DeleteRecords moves the log start offset forward (Kafka DeleteRecords).
type DeleteRecords struct {
	Offset int64 // new log start offset; -1 means the high watermark
}

// Marker ends producer ProducerID's transaction on this partition
// (WriteTxnMarkers): apply writes Kafka's control batch (COMMIT or ABORT,
// with CoordinatorEpoch in its value and TimestampMs as its timestamp) at
// the next offset. A marker older than the producer's epoch here is
// INVALID_PRODUCER_EPOCH; a newer one raises the producer's epoch, which
// fences the producer's older epochs on this partition.
type Marker struct {
	ProducerID       int64
	ProducerEpoch    int16
	Commit           bool
	CoordinatorEpoch int32
	TimestampMs      int64
	LeaderEpoch      int32 // as Produce.LeaderEpoch
	// Decision is the controller log index of the transaction
	// coordinator's decision this marker carries out (0: none given, as
	// for a WriteTxnMarkers request). A marker whose Decision is at or
	// below the newest one this partition holds a marker of for the
	// producer is a duplicate: it appends nothing and succeeds
	// (ProduceResult.BaseOffset -1).
	Decision uint64
}

// EncodeProduce, EncodeDeleteRecords and EncodeMarker (codec.go) build
// entry payloads for NodeHost.SyncPropose on a partition shard.

// ProduceResult is what applying a Produce returned (sm.Result, decoded).
type ProduceResult struct {
	ErrorCode       int16 // 0, or a kerr code (OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, CORRUPT_MESSAGE, ...)
	BaseOffset      int64 // offset of the first record; for a duplicate, of the original
	LastOffset      int64
	LogAppendTimeMs int64 // -1: CreateTime
	LogStartOffset  int64
	Duplicate       bool // an idempotent retry answered with the original offsets
	// Index is the Raft index of the entry this result answers (0:
	// unknown). For a duplicate it is the retry's entry, which follows
	// the original in the log.
	Index uint64
}

// DeleteRecordsResult is what applying a DeleteRecords returned.
type DeleteRecordsResult struct {
	ErrorCode      int16
	LogStartOffset int64
}

// DecodeProduceResult and DecodeDeleteRecordsResult (codec.go) unpack
// sm.Result.

// Options configure every partition replica on a node.
type Options struct {
	FS     diskio.FS
	Dir    string // root; a replica of shard S lives in Dir/<S>
	Clock  clock.Clock
	Logger *slog.Logger
	// Log is the template for each replica's plog.Options (FS, Dir, Clock
	// and Logger are filled in per replica; BatchBytesMax is only the
	// default limit of commands that carry none: the log itself is opened
	// with plog.BatchBytesLimit, and apply checks the command's limit).
	Log plog.Options
	// Tuning, if set, gives a shard's segment settings (its topic's
	// segment.bytes and segment.ms); it is consulted whenever the replica
	// opens its log (Open, snapshot recovery), and Replica.SetTuning
	// changes them live. Zero fields (and a nil Tuning) take Log's values.
	// Segment boundaries are local to each replica: nothing replicated
	// depends on them.
	Tuning func(shardID uint64) Tuning
	// OnStorageFailure, if set, is the node's fail-stop
	// (node.Config.OnStorageFailure) for a storage error met while a
	// replica opens or recovers from a snapshot (a checksum failure on
	// read, a failed rename). The replica then stops: it tells dragonboat
	// it is stopping (sm.ErrOpenStopped, sm.ErrSnapshotStopped) instead
	// of failing, and answers every later call with an error and nothing
	// else. Nil: the error goes to dragonboat, which panics.
	OnStorageFailure func(error)
}

// Tuning is the per-replica segment settings (Kafka segment.bytes,
// segment.ms) as plog takes them. Values plog refuses are clamped into its
// bounds rather than refused: the controller accepts Kafka's minimums
// (segment.bytes >= 14), and a topic config must never stop a replica from
// opening. SegmentBytesMax is raised to max(plog.SegmentBytesFloor, the
// index interval) and capped at plog.SegmentBytesLimit; a negative
// SegmentAgeMax takes the default.
type Tuning struct {
	SegmentBytesMax int64
	SegmentAgeMax   time.Duration
}

// clamped brings t into the bounds plog accepts (zero fields stay zero:
// plog's defaults).
func (t Tuning) clamped(indexIntervalBytes int64) Tuning {
	if t.SegmentBytesMax != 0 {
		t.SegmentBytesMax = min(max(t.SegmentBytesMax, plog.SegmentBytesFloor, indexIntervalBytes), plog.SegmentBytesLimit)
	}
	if t.SegmentAgeMax < 0 {
		t.SegmentAgeMax = 0
	}
	return t
}

// or fills t's zero fields from d.
func (t Tuning) or(d Tuning) Tuning {
	if t.SegmentBytesMax == 0 {
		t.SegmentBytesMax = d.SegmentBytesMax
	}
	if t.SegmentAgeMax == 0 {
		t.SegmentAgeMax = d.SegmentAgeMax
	}
	return t
}

// Registry holds the replicas open on this node, so the node reads them
// directly (fetch, offsets) rather than through dragonboat's Lookup.
// Safe for concurrent use.
type Registry struct {
	mu       sync.Mutex
	replicas map[uint64]*Replica // by shard id
}

func NewRegistry() *Registry { return &Registry{replicas: make(map[uint64]*Replica)} }

// Get returns the open replica of shardID.
func (r *Registry) Get(shardID uint64) (*Replica, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep, ok := r.replicas[shardID]
	return rep, ok
}

func (r *Registry) register(rep *Replica) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replicas[rep.shardID] = rep
}

// unregister removes rep only if it is still the registered one (a newer
// replica of the same shard may have replaced it).
func (r *Registry) unregister(rep *Replica) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replicas[rep.shardID] == rep {
		delete(r.replicas, rep.shardID)
	}
}

// Factory returns the dragonboat constructor for partition shards on this
// node: each state machine it creates registers itself in reg when opened
// and removes itself when closed.
func Factory(opts Options, reg *Registry) sm.CreateOnDiskStateMachineFunc {
	return func(shardID, replicaID uint64) sm.IOnDiskStateMachine {
		return newStateMachine(opts, reg, shardID, replicaID)
	}
}

// RemoveData deletes a replica's files after its shard was stopped for good
// (topic deleted, replica moved away).
func RemoveData(opts Options, shardID uint64) error {
	return opts.FS.RemoveAll(replicaDir(opts, shardID))
}

// Replica is the read side of one partition replica. Everything it returns
// is applied, i.e. committed: it never serves above the high watermark.
// All methods are safe for concurrent use with the state machine.
type Replica struct {
	shardID, replicaID uint64

	mu sync.Mutex // guards the fields below; never held across I/O
	// log is nil while closed or while a snapshot replaces it.
	log *plog.Log
	// Invariant: start <= hw == log.NextOffset() after every apply.
	hw, start int64
	applied   uint64
	// waitc is closed (and replaced) by every apply that moves hw.
	waitc  chan struct{}
	closed bool
	// producers and txns are the state machine's, read here under mu.
	producers *producerTable
	txns      *txnState
	// lso is the last stable offset: the first offset of the oldest open
	// transaction, else hw. Invariant: start-independent, lso <= hw.
	lso int64
	// released is closed when the state machine's Close has finished:
	// its log is synced, checkpointed and closed, and no file of the
	// replica is open any more.
	released    chan struct{}
	releaseOnce sync.Once
	// defaults fills zero fields of a Tuning: Options.Log's values.
	defaults Tuning
	// indexIntervalBytes is the log's (a segment may not be smaller).
	indexIntervalBytes int64
	// timings are the last applyTimingsMax Update calls (a ring; the
	// next one goes to timingNext % applyTimingsMax), for ApplyTiming.
	timings    [applyTimingsMax]applyTiming
	timingNext uint64
	// sinceSync*: the state machine's, as of the last apply or Sync.
	sinceSyncEntries uint64
	sinceSyncBytes   int64
}

// applyTimingsMax bounds the Update calls a Replica remembers for
// ApplyTiming: a proposer reads its entry's timing right after its result
// arrives, while at most a few later Update calls of the shard have run.
const applyTimingsMax = 8

// applyTiming is one Update call: the entries [first, last] it applied,
// between start and end on the node's clock.
type applyTiming struct {
	first, last uint64
	start, end  time.Time
}

// ApplyTiming reports when the Update call that applied the entry at
// Raft index started and ended (the node's clock), if it is one of the
// last few (ok false otherwise: the stage metrics then skip it).
func (r *Replica) ApplyTiming(index uint64) (start, end time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.timings {
		if t.last != 0 && t.first <= index && index <= t.last {
			return t.start, t.end, true
		}
	}
	return time.Time{}, time.Time{}, false
}

func newReplica(shardID, replicaID uint64, producers *producerTable, txns *txnState) *Replica {
	return &Replica{shardID: shardID, replicaID: replicaID, waitc: make(chan struct{}), producers: producers, txns: txns, released: make(chan struct{})}
}

func (r *Replica) release() { r.releaseOnce.Do(func() { close(r.released) }) }

// Released is closed once the replica's state machine has closed and
// released its files; only then may its data be removed (RemoveData).
func (r *Replica) Released() <-chan struct{} { return r.released }

// HighWatermark is the offset after the last applied record.
func (r *Replica) HighWatermark() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hw
}

// LogStartOffset is the first offset still readable.
func (r *Replica) LogStartOffset() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.start
}

// AppliedIndex is the Raft index of the last applied entry.
func (r *Replica) AppliedIndex() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

func (r *Replica) current() (*plog.Log, int64, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.log == nil {
		return nil, 0, 0, ErrClosed
	}
	return r.log, r.start, r.hw, nil
}

// Fetch returns whole batches starting with the one containing offset, up
// to maxBytes (at least one batch if any), never beyond the high
// watermark. offset == HighWatermark returns no bytes; outside
// [LogStartOffset, HighWatermark] returns plog.ErrOffsetOutOfRange.
// A replica closed (or being replaced by a snapshot) returns ErrClosed.
func (r *Replica) Fetch(offset int64, maxBytes int) ([]byte, error) {
	l, start, hw, err := r.current()
	if err != nil {
		return nil, err
	}
	if offset < start || offset > hw {
		return nil, fmt.Errorf("%w: offset %d outside [%d, %d]", plog.ErrOffsetOutOfRange, offset, start, hw)
	}
	if offset == hw {
		return nil, nil
	}
	b, err := l.Read(offset, maxBytes, hw)
	if errors.Is(err, plog.ErrClosed) {
		return nil, ErrClosed
	}
	return b, err
}

// WaitBeyond returns a channel closed once the high watermark exceeds
// offset or the replica closes (Fetch long polls with it). The channel is
// a broadcast closed by the next apply that moves the high watermark, so a
// waiter may wake while the high watermark is still <= offset: re-check
// and wait again.
func (r *Replica) WaitBeyond(offset int64) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.hw > offset {
		return closedChan
	}
	return r.waitc
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// OffsetForTimestamp: first offset whose batch maxTimestamp >= tsMs.
// Batches above the high watermark are never reported.
func (r *Replica) OffsetForTimestamp(tsMs int64) (offset int64, found bool, err error) {
	l, _, hw, err := r.current()
	if err != nil {
		return 0, false, err
	}
	off, ok, err := l.OffsetForTimestamp(tsMs)
	if err != nil || !ok || off >= hw {
		return 0, false, err
	}
	return off, true, nil
}

// OffsetForLeaderEpoch: Kafka semantics over the epochs stamped in the log.
// A closed replica answers (plog.UndefinedEpoch, plog.UndefinedOffset).
func (r *Replica) OffsetForLeaderEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	l, _, _, err := r.current()
	if err != nil {
		return plog.UndefinedEpoch, plog.UndefinedOffset
	}
	return l.OffsetForLeaderEpoch(epoch)
}

// RetentionStart is the log start offset the log's size and time retention
// would give now (plog.Log.RetentionStart; -1 limits are unlimited). It
// changes nothing: the partition leader proposes EncodeDeleteRecords with
// it when it is above LogStartOffset, so that every replica moves its
// start to the same offset through the Raft log. ErrClosed if closed.
func (r *Replica) RetentionStart(retentionBytes int64, retentionAge time.Duration) (int64, error) {
	l, _, _, err := r.current()
	if err != nil {
		return 0, err
	}
	return l.RetentionStart(retentionBytes, retentionAge), nil
}

// SetTuning changes the segment settings of the open log (zero fields take
// Options.Log's values; values outside plog's bounds are clamped, see
// Tuning); the next append's roll decision uses them. ErrClosed if closed.
// A snapshot recovery reopens the log with Options.Tuning instead.
func (r *Replica) SetTuning(t Tuning) error {
	l, _, _, err := r.current()
	if err != nil {
		return err
	}
	t = t.or(r.defaults).clamped(r.indexIntervalBytes)
	if err := l.SetSegmentLimits(t.SegmentBytesMax, t.SegmentAgeMax); err != nil {
		if errors.Is(err, plog.ErrClosed) {
			return ErrClosed
		}
		return err
	}
	return nil
}

// ProducerState describes one idempotent producer (DescribeProducers).
type ProducerState struct {
	ProducerID        int64
	ProducerEpoch     int16
	LastSequence      int32
	LastTimestampMs   int64
	CoordinatorEpoch  int32
	CurrentTxnStartMs int64
	// CurrentTxnStartOffset is the first offset of the producer's open
	// transaction on this partition, -1 if none.
	CurrentTxnStartOffset int64
}

// Producers lists the producers this replica knows, by producer id.
// CoordinatorEpoch and CurrentTxnStartMs are -1 (no transactions yet).
func (r *Replica) Producers() []ProducerState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.producers == nil {
		return nil
	}
	return r.producers.states(r.txns)
}

// LastStableOffset is the first offset of the oldest open transaction, or
// the high watermark when none is open.
func (r *Replica) LastStableOffset() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lso
}

// FetchCommitted is Fetch for isolation_level=read_committed: nothing at or
// beyond the last stable offset is returned, and aborted lists the aborted
// transactions that overlap the returned batches (Kafka's
// AbortedTransactions: the consumer drops their records). lso is the last
// stable offset the read used. An offset in [lso, hw] returns no bytes.
func (r *Replica) FetchCommitted(offset int64, maxBytes int) (b []byte, aborted []AbortedTxn, lso int64, err error) {
	r.mu.Lock()
	l, start, hw, lso, closed := r.log, r.start, r.hw, r.lso, r.closed || r.log == nil
	r.mu.Unlock()
	if closed {
		return nil, nil, 0, ErrClosed
	}
	if offset < start || offset > hw {
		return nil, nil, lso, fmt.Errorf("%w: offset %d outside [%d, %d]", plog.ErrOffsetOutOfRange, offset, start, hw)
	}
	if offset >= lso {
		return nil, nil, lso, nil
	}
	b, err = l.Read(offset, maxBytes, lso)
	if errors.Is(err, plog.ErrClosed) {
		return nil, nil, lso, ErrClosed
	}
	if err != nil || len(b) == 0 {
		return nil, nil, lso, err
	}
	upper := lastOffsetOf(b) + 1
	r.mu.Lock()
	aborted = r.txns.abortedIn(offset, upper)
	r.mu.Unlock()
	return b, aborted, lso, nil
}

// lastOffsetOf is the last offset of the last whole batch in b (batches
// as plog.Read returns them: whole and verified).
func lastOffsetOf(b []byte) int64 {
	var last int64 = -1
	for len(b) >= batchHeaderBytes {
		n := int(binary.BigEndian.Uint32(b[8:])) + 12
		if n < batchHeaderBytes || n > len(b) {
			break
		}
		last = int64(binary.BigEndian.Uint64(b)) + int64(int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])))
		b = b[n:]
	}
	return last
}

// SinceSync returns how many entries, of how many command bytes, were
// applied since the state machine's last Sync (dragonboat syncs an
// on-disk state machine before each snapshot): what the Raft log holds
// that a snapshot now would let dragonboat compact.
func (r *Replica) SinceSync() (entries uint64, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sinceSyncEntries, r.sinceSyncBytes
}
