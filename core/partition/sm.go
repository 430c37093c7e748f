package partition

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"strconv"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/pingcap/failpoint"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/plog"
)

// Files of one replica, under Options.Dir/<shardID>/:
//
//	log/                 the plog.Log
//	producers.state      producer checkpoint (see doc.go)
//	producers.state.tmp  its atomic-write temporary
//	recover/             snapshot recovery staging (log/, producers.state)
const (
	logDirName        = "log"
	stagingDirName    = "recover"
	checkpointName    = "producers.state"
	checkpointTmpName = "producers.state.tmp"
)

var errCorruptState = errors.New("partition: corrupt state")

func replicaDir(opts Options, shardID uint64) string {
	return path.Join(opts.Dir, strconv.FormatUint(shardID, 10))
}

// Query values for Lookup.
type Query uint8

const (
	QueryHighWatermark Query = 1 // answers int64
	QueryAppliedIndex  Query = 2 // answers uint64
	QueryLogStart      Query = 3 // answers int64
)

// stateMachine is the dragonboat IOnDiskStateMachine of one partition.
// Update, Sync, PrepareSnapshot, RecoverFromSnapshot and Close are mutually
// excluded by dragonboat; Lookup, SaveSnapshot and every Replica method may
// run concurrently with them and read only through rep (under rep.mu) or the
// log (safe for concurrent use).
type stateMachine struct {
	opts               Options
	reg                *Registry
	shardID, replicaID uint64
	dir                string
	logger             *slog.Logger
	rep                *Replica

	log *plog.Log
	// producers and txns are mutated only by the apply path, under rep.mu.
	producers *producerTable
	txns      *txnState
	// lastEpoch is the newest leader epoch stamped in the log (-1: none).
	// Invariant: non-decreasing along the log.
	lastEpoch int32
	// applied is the index of the last entry applied.
	applied uint64
	hdrs    []batchHeader // scratch
	// stopped is the storage failure that stopped this replica (nil:
	// running); see Options.OnStorageFailure. Set and read only by the
	// methods dragonboat excludes mutually (Open, Update, Sync,
	// PrepareSnapshot, RecoverFromSnapshot).
	stopped error
	// sinceSync counts the entries applied, and their command bytes, since
	// the last Sync (the Raft log a snapshot would let dragonboat compact);
	// published to Replica.SinceSync. Apply path and Sync only.
	sinceSyncEntries uint64
	sinceSyncBytes   int64
}

// storageFailed hands err, a storage failure met while opening or
// recovering, to the node's fail-stop and returns abort (wrapping err's
// text), which dragonboat takes for "stopping" rather than panicking;
// the replica answers nothing from now on. Without a hook it returns err.
func (s *stateMachine) storageFailed(err, abort error) error {
	if s.opts.OnStorageFailure == nil {
		return err
	}
	s.logger.Error("partition replica stopped by a storage failure", "err", err)
	s.stopped = err
	s.opts.OnStorageFailure(err)
	// One %w: dragonboat matches with cockroachdb/errors.Is, which does
	// not follow multi-%w wrapping.
	return fmt.Errorf("%w: %v", abort, err)
}

func newStateMachine(opts Options, reg *Registry, shardID, replicaID uint64) *stateMachine {
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("shard", shardID, "replica", replicaID)
	opts.Logger = logger
	return &stateMachine{
		opts: opts, reg: reg, shardID: shardID, replicaID: replicaID,
		dir: replicaDir(opts, shardID), logger: logger, lastEpoch: -1,
	}
}

func (s *stateMachine) logOptions() plog.Options { return s.logOptionsIn(s.dir) }

// logOptionsIn is the replica's plog.Options for a log in dir: the template
// with this shard's Tuning, and BatchBytesMax at plog's limit, so that the
// log never refuses a batch that apply accepted under the command's
// BatchBytesMax (every replica then decides MESSAGE_TOO_LARGE alike, in
// applyProduce).
func (s *stateMachine) logOptionsIn(dir string) plog.Options {
	o := s.opts.Log
	o.FS, o.Dir, o.Clock, o.Logger = s.opts.FS, path.Join(dir, logDirName), s.opts.Clock, s.logger
	o.BatchBytesMax = plog.BatchBytesLimit
	if s.opts.Tuning != nil {
		t := s.opts.Tuning(s.shardID).or(s.tuningDefaults()).clamped(s.indexIntervalBytes())
		o.SegmentBytesMax, o.SegmentAgeMax = t.SegmentBytesMax, t.SegmentAgeMax
	}
	return o
}

func (s *stateMachine) indexIntervalBytes() int64 {
	if s.opts.Log.IndexIntervalBytes > 0 {
		return s.opts.Log.IndexIntervalBytes
	}
	return plog.DefaultIndexIntervalBytes
}

func (s *stateMachine) tuningDefaults() Tuning {
	return Tuning{SegmentBytesMax: s.opts.Log.SegmentBytesMax, SegmentAgeMax: s.opts.Log.SegmentAgeMax}
}

// batchBytesMax is the max.message.bytes apply enforces for p: the one the
// proposer checked, or (version-1 commands) the template's.
func (s *stateMachine) batchBytesMax(p Produce) int {
	switch {
	case p.BatchBytesMax > 0:
		return int(p.BatchBytesMax)
	case s.opts.Log.BatchBytesMax > 0:
		return s.opts.Log.BatchBytesMax
	}
	return plog.DefaultBatchBytesMax
}

// Open opens the log, rebuilds the producer table (checkpoint plus a scan of
// the batches after it) and returns the last applied index that is durable.
func (s *stateMachine) Open(stopc <-chan struct{}) (uint64, error) {
	applied, err := s.open()
	if err != nil {
		return 0, s.storageFailed(err, sm.ErrOpenStopped)
	}
	return applied, nil
}

func (s *stateMachine) open() (uint64, error) {
	if err := s.opts.FS.MkdirAll(s.dir); err != nil {
		return 0, err
	}
	// A snapshot recovery cut by a crash left only its staging directory:
	// the live state is still whole (see RecoverFromSnapshot).
	if err := s.opts.FS.RemoveAll(path.Join(s.dir, stagingDirName)); err != nil {
		return 0, err
	}
	l, err := plog.Open(s.logOptions())
	if err != nil {
		return 0, fmt.Errorf("partition: shard %d: open log: %w", s.shardID, err)
	}
	producers, ck, err := s.loadProducers(l)
	if err != nil {
		_ = l.Close()
		return 0, err
	}
	s.log, s.producers, s.txns = l, producers, ck.txns
	s.applied = max(ck.applied, l.LastDurableRaftIndex())
	s.lastEpoch = max(ck.lastEpoch, lastEpochOf(l))
	s.rep = newReplica(s.shardID, s.replicaID, producers, ck.txns)
	s.rep.defaults, s.rep.indexIntervalBytes = s.tuningDefaults(), s.indexIntervalBytes()
	s.publish()
	s.reg.register(s.rep)
	s.logger.Info("partition replica opened", "applied", s.applied,
		"logStart", l.StartOffset(), "hw", l.NextOffset(), "producers", producers.lru.Len())
	return s.applied, nil
}

// lastEpochOf finds the newest epoch in l's leader-epoch cache (-1 if
// none). OffsetForLeaderEpoch(e) is defined exactly for e <= the newest
// epoch, so a binary search over int32 finds it in 32 steps.
func lastEpochOf(l *plog.Log) int32 {
	lo, hi := int64(-1), int64(math.MaxInt32) // invariant: lo defined (or -1), hi+1 undefined
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if e, _ := l.OffsetForLeaderEpoch(int32(mid)); e != plog.UndefinedEpoch {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return int32(lo)
}

// publish makes the state after an apply visible to readers and wakes
// long polls if the high watermark moved.
func (s *stateMachine) publish() { s.publishApplied(applyTiming{}) }

// publishApplied is publish that also records t (if it names entries) for
// ApplyTiming.
func (s *stateMachine) publishApplied(t applyTiming) {
	r := s.rep
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.last != 0 {
		r.timings[r.timingNext%applyTimingsMax] = t
		r.timingNext++
	}
	// Read under r.mu (in-memory, no I/O): r.start is set only here, from
	// the log after apply, so it is the replicated start.
	hw, start := s.log.NextOffset(), s.log.StartOffset()
	r.log, r.producers, r.txns, r.start, r.applied = s.log, s.producers, s.txns, start, s.applied
	r.sinceSyncEntries, r.sinceSyncBytes = s.sinceSyncEntries, s.sinceSyncBytes
	r.lso = s.txns.lso(hw)
	if hw != r.hw {
		r.hw = hw
		close(r.waitc)
		r.waitc = make(chan struct{})
	}
}

// Update applies committed entries. Bad commands and rejected produces get
// error-code results; only a failing log (storage) returns a Go error,
// which stops the replica (fail-stop, as a Kafka log-dir failure).
func (s *stateMachine) Update(entries []sm.Entry) ([]sm.Entry, error) {
	if s.stopped != nil {
		// Fenced by the node's fail-stop, which is tearing it down:
		// nothing is applied, nobody is answered success.
		for i := range entries {
			entries[i].Result = encodeResult(kindUnknown, ProduceResult{ErrorCode: kerr.KafkaStorageError.Code, BaseOffset: -1, LastOffset: -1, LogAppendTimeMs: -1, Index: entries[i].Index})
		}
		return entries, nil
	}
	// Timed on the node's clock for the produce stage metrics
	// (ApplyTiming); the readings change nothing here.
	timing := applyTiming{start: s.opts.Clock.Now()}
	for i := range entries {
		e := &entries[i]
		if e.Index <= s.applied {
			// Already in the durable state (replay overlap): nobody waits
			// for this result.
			e.Result = encodeResult(kindUnknown, ProduceResult{ErrorCode: kerr.UnknownServerError.Code, BaseOffset: -1, LastOffset: -1, LogAppendTimeMs: -1, Index: e.Index})
			continue
		}
		res, err := s.apply(e.Index, e.Cmd)
		if err != nil {
			s.logger.Error("partition apply failed: stopping", "index", e.Index, "err", err)
			return entries, err
		}
		stampIndex(&res, e.Index)
		e.Result = res
		s.applied = e.Index
		s.sinceSyncEntries++
		s.sinceSyncBytes += int64(len(e.Cmd))
	}
	failpoint.Inject("afterApply", func() { failpoint.Return(entries, errFailpoint) })
	if len(entries) > 0 {
		timing.first, timing.last, timing.end = entries[0].Index, entries[len(entries)-1].Index, s.opts.Clock.Now()
	}
	s.publishApplied(timing)
	return entries, nil
}

func (s *stateMachine) apply(index uint64, cmd []byte) (sm.Result, error) {
	failpoint.Inject("beforeApply", func() { failpoint.Return(sm.Result{}, errFailpoint) })
	c, err := DecodeCommand(cmd)
	if err != nil {
		s.logger.Warn("undecodable partition command", "index", index, "bytes", len(cmd), "err", err)
		return encodeResult(kindUnknown, s.errorResult(kerr.InvalidRequest.Code)), nil
	}
	switch c.Kind {
	case KindProduce:
		return s.applyProduce(index, c.Produce)
	case KindMarker:
		return s.applyMarker(index, c.Marker)
	default:
		return s.applyDeleteRecords(c.DeleteRecords)
	}
}

func (s *stateMachine) errorResult(code int16) ProduceResult {
	return ProduceResult{ErrorCode: code, BaseOffset: -1, LastOffset: -1, LogAppendTimeMs: -1, LogStartOffset: s.log.StartOffset()}
}

// validationCode maps plog's append-validation sentinels to Kafka codes.
func validationCode(err error) int16 {
	switch {
	case errors.Is(err, plog.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, plog.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, plog.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	}
	return kerr.KafkaStorageError.Code
}

func (s *stateMachine) applyProduce(index uint64, p Produce) (sm.Result, error) {
	// The command's limit, not this replica's config: every replica
	// applies the same entry to the same verdict.
	if _, err := plog.ValidateBatches(p.Batches, s.batchBytesMax(p)); err != nil {
		return encodeProduceResult(s.errorResult(validationCode(err))), nil
	}
	hdrs, err := parseBatchHeaders(p.Batches, s.hdrs[:0])
	s.hdrs = hdrs
	if err != nil {
		return encodeProduceResult(s.errorResult(kerr.CorruptMessage.Code)), nil
	}
	out := checkIdempotence(s.producers, hdrs, s.log.NextOffset())
	switch {
	case out.errorCode != 0:
		return encodeProduceResult(s.errorResult(out.errorCode)), nil
	case out.duplicate:
		r := s.errorResult(0)
		r.BaseOffset, r.LastOffset, r.Duplicate = out.dupBase, out.dupLast, true
		// The retry's stamp: the original batches' append time is not kept.
		r.LogAppendTimeMs = p.LogAppendTimeMs
		return encodeProduceResult(r), nil
	}
	epoch := max(p.LeaderEpoch, s.lastEpoch)
	// The CRCs were checked above (ValidateBatches): not a second time.
	ar, err := s.log.AppendCRCChecked(p.Batches, index, epoch)
	if err != nil {
		if code := validationCode(err); code != kerr.KafkaStorageError.Code {
			return encodeProduceResult(s.errorResult(code)), nil
		}
		return sm.Result{}, fmt.Errorf("partition: shard %d: append at index %d: %w", s.shardID, index, err)
	}
	s.lastEpoch = epoch
	s.rep.mu.Lock()
	for _, b := range out.pending {
		s.producers.record(b.pid, b.epoch, b.meta, b.maxTsMs)
		if b.txn {
			s.txns.observeData(b.pid, b.meta.baseOffset)
		}
	}
	s.rep.mu.Unlock()
	return encodeProduceResult(ProduceResult{
		BaseOffset: ar.BaseOffset, LastOffset: ar.LastOffset, LogAppendTimeMs: p.LogAppendTimeMs,
		LogStartOffset: s.log.StartOffset(),
	}), nil
}

// applyMarker writes a transaction marker (a control batch built here, so
// every replica stores the same bytes) and closes the producer's open
// transaction; see Marker.
func (s *stateMachine) applyMarker(index uint64, m Marker) (sm.Result, error) {
	p := s.producers.byID[m.ProducerID]
	if p != nil && m.Decision > 0 && m.Decision <= p.decision {
		// Carried out already (a leader crashed between the marker and
		// its report, or a lagging view): writing it again could end the
		// producer's next transaction here. See Marker.Decision.
		return encodeResult(KindMarker, ProduceResult{BaseOffset: -1, LastOffset: -1, LogAppendTimeMs: -1,
			LogStartOffset: s.log.StartOffset()}), nil
	}
	if p != nil && p.epoch > m.ProducerEpoch {
		return encodeResult(KindMarker, s.errorResult(kerr.InvalidProducerEpoch.Code)), nil
	}
	typ := ControlAbort
	if m.Commit {
		typ = ControlCommit
	}
	batch := buildControlBatch(m.ProducerID, m.ProducerEpoch, typ, m.CoordinatorEpoch, m.Decision, m.TimestampMs)
	epoch := max(m.LeaderEpoch, s.lastEpoch)
	ar, err := s.log.Append(batch, index, epoch)
	if err != nil {
		return sm.Result{}, fmt.Errorf("partition: shard %d: marker at index %d: %w", s.shardID, index, err)
	}
	s.lastEpoch = epoch
	s.rep.mu.Lock()
	s.producers.marker(m.ProducerID, m.ProducerEpoch, m.Decision, m.TimestampMs)
	s.txns.observeMarker(m.ProducerID, typ, ar.BaseOffset)
	s.rep.mu.Unlock()
	return encodeResult(KindMarker, ProduceResult{
		BaseOffset: ar.BaseOffset, LastOffset: ar.LastOffset, LogAppendTimeMs: -1,
		LogStartOffset: s.log.StartOffset(),
	}), nil
}

func (s *stateMachine) applyDeleteRecords(d DeleteRecords) (sm.Result, error) {
	hw := s.log.NextOffset()
	off := d.Offset
	if off == -1 {
		off = hw
	}
	if off < 0 || off > hw {
		return encodeDeleteRecordsResult(DeleteRecordsResult{
			ErrorCode: kerr.OffsetOutOfRange.Code, LogStartOffset: s.log.StartOffset(),
		}), nil
	}
	if off > s.log.StartOffset() {
		// The producer table is recovered as its checkpoint plus a scan
		// of the batches after the offset the checkpoint covers; deleting
		// batches the checkpoint does not cover would lose their
		// sequences, and a replica reopened after a crash would then
		// refuse the entries after it (OUT_OF_ORDER_SEQUENCE_NUMBER)
		// where the others appended: divergent replicas. So the state up
		// to the previous entry is made durable first (as Sync does).
		if err := s.persist(); err != nil {
			return sm.Result{}, fmt.Errorf("partition: shard %d: before delete records to %d: %w", s.shardID, off, err)
		}
	}
	if err := s.log.DeletePrefix(off); err != nil {
		return sm.Result{}, fmt.Errorf("partition: shard %d: delete records to %d: %w", s.shardID, off, err)
	}
	s.rep.mu.Lock()
	s.txns.prune(s.log.StartOffset())
	s.rep.mu.Unlock()
	return encodeDeleteRecordsResult(DeleteRecordsResult{LogStartOffset: s.log.StartOffset()}), nil
}

// persist makes every applied entry durable: the log is fsynced, then
// the producer checkpoint (with the applied index and the offset it
// covers) is written atomically.
func (s *stateMachine) persist() error {
	if err := s.log.Sync(context.Background()); err != nil {
		return fmt.Errorf("sync log: %w", err)
	}
	if err := s.writeCheckpoint(); err != nil {
		return fmt.Errorf("write producer checkpoint: %w", err)
	}
	return nil
}

// Lookup answers a Query.
func (s *stateMachine) Lookup(query any) (any, error) {
	q, ok := query.(Query)
	if !ok {
		return nil, fmt.Errorf("partition: unknown query %T", query)
	}
	r := s.rep
	if r == nil {
		return nil, ErrClosed // Open failed (storage failure)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch q {
	case QueryHighWatermark:
		return r.hw, nil
	case QueryAppliedIndex:
		return r.applied, nil
	case QueryLogStart:
		return r.start, nil
	}
	return nil, fmt.Errorf("partition: unknown query %d", q)
}

// Sync makes every applied entry durable: the log is fsynced, then the
// producer checkpoint (with the applied index) is written atomically.
func (s *stateMachine) Sync() error {
	if s.stopped != nil {
		return nil // fenced: nothing of it may become durable
	}
	failpoint.Inject("syncError", func() { failpoint.Return(errFailpoint) })
	if err := s.persist(); err != nil {
		return err
	}
	s.sinceSyncEntries, s.sinceSyncBytes = 0, 0
	s.publish()
	return nil
}

// Close closes the log (durably, with a fresh producer checkpoint) and
// unregisters the replica; long polls wake.
func (s *stateMachine) Close() error {
	if s.rep == nil {
		return nil
	}
	defer s.rep.release()
	s.reg.unregister(s.rep)
	s.rep.mu.Lock()
	if !s.rep.closed {
		s.rep.closed = true
		close(s.rep.waitc)
	}
	s.rep.log = nil
	s.rep.mu.Unlock()
	if s.log == nil {
		return nil
	}
	if err := s.persist(); err != nil {
		s.logger.Warn("partition close: checkpoint not written", "err", err)
	}
	err := s.log.Close()
	s.log = nil
	return err
}
