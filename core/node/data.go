package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/pingcap/failpoint"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/partition"
	"github.com/chronik-go/chronik/core/plog"
)

// ProduceResult is the outcome of one partition's produce. ErrorCode is a
// Kafka error code; 0 means the batches are committed and applied.
type ProduceResult struct {
	ErrorCode       int16
	BaseOffset      int64
	LastOffset      int64
	LogAppendTimeMs int64
	LogStartOffset  int64
	Duplicate       bool
	LeaderEpoch     int32 // the term this node proposed in
}

// FetchResult is one partition's fetch: whole batches from the one
// holding the requested offset, never beyond HighWatermark.
type FetchResult struct {
	ErrorCode        int16
	HighWatermark    int64
	LastStableOffset int64 // first offset of the oldest open transaction, else HighWatermark
	LogStartOffset   int64
	Records          []byte
	LeaderEpoch      int32
	// AbortedTxns (read_committed only, FetchCommitted) are the aborted
	// transactions overlapping Records.
	AbortedTxns []partition.AbortedTxn
}

// leaderPartition resolves topic/partition to its shard, checks that this
// node leads it and is ready (see ensureReady), and returns the local
// replica.
func (n *Node) leaderPartition(ctx context.Context, topic string, part int32) (uint64, *partition.Replica, int32, int16) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	if n.closed.Load() {
		return 0, nil, -1, kerr.NotLeaderForPartition.Code
	}
	p, ok := partitionOf(n.view(), topic, part)
	if !ok {
		return 0, nil, -1, kerr.UnknownTopicOrPartition.Code
	}
	term, ok := n.leaderTerm(p.ShardID)
	if !ok {
		return 0, nil, -1, kerr.NotLeaderForPartition.Code
	}
	if err := n.ensureReady(ctx, p.ShardID, term); err != nil {
		return 0, nil, -1, n.errCode(ctx, err)
	}
	rep, ok := n.reg.Get(p.ShardID)
	if !ok {
		return 0, nil, -1, kerr.NotLeaderForPartition.Code
	}
	return p.ShardID, rep, epochOf(term), 0
}

// errCode maps a dragonboat/context error of a request to a Kafka code.
// Every mapping is retriable and none is a success: a timed-out proposal
// may still commit later, which the idempotent producer state absorbs.
func (n *Node) errCode(ctx context.Context, err error) int16 {
	switch {
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, dragonboat.ErrTimeout):
		return kerr.RequestTimedOut.Code
	default: // ErrShardNotReady, ErrRejected, ErrAborted, ErrClosed, ErrShardClosed, errNotLeader, ...
		return kerr.NotLeaderForPartition.Code
	}
}

// maxMessageBytes is the topic's max.message.bytes (TopicSettings).
func (n *Node) maxMessageBytes(topic string) int { return n.TopicSettingsOf(topic).MaxMessageBytes }

// ProduceOptions qualifies a produce request.
type ProduceOptions struct {
	// Acks is the request's acks. -1 (all) applies the topic's
	// min.insync.replicas (doc.go, "In-sync replicas"); 0 and 1 (and the
	// zero value) do not, as in Kafka.
	Acks int16
	// Start is when the Kafka handler started, on the node's clock
	// (Node.Now); zero: not measured. Only the stage metrics read it.
	Start time.Time
	// Timeout is the request's own timeout (its ctx's deadline is the
	// one that answers; this one bounds dragonboat's pending proposal);
	// zero: requestTimeoutDefault.
	Timeout time.Duration
	// Submitted, if set, is called once, as soon as the entry is in its
	// shard's proposal queue (or ProduceWith knows it will propose
	// nothing), before the answer is awaited. A caller that must keep a
	// connection's produces in order lets the next one propose from then
	// on: the queue is FIFO, so entries reach the Raft log in the order
	// they were submitted.
	Submitted func()
}

// Produce is ProduceWith without acks=all: min.insync.replicas is not
// applied.
func (n *Node) Produce(ctx context.Context, topic string, part int32, batches []byte) ProduceResult {
	return n.ProduceWith(ctx, topic, part, batches, ProduceOptions{})
}

// ProduceWith appends batches (one or more v2 record batches of one
// partition) as one Raft entry and answers only once it is applied. The
// batches are validated first; invalid ones are never proposed. With
// acks=-1 and fewer in-sync replicas than the topic's min.insync.replicas
// nothing is proposed (NOT_ENOUGH_REPLICAS); where min.insync.replicas is
// above the Raft majority, the answer also waits (bounded by ctx) until
// that many replicas hold the entry, or is NOT_ENOUGH_REPLICAS_AFTER_APPEND
// (the records stay in the log, as in Kafka).
func (n *Node) ProduceWith(ctx context.Context, topic string, part int32, batches []byte, opts ProduceOptions) ProduceResult {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	submitted := func() {}
	if opts.Submitted != nil {
		submitted = sync.OnceFunc(opts.Submitted)
	}
	defer submitted() // every path that proposes nothing
	res := ProduceResult{BaseOffset: -1, LastOffset: -1, LogAppendTimeMs: -1, LogStartOffset: -1, LeaderEpoch: -1}
	if n.view().Topic(topic) == nil && n.cfg.AutoCreateTopics && !n.closed.Load() {
		n.autoCreate(ctx, topic)
	}
	// One value for the front-end check and the command: apply enforces
	// exactly the limit checked here, on every replica.
	maxBytes := n.maxMessageBytes(topic)
	if _, err := plog.ValidateBatches(batches, maxBytes); err != nil {
		res.ErrorCode = batchErrCode(err)
		return res
	}
	shard, rep, epoch, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		res.ErrorCode = code
		return res
	}
	res.LeaderEpoch = epoch
	minISR := 0 // not checked
	if opts.Acks == -1 {
		minISR = n.TopicSettingsOf(topic).MinInsyncReplicas
	}
	if minISR > 1 {
		if n.isrSizeFor(topic, part, shard, uint64(epoch), rep) < minISR {
			res.ErrorCode = kerr.NotEnoughReplicas.Code
			return res
		}
	}
	p := partition.Produce{LeaderEpoch: epoch, BatchBytesMax: int32(maxBytes), LogAppendTimeMs: -1, Batches: batches}
	if n.TopicSettingsOf(topic).LogAppendTime {
		// Stamped once, here, so the Raft log carries the final bytes and
		// every replica stores the same ones. batches is the request's
		// own buffer (kmsg decodes each partition's records into its own
		// region and nothing reads them after this call), so it is
		// rewritten in place.
		p.LogAppendTimeMs = n.cfg.Clock.Now().UnixMilli()
		if err := partition.StampLogAppendTime(batches, p.LogAppendTimeMs); err != nil {
			res.ErrorCode = batchErrCode(err)
			return res
		}
	}
	cmd := partition.AppendProduce(getProposalBuf(partition.ProduceCommandBytes(p)), p)
	if n.cfg.UnsafeAckBeforeApply {
		res = n.unsafeAck(shard, rep, cmd, res)
		putProposalBuf(cmd)
		return res // submitted by the deferred call
	}
	submittedAt := n.cfg.Clock.Now()
	rs, err := n.proposeAsync(ctx, shard, cmd, opts.Timeout)
	putProposalBuf(cmd) // dragonboat copied it into the entry (see proposalPool)
	submitted()
	var r sm.Result
	if err == nil {
		r, err = awaitProposal(ctx, rs)
	}
	if err != nil {
		res.ErrorCode = n.errCode(ctx, err)
		return res
	}
	pr, err := partition.DecodeProduceResult(r)
	if err != nil {
		n.log.Error("undecodable produce result", "shard", shard, "err", err)
		res.ErrorCode = kerr.UnknownServerError.Code
		return res
	}
	n.observeProduce(opts.Start, submittedAt, n.cfg.Clock.Now(), rep, pr.Index)
	res.ErrorCode, res.BaseOffset, res.LastOffset = pr.ErrorCode, pr.BaseOffset, pr.LastOffset
	res.LogAppendTimeMs, res.LogStartOffset, res.Duplicate = pr.LogAppendTimeMs, pr.LogStartOffset, pr.Duplicate
	if res.ErrorCode == 0 && minISR > 1 {
		res.ErrorCode = n.awaitMinISR(ctx, topic, part, shard, uint64(epoch), pr.Index, rep, minISR)
	}
	failpoint.Inject("beforeProduceResult", func(v failpoint.Value) {
		if v != nil { // "return"; "sleep" and "pause" only delay the answer
			res = lostProduceResult(epoch)
		}
	})
	return res
}

// proposalPool holds produce proposal buffers (as *[]byte). A proposal is
// encoded into one, proposed, and the buffer returned as soon as Propose
// or SyncPropose returns: dragonboat copies a non-empty command into the
// entry it creates before Propose returns (request.go, preparePayload:
// the entry carries its own encoded copy), so nothing keeps a slice of
// the buffer. TestProduceReadBackIdentical checks what was produced is
// what is read back, with concurrent produces sharing the pool (a version
// that stopped copying would have a reused buffer change entries in
// flight; the copy is in dragonboat's propose, request.go).
var proposalPool sync.Pool

// proposalBufKeepBytesMax: larger proposal buffers are left to the GC.
const proposalBufKeepBytesMax = 8 << 20

// getProposalBuf returns an empty buffer with room for n bytes.
func getProposalBuf(n int) []byte {
	if b, ok := proposalPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	return make([]byte, 0, n)
}

// putProposalBuf returns b to the pool; the caller keeps no slice of it.
func putProposalBuf(b []byte) {
	if cap(b) > proposalBufKeepBytesMax {
		return
	}
	b = b[:0]
	proposalPool.Put(&b)
}

// isrSizeFor is the number of in-sync replicas of the partition, led here
// in term. The shard is tracked first if the leader event has not been
// handled yet (a new term starts with the leader alone in sync).
func (n *Node) isrSizeFor(topic string, part int32, shard, term uint64, rep *partition.Replica) int {
	if !n.isr.tracked(shard, term) {
		if p, ok := partitionOf(n.view(), topic, part); ok && p.ShardID == shard {
			n.isr.track(shard, term, n.cfg.NodeID, rep, p.AllReplicas())
		}
	}
	return n.isr.isrSize(shard, term)
}

// awaitMinISR returns 0 once minISR replicas hold the applied entry at
// index. At or below the Raft majority every commit already means that
// (no wait); above it the leader waits for the followers'
// acknowledgements until ctx is done (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
func (n *Node) awaitMinISR(ctx context.Context, topic string, part int32, shard, term, index uint64, rep *partition.Replica, minISR int) int16 {
	p, ok := partitionOf(n.view(), topic, part)
	if !ok || p.ShardID != shard {
		return kerr.NotLeaderForPartition.Code
	}
	if minISR <= len(p.AllReplicas())/2+1 {
		return 0
	}
	if index == 0 {
		// A result without its index (cannot happen with this
		// partition package): the applied index covers the entry.
		index = rep.AppliedIndex()
	}
	switch err := n.isr.waitAcked(ctx, shard, term, index, minISR); {
	case err == nil:
		return 0
	case errors.Is(err, errNotLeader):
		return kerr.NotLeaderForPartition.Code
	default:
		return kerr.NotEnoughReplicasAfterAppend.Code
	}
}

func batchErrCode(err error) int16 {
	switch {
	case errors.Is(err, plog.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, plog.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	default:
		return kerr.InvalidRecord.Code
	}
}

// Fetch reads from this node's replica, as leader only.
func (n *Node) Fetch(ctx context.Context, topic string, part int32, offset int64, maxBytes int) FetchResult {
	res := FetchResult{HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, LeaderEpoch: -1}
	_, rep, epoch, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		res.ErrorCode = code
		return res
	}
	res.LeaderEpoch = epoch
	return n.readReplica(rep, offset, maxBytes, res)
}

// readErrorCode is the Kafka error code of a partition read's error (0 for
// nil).
func (n *Node) readErrorCode(err error, offset int64) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, plog.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, partition.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, plog.ErrCorruptLog):
		// A checksum failed on read (a bad disk or a flipped bit): the
		// bytes are never served; the client retries (a transient flip
		// reads clean again, a persistent one needs the operator).
		n.log.Warn("corrupt read refused: checksum mismatch in the partition log", "offset", offset, "err", err)
		return kerr.KafkaStorageError.Code
	default:
		return kerr.KafkaStorageError.Code
	}
}

func (n *Node) readReplica(rep *partition.Replica, offset int64, maxBytes int, res FetchResult) FetchResult {
	b, err := rep.Fetch(offset, maxBytes)
	res.ErrorCode = n.readErrorCode(err, offset)
	// Read after the fetch: never below what was served.
	res.HighWatermark = rep.HighWatermark()
	res.LastStableOffset = rep.LastStableOffset()
	res.LogStartOffset = rep.LogStartOffset()
	if err == nil {
		res.Records = b
	}
	return res
}

// FetchLocal reads this node's replica whatever its role (tests, replica
// comparison, follower diagnostics). Not for clients: a follower's high
// watermark may lag the leader's.
func (n *Node) FetchLocal(topic string, part int32, offset int64, maxBytes int) FetchResult {
	res := FetchResult{HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, LeaderEpoch: -1}
	p, ok := partitionOf(n.view(), topic, part)
	if !ok {
		res.ErrorCode = kerr.UnknownTopicOrPartition.Code
		return res
	}
	rep, ok := n.reg.Get(p.ShardID)
	if !ok {
		res.ErrorCode = kerr.NotLeaderForPartition.Code
		return res
	}
	return n.readReplica(rep, offset, maxBytes, res)
}

// WaitBeyond blocks until this node's replica of the partition has a high
// watermark above offset, or ctx is done (Fetch long polls). It returns
// ctx's error, or nil.
func (n *Node) WaitBeyond(ctx context.Context, topic string, part int32, offset int64) error {
	for {
		p, ok := partitionOf(n.view(), topic, part)
		if !ok {
			return nil
		}
		rep, ok := n.reg.Get(p.ShardID)
		if !ok {
			return nil
		}
		if rep.HighWatermark() > offset {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rep.WaitBeyond(offset):
		}
	}
}

// Kafka's special ListOffsets timestamps.
const (
	TimestampLatest   int64 = -1
	TimestampEarliest int64 = -2
)

// ListOffsetsResult is one partition's ListOffsets answer.
type ListOffsetsResult struct {
	ErrorCode   int16
	Offset      int64 // -1: no batch at or after the timestamp
	Timestamp   int64
	LeaderEpoch int32
}

// ListOffsets answers earliest (-2), latest (-1) or the first offset whose
// batch max timestamp is >= ts.
func (n *Node) ListOffsets(ctx context.Context, topic string, part int32, ts int64) ListOffsetsResult {
	res := ListOffsetsResult{Offset: -1, Timestamp: -1, LeaderEpoch: -1}
	_, rep, epoch, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		res.ErrorCode = code
		return res
	}
	res.LeaderEpoch = epoch
	switch ts {
	case TimestampLatest:
		res.Offset = rep.HighWatermark()
	case TimestampEarliest:
		res.Offset = rep.LogStartOffset()
	default:
		off, found, err := rep.OffsetForTimestamp(ts)
		switch {
		case err != nil:
			res.ErrorCode = kerr.KafkaStorageError.Code
		case found:
			res.Offset, res.Timestamp = off, ts
		}
	}
	return res
}

// EpochEndResult is one partition's OffsetForLeaderEpoch answer.
type EpochEndResult struct {
	ErrorCode   int16
	LeaderEpoch int32
	EndOffset   int64
}

// OffsetForLeaderEpoch answers with Kafka semantics from the epochs
// stamped in the leader's log.
func (n *Node) OffsetForLeaderEpoch(ctx context.Context, topic string, part int32, epoch int32) EpochEndResult {
	_, rep, cur, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		return EpochEndResult{ErrorCode: code, LeaderEpoch: -1, EndOffset: -1}
	}
	if epoch > cur {
		return EpochEndResult{ErrorCode: kerr.FencedLeaderEpoch.Code, LeaderEpoch: -1, EndOffset: -1}
	}
	e, off := rep.OffsetForLeaderEpoch(epoch)
	return EpochEndResult{LeaderEpoch: e, EndOffset: off}
}

// DeleteRecordsResult is one partition's DeleteRecords answer.
type DeleteRecordsResult struct {
	ErrorCode    int16
	LowWatermark int64
}

// DeleteRecords moves the log start offset to offset (-1: the high
// watermark) through the partition's Raft log.
func (n *Node) DeleteRecords(ctx context.Context, topic string, part int32, offset int64) DeleteRecordsResult {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	shard, _, _, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		return DeleteRecordsResult{ErrorCode: code, LowWatermark: -1}
	}
	r, err := n.nh.SyncPropose(ctx, n.nh.GetNoOPSession(shard), partition.EncodeDeleteRecords(partition.DeleteRecords{Offset: offset}))
	if err != nil {
		return DeleteRecordsResult{ErrorCode: n.errCode(ctx, err), LowWatermark: -1}
	}
	dr, err := partition.DecodeDeleteRecordsResult(r)
	if err != nil {
		return DeleteRecordsResult{ErrorCode: kerr.UnknownServerError.Code, LowWatermark: -1}
	}
	return DeleteRecordsResult{ErrorCode: dr.ErrorCode, LowWatermark: dr.LogStartOffset}
}

// unsafeAck is Config.UnsafeAckBeforeApply: the broken variant the
// simulator must catch. It acknowledges before the entry is committed.
func (n *Node) unsafeAck(shard uint64, rep *partition.Replica, cmd []byte, res ProduceResult) ProduceResult {
	if _, err := n.nh.Propose(n.nh.GetNoOPSession(shard), cmd, proposeTimeout); err != nil {
		res.ErrorCode = kerr.NotLeaderForPartition.Code
		return res
	}
	res.BaseOffset = rep.HighWatermark()
	res.LastOffset = res.BaseOffset
	res.LogStartOffset = rep.LogStartOffset()
	return res
}

// proposeAsync hands cmd to shard's proposal queue and returns once it
// is queued; the caller awaits the answer with awaitProposal (and ctx).
// timeout is dragonboat's own bound on the pending proposal (it must
// have one; ctx, which the caller also waits on, usually ends first).
// While the queue is full (dragonboat's ErrSystemBusy: the entry was not
// queued, so trying again is safe and keeps the order of the caller's
// proposals) it waits on the node's clock and tries again, until ctx
// ends: a full queue is backpressure, not an answer the client should
// take for a leader change. The command may be reused once it returns.
func (n *Node) proposeAsync(ctx context.Context, shard uint64, cmd []byte, timeout time.Duration) (*dragonboat.RequestState, error) {
	if timeout <= 0 {
		timeout = requestTimeoutDefault
	}
	return retryBusy(ctx, n.cfg.Clock, func() (*dragonboat.RequestState, error) {
		return n.nh.Propose(n.nh.GetNoOPSession(shard), cmd, timeout)
	})
}

// Waits between tries of a proposal refused with ErrSystemBusy.
const (
	busyRetryMin = time.Millisecond
	busyRetryMax = 20 * time.Millisecond
)

// retryBusy calls f until it returns anything but ErrSystemBusy, waiting
// busyRetryMin, doubling up to busyRetryMax, between tries; when ctx ends
// first it returns f's last error.
func retryBusy[T any](ctx context.Context, clk clock.Clock, f func() (T, error)) (T, error) {
	wait := busyRetryMin
	for {
		v, err := f()
		if !errors.Is(err, dragonboat.ErrSystemBusy) {
			return v, err
		}
		if clk.Sleep(ctx, wait) != nil {
			return v, err
		}
		wait = min(2*wait, busyRetryMax)
	}
}

// awaitProposal waits for rs's outcome and maps it to dragonboat's
// errors exactly as SyncPropose does, then releases rs on success.
func awaitProposal(ctx context.Context, rs *dragonboat.RequestState) (sm.Result, error) {
	select {
	case r := <-rs.AppliedC():
		switch {
		case r.Completed():
			rs.Release()
			return r.GetResult(), nil
		case r.Rejected():
			return sm.Result{}, dragonboat.ErrRejected
		case r.Timeout():
			return sm.Result{}, dragonboat.ErrTimeout
		case r.Terminated():
			return sm.Result{}, dragonboat.ErrShardClosed
		case r.Dropped():
			return sm.Result{}, dragonboat.ErrShardNotReady
		case r.Aborted():
			return sm.Result{}, dragonboat.ErrAborted
		}
		return sm.Result{}, fmt.Errorf("node: unknown proposal outcome %v", r)
	case <-ctx.Done():
		if ctx.Err() == context.Canceled {
			return sm.Result{}, dragonboat.ErrCanceled
		}
		return sm.Result{}, dragonboat.ErrTimeout
	}
}
