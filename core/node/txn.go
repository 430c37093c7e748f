package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
)

// Transactions (Kafka's transaction coordinator, KIP-98).
//
// The coordinator's state lives in the controller shard (core/meta,
// txn.go), and the coordinator of every transactional id is the controller
// leader, as for groups: its requests are local proposals there, and every
// node holds a replica, so any node can read a transaction's state.
//
// Markers are pulled, not pushed: once a transaction is PrepareCommit or
// PrepareAbort (replicated), the Raft leader of each of its partitions,
// wherever it is, sees it in its controller replica (View.PreparingTxns),
// proposes the marker to its own partition shard and reports it with
// meta.TxnMarkersWritten. Likewise the leader of each group shard of a
// committed transaction's staged offsets proposes them to its shard
// (meta.CommitTxnOffsets, deduplicated there by the decision's index) and
// reports meta.TxnGroupMarkersWritten; the last report completes the
// transaction. No broker-to-broker request is
// needed, and a failover of either the coordinator or a partition leader
// leaves the decision in the replicated state, where the next leader picks
// it up: a transaction finishes the way it was decided, never half. A
// marker may be written twice (a leader crashing between the marker and
// its report); the second finds no open transaction and changes nothing a
// reader sees.
//
// transaction.timeout.ms: the controller leader runs a pass every
// TxnTimeoutCheckInterval on the node's Clock and aborts, with the epoch
// bumped, every ongoing transaction started more than its timeout ago.
// The same pass forgets (meta.ExpireTxn, at most txnExpirePerPassMax) the
// transactional ids with no transaction in progress left unchanged for
// TxnIDExpiration (transactional.id.expiration.ms); the cutoff is this
// node's clock, apply reads none.

// Transaction defaults.
const (
	// DefaultTxnTimeoutCheckInterval is Kafka's
	// transaction.abort.timed.out.transaction.cleanup.interval.ms.
	DefaultTxnTimeoutCheckInterval = 10 * time.Second
	// DefaultTxnIDExpiration is Kafka's transactional.id.expiration.ms.
	DefaultTxnIDExpiration = 7 * 24 * time.Hour
	// txnExpirePerPassMax bounds the ids one pass forgets.
	txnExpirePerPassMax = 1000
	// txnMarkerRetryEvery is how often the marker writer looks again while
	// a transaction stays preparing (a partition without a leader, a
	// failed proposal).
	txnMarkerRetryEvery = 200 * time.Millisecond
	// txnEndWaitMax bounds how long EndTxn waits for the markers before
	// answering (the decision is already replicated; waiting only spares
	// the client a CONCURRENT_TRANSACTIONS round trip).
	txnEndWaitMax = 2 * time.Second
)

// TxnCode is a Kafka error code with the producer id and epoch a
// transaction request answers.
type TxnCode struct {
	Code       int16
	Message    string
	ProducerID int64
	Epoch      int16
}

func (n *Node) nowMs() int64 { return n.cfg.Clock.Now().UnixMilli() }

// NowMs is the node's clock in Unix milliseconds.
func (n *Node) NowMs() int64 { return n.nowMs() }

// txnPropose proposes cmd on the controller shard and maps failures to
// retriable Kafka codes (COORDINATOR_NOT_AVAILABLE / REQUEST_TIMED_OUT).
func (n *Node) txnPropose(ctx context.Context, cmd meta.Command) meta.Result {
	r, err := n.proposeMeta(ctx, cmd)
	if err != nil {
		code := metaCode(ctx, err)
		if code == kerr.NotController.Code {
			code = kerr.CoordinatorNotAvailable.Code
		}
		return meta.Result{Code: code, Message: err.Error()}
	}
	return r
}

// InitTxnProducer is InitProducerId for a transactional id (see
// meta.InitTxnProducer).
func (n *Node) InitTxnProducer(ctx context.Context, id string, timeoutMs int32, expectedPID int64, expectedEpoch int16) TxnCode {
	r := n.txnPropose(ctx, meta.InitTxnProducer{TxnID: id, TimeoutMs: timeoutMs, NowMs: n.nowMs(),
		ExpectedProducerID: expectedPID, ExpectedEpoch: expectedEpoch})
	if r.Code != 0 {
		return TxnCode{Code: r.Code, Message: r.Message, ProducerID: -1, Epoch: -1}
	}
	return TxnCode{ProducerID: r.ProducerIDs.First, Epoch: int16(r.ProducerIDs.Count)}
}

// AddTxnPartitions adds partitions to a transaction; one code per
// partition, in order.
func (n *Node) AddTxnPartitions(ctx context.Context, id string, pid int64, epoch int16, tps []meta.TopicPartition) []meta.PartitionCode {
	r := n.txnPropose(ctx, meta.AddTxnPartitions{TxnID: id, ProducerID: pid, Epoch: epoch, NowMs: n.nowMs(), Partitions: tps})
	if len(r.Partitions) == len(tps) {
		return r.Partitions
	}
	out := make([]meta.PartitionCode, len(tps))
	for i, p := range tps {
		out[i] = meta.PartitionCode{Topic: p.Topic, Partition: p.Partition, Code: r.Code}
	}
	return out
}

// AddTxnGroup adds a group to a transaction (AddOffsetsToTxn).
func (n *Node) AddTxnGroup(ctx context.Context, id string, pid int64, epoch int16, group string) int16 {
	return n.txnPropose(ctx, meta.AddTxnGroup{TxnID: id, ProducerID: pid, Epoch: epoch, NowMs: n.nowMs(), Group: group}).Code
}

// AddTxnGroupImplicit is TxnOffsetCommit v5's implicit AddOffsetsToTxn
// (KIP-890 part 2): group is added to the producer's transaction unless
// the local controller replica already shows it in the ongoing
// transaction at that epoch (a stale replica only costs the proposal).
func (n *Node) AddTxnGroupImplicit(ctx context.Context, id string, pid int64, epoch int16, group string) int16 {
	if t, ok := n.Txn(id); ok && t.ProducerID == pid && t.Epoch == epoch && t.State == meta.TxnOngoing && slices.Contains(t.Groups, group) {
		return 0
	}
	return n.AddTxnGroup(ctx, id, pid, epoch, group)
}

// TxnCommitOffsets stages offsets in a transaction; one code per offset.
func (n *Node) TxnCommitOffsets(ctx context.Context, id string, pid int64, epoch int16, group string, offsets []meta.OffsetCommit) []meta.PartitionCode {
	r := n.txnPropose(ctx, meta.TxnCommitOffsets{TxnID: id, ProducerID: pid, Epoch: epoch, Group: group, Offsets: offsets})
	if len(r.Partitions) == len(offsets) {
		return r.Partitions
	}
	out := make([]meta.PartitionCode, len(offsets))
	for i, o := range offsets {
		out[i] = meta.PartitionCode{Topic: o.Topic, Partition: o.Partition, Code: r.Code}
	}
	return out
}

// EndTxn commits or aborts a transaction; bump (EndTxn v5, KIP-890 part
// 2) bumps the producer's epoch with the decision, and the answer carries
// the producer id and epoch for the next transaction. The decision is
// replicated before it returns; it then waits (bounded by txnEndWaitMax
// and ctx) for the markers, so that the client's next transaction rarely
// meets CONCURRENT_TRANSACTIONS.
func (n *Node) EndTxn(ctx context.Context, id string, pid int64, epoch int16, commit, bump bool) TxnCode {
	r := n.txnPropose(ctx, meta.EndTxn{TxnID: id, ProducerID: pid, Epoch: epoch, Commit: commit, NowMs: n.nowMs(), Bump: bump})
	if r.Code != 0 {
		return TxnCode{Code: r.Code, Message: r.Message, ProducerID: -1, Epoch: -1}
	}
	wctx, cancel := context.WithTimeout(ctx, txnEndWaitMax)
	defer cancel()
	res := TxnCode{ProducerID: r.ProducerIDs.First, Epoch: int16(r.ProducerIDs.Count)}
	for {
		ch := n.meta.Load().Changed()
		if t, ok := n.Txn(id); !ok || t.ProducerID != res.ProducerID || !t.State.Preparing() {
			return res
		}
		select {
		case <-ch:
		case <-wctx.Done():
			return res
		}
	}
}

// Txn returns a transactional id's state from the local controller
// replica.
func (n *Node) Txn(id string) (*meta.Txn, bool) {
	v, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryTxn{ID: id})
	if err != nil {
		return nil, false
	}
	t := v.(*meta.Txn)
	return t, t != nil
}

// Txns lists transactions from the local controller replica (see
// meta.QueryTxns).
func (n *Node) Txns(q meta.QueryTxns) ([]*meta.Txn, error) {
	v, err := n.nh.StaleRead(meta.ControllerShardID, q)
	if err != nil {
		return nil, err
	}
	return v.([]*meta.Txn), nil
}

// VerifyTxnProduce is KIP-890 part 1 on the partition leader: a
// transactional batch of (pid, epoch) is accepted only if the producer's
// transaction is ongoing with that epoch and holds the partition. The
// local controller replica answers first; if it does not show the
// partition yet (AddPartitionsToTxn was answered by the coordinator,
// whose log this replica may not have applied), a linearizable read
// brings it up to date and the check runs again. Codes: 0;
// INVALID_PRODUCER_EPOCH (an older epoch: fenced); INVALID_TXN_STATE (no
// such ongoing transaction with the partition); retriable codes when the
// controller cannot be read.
func (n *Node) VerifyTxnProduce(ctx context.Context, topic string, part int32, pid int64, epoch int16) int16 {
	code := n.txnProduceCode(topic, part, pid, epoch)
	if code == 0 || code == kerr.InvalidProducerEpoch.Code {
		return code
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	if _, err := n.nh.SyncRead(ctx, meta.ControllerShardID, meta.QueryView{}); err != nil {
		return n.errCode(ctx, err)
	}
	return n.txnProduceCode(topic, part, pid, epoch)
}

// AddTxnProduce is KIP-890 part 2's implicit add (Produce v12+): a
// transactional batch of (pid, epoch) for transactional id txnID on a
// partition not yet in the producer's transaction adds it (starting the
// transaction), as AddPartitionsToTxn would, then passes. An older epoch
// is INVALID_PRODUCER_EPOCH; a coordinator that cannot take the add now
// (the previous transaction's markers being written, no controller
// leader) NOT_ENOUGH_REPLICAS, which producers retry.
func (n *Node) AddTxnProduce(ctx context.Context, txnID, topic string, part int32, pid int64, epoch int16) int16 {
	code := n.VerifyTxnProduce(ctx, topic, part, pid, epoch)
	if code != kerr.InvalidTxnState.Code {
		return code
	}
	out := n.AddTxnPartitions(ctx, txnID, pid, epoch, []meta.TopicPartition{{Topic: topic, Partition: part}})
	switch c := out[0].Code; c {
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.ConcurrentTransactions.Code, kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code, kerr.RequestTimedOut.Code:
		return kerr.NotEnoughReplicas.Code
	default:
		return c
	}
}

func (n *Node) txnProduceCode(topic string, part int32, pid int64, epoch int16) int16 {
	v, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryTxnByProducer{ProducerID: pid})
	if err != nil {
		return kerr.NotLeaderForPartition.Code
	}
	t := v.(*meta.Txn)
	switch {
	case t == nil:
		return kerr.InvalidTxnState.Code
	case epoch < t.Epoch:
		return kerr.InvalidProducerEpoch.Code
	case epoch != t.Epoch || t.State != meta.TxnOngoing || !t.HasPartition(topic, part):
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// txnMarkerLoop writes the markers of preparing transactions on the
// partitions this node leads.
func (n *Node) txnMarkerLoop() {
	n.watchView(txnMarkerRetryEvery, n.writeMarkers)
}

// writeMarkers handles every preparing transaction of v, at most
// txnMarkerWorkersMax at a time (each one's partitions in order, then its
// report), and waits for all; it asks to run again while any remains
// (another node may be its partitions' leader, or a proposal failed).
func (n *Node) writeMarkers(v *meta.View) bool {
	sem := make(chan struct{}, txnMarkerWorkersMax)
	var wg sync.WaitGroup
	for _, t := range v.PreparingTxns {
		if !n.leadsAnyOf(v, t.Partitions) && !n.leadsAnyGroupOf(v, t.Groups) {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			n.finishTxn(t)
		}()
	}
	wg.Wait()
	return len(v.PreparingTxns) > 0
}

// txnMarkerWorkersMax bounds the transactions whose markers one node
// writes at once.
const txnMarkerWorkersMax = 16

func (n *Node) leadsAnyOf(v *meta.View, tps []meta.TopicPartition) bool {
	for _, p := range tps {
		if pp, ok := partitionOf(v, p.Topic, p.Partition); ok {
			if _, leads := n.leaderTerm(pp.ShardID); leads {
				return true
			}
		}
	}
	return false
}

// leadsAnyGroupOf reports whether this node leads the group shard of
// any of groups (their markers, once group shards exist).
func (n *Node) leadsAnyGroupOf(v *meta.View, groups []string) bool {
	for _, grp := range groups {
		if g, ok := v.GroupShardFor(grp); ok {
			if _, leads := n.leaderTerm(g.ShardID); leads {
				return true
			}
		}
	}
	return false
}

// finishTxn writes t's markers on the partitions and group shards led
// here and reports them to the controller.
func (n *Node) finishTxn(t *meta.Txn) {
	n.finishTxnGroups(t)
	var done []meta.TopicPartition
	for _, p := range t.Partitions {
		if n.ctx.Err() != nil {
			return
		}
		if n.writeMarker(t, p) {
			done = append(done, p)
		}
	}
	if len(done) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	_, err := n.proposeMeta(ctx, meta.TxnMarkersWritten{TxnID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch, NowMs: n.nowMs(), Partitions: done})
	cancel()
	if err != nil && n.ctx.Err() == nil {
		n.log.Warn("transaction markers: report", "txn", t.ID, "err", err)
	}
}

// finishTxnGroups writes t's group markers in the group shards led here:
// a commit's offsets of those groups (meta.CommitTxnOffsets, deduplicated
// in the shard by t.DecisionIndex), nothing for an abort; then reports
// the groups (meta.TxnGroupMarkersWritten).
func (n *Node) finishTxnGroups(t *meta.Txn) {
	v := n.view()
	byShard := map[uint64][]string{}
	for _, grp := range t.Groups {
		if g, ok := v.GroupShardFor(grp); ok {
			if _, leads := n.leaderTerm(g.ShardID); leads {
				byShard[g.ShardID] = append(byShard[g.ShardID], grp)
			}
		}
	}
	var done []string
	for _, shard := range sortedIDs(byShard) {
		groups := byShard[shard]
		if t.State == meta.TxnPrepareCommit {
			cmd := meta.CommitTxnOffsets{ProducerID: t.ProducerID, Decision: t.DecisionIndex, CommitTimestampMs: n.nowMs()}
			for _, o := range t.Offsets {
				if slices.Contains(groups, o.Group) {
					cmd.Offsets = append(cmd.Offsets, o)
				}
			}
			ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
			err := n.proposeGroupOK(ctx, shard, cmd)
			cancel()
			if err != nil {
				if n.ctx.Err() == nil {
					n.log.Warn("transaction offsets: group shard", "txn", t.ID, "shard", shard, "err", err)
				}
				continue
			}
		}
		done = append(done, groups...)
	}
	if len(done) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	_, err := n.proposeMeta(ctx, meta.TxnGroupMarkersWritten{TxnID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch, NowMs: n.nowMs(), Groups: done})
	cancel()
	if err != nil && n.ctx.Err() == nil {
		n.log.Warn("transaction group markers: report", "txn", t.ID, "err", err)
	}
}

// writeMarker proposes t's marker to partition p if this node leads it,
// and reports whether the marker is in the log (or can never be: a newer
// producer epoch there already fenced the transaction's data).
func (n *Node) writeMarker(t *meta.Txn, p meta.TopicPartition) bool {
	pp, ok := partitionOf(n.view(), p.Topic, p.Partition)
	if !ok {
		return false // deleted: the controller drops it from the transaction
	}
	if _, leads := n.leaderTerm(pp.ShardID); !leads {
		return false
	}
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	defer cancel()
	shard, _, epoch, code := n.leaderPartition(ctx, p.Topic, p.Partition)
	if code != 0 {
		return false
	}
	pid, pepoch := t.MarkerProducer()
	cmd := partition.EncodeMarker(partition.Marker{ProducerID: pid, ProducerEpoch: pepoch,
		Commit: t.State == meta.TxnPrepareCommit, TimestampMs: n.nowMs(), LeaderEpoch: epoch, Decision: t.DecisionIndex})
	res, err := n.nh.SyncPropose(ctx, n.nh.GetNoOPSession(shard), cmd)
	if err != nil {
		return false
	}
	r, err := partition.DecodeMarkerResult(res)
	if err != nil {
		return false
	}
	if r.ErrorCode != 0 {
		n.log.Warn("transaction marker refused", "txn", t.ID, "topic", p.Topic, "partition", p.Partition, "code", r.ErrorCode)
		return r.ErrorCode == kerr.InvalidProducerEpoch.Code
	}
	return true
}

// txnTimeoutLoop aborts timed-out transactions while this node leads the
// controller shard.
func (n *Node) txnTimeoutLoop() {
	for n.cfg.Clock.Sleep(n.ctx, n.cfg.TxnTimeoutCheckInterval) == nil {
		n.txnTimeoutPass()
	}
}

func (n *Node) txnTimeoutPass() {
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	_, ok := n.CoordinatorTerm(ctx)
	cancel()
	if !ok {
		return
	}
	now := n.nowMs()
	v, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryTimedOutTxns{NowMs: now})
	if err != nil {
		return
	}
	for _, t := range v.([]*meta.Txn) {
		if n.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
		r, err := n.proposeMeta(ctx, meta.AbortTxn{TxnID: t.ID, ProducerID: t.ProducerID, Epoch: t.Epoch, NowMs: now})
		cancel()
		if err != nil || r.Code != 0 {
			n.log.Warn("transaction timeout: abort", "txn", t.ID, "err", err, "code", r.Code)
			continue
		}
		n.log.Info("transaction timed out: aborted", "txn", t.ID, "producerId", t.ProducerID, "epoch", t.Epoch, "timeoutMs", t.TimeoutMs)
	}
	n.txnExpirePass(now)
}

// txnExpirePass forgets idle transactional ids (transactional.id.expiration.ms).
func (n *Node) txnExpirePass(nowMs int64) {
	cutoff := nowMs - n.cfg.TxnIDExpiration.Milliseconds()
	v, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryExpirableTxns{CutoffMs: cutoff, Limit: txnExpirePerPassMax})
	if err != nil {
		return
	}
	ids := v.([]string)
	for _, id := range ids {
		if n.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
		_, err := n.proposeMeta(ctx, meta.ExpireTxn{TxnID: id, CutoffMs: cutoff})
		cancel()
		if err != nil {
			n.log.Warn("transactional id expiry", "txn", id, "err", err)
			return
		}
	}
	if len(ids) > 0 {
		n.log.Info("transactional ids expired", "count", len(ids), "cutoffMs", cutoff)
	}
}

// FetchCommitted is Fetch for isolation_level=read_committed: records
// below the last stable offset only, with the aborted transactions that
// overlap them (as leader only).
func (n *Node) FetchCommitted(ctx context.Context, topic string, part int32, offset int64, maxBytes int) FetchResult {
	res := FetchResult{HighWatermark: -1, LastStableOffset: -1, LogStartOffset: -1, LeaderEpoch: -1}
	_, rep, epoch, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		res.ErrorCode = code
		return res
	}
	res.LeaderEpoch = epoch
	b, aborted, lso, err := rep.FetchCommitted(offset, maxBytes)
	res.ErrorCode = n.readErrorCode(err, offset)
	res.HighWatermark, res.LogStartOffset = rep.HighWatermark(), rep.LogStartOffset()
	res.LastStableOffset = max(lso, rep.LastStableOffset())
	if err == nil {
		res.Records, res.AbortedTxns = b, aborted
	}
	return res
}

// LastStableOffset is the partition's last stable offset (as leader only):
// ListOffsets latest for read_committed.
func (n *Node) LastStableOffset(ctx context.Context, topic string, part int32) (int64, int16) {
	_, rep, _, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		return -1, code
	}
	return rep.LastStableOffset(), 0
}

// WriteTxnMarker writes one marker to a partition this node leads
// (WriteTxnMarkers); it changes no coordinator state.
func (n *Node) WriteTxnMarker(ctx context.Context, topic string, part int32, pid int64, epoch int16, commit bool, coordinatorEpoch int32) int16 {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	shard, _, leaderEpoch, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		return code
	}
	cmd := partition.EncodeMarker(partition.Marker{ProducerID: pid, ProducerEpoch: epoch, Commit: commit,
		CoordinatorEpoch: coordinatorEpoch, TimestampMs: n.nowMs(), LeaderEpoch: leaderEpoch})
	res, err := n.nh.SyncPropose(ctx, n.nh.GetNoOPSession(shard), cmd)
	if err != nil {
		return n.errCode(ctx, err)
	}
	r, err := partition.DecodeMarkerResult(res)
	if err != nil {
		return kerr.UnknownServerError.Code
	}
	return r.ErrorCode
}

// PendingTxnOffsets lists the partitions for which group has an offset
// staged in a transaction not yet complete (OffsetFetch RequireStable),
// from the local controller replica.
func (n *Node) PendingTxnOffsets(group string) map[meta.TopicPartition]bool {
	txns, err := n.Txns(meta.QueryTxns{States: []meta.TxnState{meta.TxnOngoing, meta.TxnPrepareCommit}})
	if err != nil {
		return nil
	}
	var out map[meta.TopicPartition]bool
	for _, t := range txns {
		for _, o := range t.Offsets {
			if o.Group == group {
				if out == nil {
					out = map[meta.TopicPartition]bool{}
				}
				out[meta.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = true
			}
		}
	}
	return out
}
