package meta

import (
	"cmp"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Transaction coordinator state (Kafka's TransactionStateManager, kept in
// the controller shard instead of __transaction_state).
//
// One Txn per transactional id: its producer id and epoch, its state, the
// partitions and groups added to the ongoing transaction, and the offsets
// TxnOffsetCommit staged for it. The lifecycle, each step one command:
//
//	Empty/CompleteCommit/CompleteAbort --AddTxnPartitions/AddTxnGroup--> Ongoing
//	Ongoing --EndTxn(commit)--> PrepareCommit --TxnMarkersWritten (all)--> CompleteCommit
//	Ongoing --EndTxn(abort) | AbortTxn (timeout) | InitTxnProducer (fence)--> PrepareAbort --...--> CompleteAbort
//
// In Prepare*, Partitions lists the partitions whose marker is not yet
// written; the partition leaders write them (core/node) and report with
// TxnMarkersWritten. A transaction with no partitions left completes in the
// same apply; CompleteCommit moves the staged offsets into the committed
// offsets, atomically with the state change. Because PrepareCommit and
// PrepareAbort are replicated before any marker is written, any later
// leader (of a partition or of this shard) finishes the transaction the
// way it was decided: never half.
//
// Epochs: InitTxnProducer bumps the epoch (fencing the previous producer
// instance: its requests get PRODUCER_FENCED here, INVALID_PRODUCER_EPOCH on
// partitions once a marker with the new epoch is written); a timeout abort
// (AbortTxn) and the abort InitTxnProducer forces on an ongoing
// transaction also bump it, and the abort markers carry the bumped epoch.
// A client's own EndTxn keeps the epoch for EndTxn v0-4; from v5 (KIP-890
// part 2, EndTxn.Bump) it bumps it too, the markers carry the bumped
// epoch (so a partition fences every produce of the ended transaction
// that lands after its marker) and the client continues with it.
//
// Epoch exhaustion (Kafka's): a bump from math.MaxInt16-1 gives the id a
// new producer id at epoch 0 at once (the client's answer), while the
// markers of the transaction being ended carry the previous producer id at
// epoch math.MaxInt16 (PrevProducerID; Txn.MarkerProducer), so that they
// close and fence that producer's data on the partitions.

// TxnState is a transaction's state (Kafka's TransactionState). Frozen
// values: they are in snapshots.
type TxnState byte

const (
	TxnEmpty          TxnState = 0
	TxnOngoing        TxnState = 1
	TxnPrepareCommit  TxnState = 2
	TxnPrepareAbort   TxnState = 3
	TxnCompleteCommit TxnState = 4
	TxnCompleteAbort  TxnState = 5
)

// String is Kafka's name of the state (DescribeTransactions,
// ListTransactions).
func (s TxnState) String() string {
	switch s {
	case TxnEmpty:
		return "Empty"
	case TxnOngoing:
		return "Ongoing"
	case TxnPrepareCommit:
		return "PrepareCommit"
	case TxnPrepareAbort:
		return "PrepareAbort"
	case TxnCompleteCommit:
		return "CompleteCommit"
	case TxnCompleteAbort:
		return "CompleteAbort"
	}
	return "Unknown"
}

// Preparing reports a decided transaction whose markers are being written.
func (s TxnState) Preparing() bool { return s == TxnPrepareCommit || s == TxnPrepareAbort }

// Transaction limits.
const (
	TxnIDLenMax             = 1024
	TxnsMax                 = 100_000 // transactional ids
	TxnPartitionsMax        = 10_000  // partitions in one transaction
	TxnGroupsMax            = 100     // groups in one transaction
	TxnTimeoutMsMax         = 900_000 // Kafka's transaction.max.timeout.ms default
	producerEpochBumpMaxVal = math.MaxInt16 - 1
)

// TxnOffset is an offset staged by TxnOffsetCommit.
type TxnOffset struct {
	Group string
	OffsetCommit
}

// Txn is one transactional id's coordinator state. Values published in a
// View or returned by a query are never modified.
type Txn struct {
	ID         string
	ProducerID int64
	Epoch      int16
	// PrevProducerID is the producer id a bump at epoch exhaustion
	// replaced (-1: none): while the transaction is preparing its
	// markers are written as (PrevProducerID, math.MaxInt16), and a
	// retried EndTxn of that producer at math.MaxInt16-1 is recognised.
	PrevProducerID int64
	TimeoutMs      int32
	State          TxnState
	// StartMs is when the ongoing transaction started (the proposer's
	// clock; -1 when none); UpdateMs the last state change.
	StartMs    int64
	UpdateMs   int64
	Partitions []TopicPartition // sorted by topic, partition
	Groups     []string         // sorted
	Offsets    []TxnOffset      // sorted by group, topic, partition
	// DecisionIndex is the controller log index at which the newest
	// decision (PrepareCommit or PrepareAbort) was applied: the same on
	// every replica, and increasing per producer. Markers carry it
	// (partition.Marker.Decision), so a partition writes each decision's
	// marker once, whichever leader acts on whichever view. 0: none
	// known (decided before snapshots held it).
	DecisionIndex uint64
}

func (t *Txn) clone() *Txn {
	c := *t
	c.Partitions = slices.Clone(t.Partitions)
	c.Groups = slices.Clone(t.Groups)
	c.Offsets = slices.Clone(t.Offsets)
	return &c
}

// MarkerProducer is the producer id and epoch the markers of a preparing
// t carry.
func (t *Txn) MarkerProducer() (int64, int16) {
	if t.PrevProducerID >= 0 {
		return t.PrevProducerID, math.MaxInt16
	}
	return t.ProducerID, t.Epoch
}

// HasPartition reports whether tp was added to the transaction.
func (t *Txn) HasPartition(topic string, part int32) bool {
	_, ok := slices.BinarySearchFunc(t.Partitions, TopicPartition{topic, part}, compareTP)
	return ok
}

func compareTP(a, b TopicPartition) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

func compareTxnOffset(a, b TxnOffset) int {
	return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// Commands.

// InitTxnProducer is InitProducerId with a transactional id: a new
// producer id (epoch 0) for a new id, else the epoch bumped. An ongoing
// transaction is aborted first (CONCURRENT_TRANSACTIONS: the client
// retries); a preparing one answers CONCURRENT_TRANSACTIONS.
// ExpectedProducerID/Epoch (-1: none) are KIP-360's: a mismatch is
// PRODUCER_FENCED. Result: ProducerIDs{First: id, Count: epoch}.
type InitTxnProducer struct {
	TxnID              string
	TimeoutMs          int32
	NowMs              int64
	ExpectedProducerID int64
	ExpectedEpoch      int16
}

// AddTxnPartitions adds partitions to the producer's transaction (starting
// it). Result: Partitions, one code per partition; all or nothing.
type AddTxnPartitions struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	NowMs      int64
	Partitions []TopicPartition
}

// AddTxnGroup adds a consumer group to the transaction (AddOffsetsToTxn).
type AddTxnGroup struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	NowMs      int64
	Group      string
}

// TxnCommitOffsets stages offsets for Group in the transaction
// (TxnOffsetCommit); they are committed when the transaction commits.
// Result: Partitions, one code per offset.
type TxnCommitOffsets struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Group      string
	Offsets    []OffsetCommit
}

// EndTxn decides the transaction (EndTxn): PrepareCommit or PrepareAbort.
// Bump (EndTxn v5, KIP-890 part 2) bumps the epoch with the decision;
// it is encoded as KindEndTxnBump. Result: ProducerIDs{First: id, Count:
// epoch}, the producer's identity for its next transaction.
type EndTxn struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	Commit     bool
	NowMs      int64
	Bump       bool
}

// TxnMarkersWritten reports that the markers of a preparing transaction
// (ProducerID, Epoch) are in the named partitions' logs.
type TxnMarkersWritten struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	NowMs      int64
	Partitions []TopicPartition
}

// AbortTxn aborts an ongoing transaction of (ProducerID, Epoch) with the
// epoch bumped (the coordinator's transaction.timeout.ms pass). A no-op if
// the transaction moved on.
type AbortTxn struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	NowMs      int64
}

// ExpireTxn forgets transactional id TxnID if it has no transaction in
// progress (Empty, CompleteCommit, CompleteAbort) and its last change is
// before CutoffMs (Kafka's transactional.id.expiration.ms; the cutoff is
// the proposer's clock minus the expiration). A no-op otherwise.
type ExpireTxn struct {
	TxnID    string
	CutoffMs int64
}

func (InitTxnProducer) Kind() Kind  { return KindInitTxnProducer }
func (ExpireTxn) Kind() Kind        { return KindExpireTxn }
func (AddTxnPartitions) Kind() Kind { return KindAddTxnPartitions }
func (AddTxnGroup) Kind() Kind      { return KindAddTxnGroup }
func (TxnCommitOffsets) Kind() Kind { return KindTxnCommitOffsets }
func (c EndTxn) Kind() Kind {
	if c.Bump {
		return KindEndTxnBump
	}
	return KindEndTxn
}
func (TxnMarkersWritten) Kind() Kind { return KindTxnMarkersWritten }
func (AbortTxn) Kind() Kind          { return KindAbortTxn }

func (c InitTxnProducer) encode(e *enc) {
	e.str(c.TxnID)
	e.svar(int64(c.TimeoutMs))
	e.svar(c.NowMs)
	e.svar(c.ExpectedProducerID)
	e.svar(int64(c.ExpectedEpoch))
}

func encodeTxnHead(e *enc, id string, pid int64, epoch int16) {
	e.str(id)
	e.svar(pid)
	e.svar(int64(epoch))
}

func encodeTPs(e *enc, tps []TopicPartition) {
	e.uvar(uint64(len(tps)))
	for _, p := range tps {
		e.str(p.Topic)
		e.svar(int64(p.Partition))
	}
}

func decodeTPs(d *dec, max int) []TopicPartition {
	n := d.count(max)
	var out []TopicPartition
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, TopicPartition{Topic: d.str(TopicNameLenMax), Partition: d.i32()})
	}
	return out
}

func (c AddTxnPartitions) encode(e *enc) {
	encodeTxnHead(e, c.TxnID, c.ProducerID, c.Epoch)
	e.svar(c.NowMs)
	encodeTPs(e, c.Partitions)
}

func (c AddTxnGroup) encode(e *enc) {
	encodeTxnHead(e, c.TxnID, c.ProducerID, c.Epoch)
	e.svar(c.NowMs)
	e.str(c.Group)
}

func (c TxnCommitOffsets) encode(e *enc) {
	encodeTxnHead(e, c.TxnID, c.ProducerID, c.Epoch)
	CommitOffsets{Group: c.Group, Offsets: c.Offsets}.encode(e)
}

func (c EndTxn) encode(e *enc) {
	encodeTxnHead(e, c.TxnID, c.ProducerID, c.Epoch)
	e.boolean(c.Commit)
	e.svar(c.NowMs)
}

func (c TxnMarkersWritten) encode(e *enc) {
	encodeTxnHead(e, c.TxnID, c.ProducerID, c.Epoch)
	e.svar(c.NowMs)
	encodeTPs(e, c.Partitions)
}

func (c ExpireTxn) encode(e *enc) {
	e.str(c.TxnID)
	e.svar(c.CutoffMs)
}

func (c AbortTxn) encode(e *enc) {
	encodeTxnHead(e, c.TxnID, c.ProducerID, c.Epoch)
	e.svar(c.NowMs)
}

// decodeTxnBody decodes the transaction command kinds.
func decodeTxnBody(d *dec, k Kind) Command {
	if k == KindExpireTxn {
		return ExpireTxn{TxnID: d.str(TxnIDLenMax), CutoffMs: d.svar()}
	}
	if k == KindInitTxnProducer {
		return InitTxnProducer{TxnID: d.str(TxnIDLenMax), TimeoutMs: d.i32(), NowMs: d.svar(),
			ExpectedProducerID: d.svar(), ExpectedEpoch: d.i16()}
	}
	id, pid, epoch := d.str(TxnIDLenMax), d.svar(), d.i16()
	switch k {
	case KindAddTxnPartitions:
		return AddTxnPartitions{TxnID: id, ProducerID: pid, Epoch: epoch, NowMs: d.svar(), Partitions: decodeTPs(d, TxnPartitionsMax)}
	case KindAddTxnGroup:
		return AddTxnGroup{TxnID: id, ProducerID: pid, Epoch: epoch, NowMs: d.svar(), Group: d.str(GroupIDLenMax)}
	case KindTxnCommitOffsets:
		c := decodeCommitOffsets(d).(CommitOffsets)
		return TxnCommitOffsets{TxnID: id, ProducerID: pid, Epoch: epoch, Group: c.Group, Offsets: c.Offsets}
	case KindEndTxn, KindEndTxnBump:
		return EndTxn{TxnID: id, ProducerID: pid, Epoch: epoch, Commit: d.boolean(), NowMs: d.svar(), Bump: k == KindEndTxnBump}
	case KindTxnMarkersWritten:
		return TxnMarkersWritten{TxnID: id, ProducerID: pid, Epoch: epoch, NowMs: d.svar(), Partitions: decodeTPs(d, TxnPartitionsMax)}
	default: // KindAbortTxn
		return AbortTxn{TxnID: id, ProducerID: pid, Epoch: epoch, NowMs: d.svar()}
	}
}

// Apply.

// setTxn stores t (a new value: published ones are never modified) and
// keeps the indexes.
func (s *state) setTxn(t *Txn) {
	if old, ok := s.txns[t.ID]; ok && old.ProducerID != t.ProducerID {
		delete(s.txnByPID, old.ProducerID)
	}
	s.txns[t.ID] = t
	s.txnByPID[t.ProducerID] = t.ID
	if t.State.Preparing() {
		s.txnPreparing[t.ID] = true
	} else {
		delete(s.txnPreparing, t.ID)
	}
	s.txnCacheValid = false
}

func resultPID(t *Txn) Result {
	return Result{ProducerIDs: ProducerIDBlock{First: t.ProducerID, Count: int32(t.Epoch)}}
}

func (s *state) initTxnProducer(c InitTxnProducer) (Result, bool) {
	if c.TxnID == "" {
		return fail(kerr.InvalidRequest.Code, "empty transactional id"), false
	}
	if c.TimeoutMs <= 0 || c.TimeoutMs > TxnTimeoutMsMax {
		return fail(kerr.InvalidTransactionTimeout.Code, "transaction timeout %d ms outside (0, %d]", c.TimeoutMs, TxnTimeoutMsMax), false
	}
	old, ok := s.txns[c.TxnID]
	if !ok {
		if len(s.txns) >= TxnsMax {
			return fail(kerr.InvalidRequest.Code, "transactional id limit %d reached", TxnsMax), false
		}
		t := &Txn{ID: c.TxnID, ProducerID: s.nextProducerID, PrevProducerID: -1, TimeoutMs: c.TimeoutMs, State: TxnEmpty, StartMs: -1, UpdateMs: c.NowMs}
		s.nextProducerID++
		s.setTxn(t)
		return resultPID(t), true
	}
	if c.ExpectedProducerID >= 0 && (c.ExpectedProducerID != old.ProducerID || c.ExpectedEpoch != old.Epoch) {
		return fail(kerr.ProducerFenced.Code, "transactional id %q is producer %d epoch %d, not %d/%d",
			c.TxnID, old.ProducerID, old.Epoch, c.ExpectedProducerID, c.ExpectedEpoch), false
	}
	switch old.State {
	case TxnPrepareCommit, TxnPrepareAbort:
		return fail(kerr.ConcurrentTransactions.Code, "transaction %q is completing", c.TxnID), false
	case TxnOngoing:
		// Fence the current producer and abort its transaction; the
		// caller retries once the markers are written.
		t := old.clone()
		s.prepare(t, false, true, c.NowMs)
		return fail(kerr.ConcurrentTransactions.Code, "aborting the ongoing transaction of %q", c.TxnID), true
	}
	t := old.clone()
	t.TimeoutMs, t.State, t.StartMs, t.UpdateMs, t.PrevProducerID = c.TimeoutMs, TxnEmpty, -1, c.NowMs, -1
	t.Partitions, t.Groups, t.Offsets = nil, nil, nil
	s.bumpEpoch(t)
	return resultPID(t), true
}

// bumpForEnd bumps t's epoch for the transaction being decided: its
// markers then carry the bumped epoch (MarkerProducer), or at exhaustion
// the old producer id at math.MaxInt16 while t moves to a new producer id
// at epoch 0. It stores t.
func (s *state) bumpForEnd(t *Txn) {
	t.PrevProducerID = -1
	if t.Epoch >= producerEpochBumpMaxVal {
		t.PrevProducerID = t.ProducerID
	}
	s.bumpEpoch(t)
}

// bumpEpoch raises t's epoch, or gives it a new producer id at epoch 0
// when the epoch is exhausted; it stores t.
func (s *state) bumpEpoch(t *Txn) {
	if t.Epoch >= producerEpochBumpMaxVal {
		delete(s.txnByPID, t.ProducerID)
		t.ProducerID, t.Epoch = s.nextProducerID, 0
		s.nextProducerID++
	} else {
		t.Epoch++
	}
	s.setTxn(t)
}

// checkTxn resolves the transaction of a client request and checks its
// producer id and epoch.
func (s *state) checkTxn(id string, pid int64, epoch int16) (*Txn, Result) {
	t, ok := s.txns[id]
	switch {
	case !ok || t.ProducerID != pid:
		return nil, fail(kerr.InvalidProducerIDMapping.Code, "transactional id %q is not producer %d", id, pid)
	case epoch != t.Epoch:
		return nil, fail(kerr.ProducerFenced.Code, "transactional id %q: epoch %d, current %d", id, epoch, t.Epoch)
	}
	return t, Result{}
}

// begin returns a copy of t that is Ongoing (starting a transaction if
// none is), or CONCURRENT_TRANSACTIONS while one completes.
func begin(t *Txn, nowMs int64) (*Txn, Result) {
	switch t.State {
	case TxnPrepareCommit, TxnPrepareAbort:
		return nil, fail(kerr.ConcurrentTransactions.Code, "transaction %q is completing", t.ID)
	case TxnOngoing:
		return t.clone(), Result{}
	}
	n := t.clone()
	n.State, n.StartMs, n.UpdateMs = TxnOngoing, nowMs, nowMs
	n.Partitions, n.Groups, n.Offsets = nil, nil, nil
	return n, Result{}
}

func (s *state) addTxnPartitions(c AddTxnPartitions) (Result, bool) {
	codes := func(code int16) Result {
		r := Result{Code: code, Partitions: make([]PartitionCode, len(c.Partitions))}
		for i, p := range c.Partitions {
			r.Partitions[i] = PartitionCode{Topic: p.Topic, Partition: p.Partition, Code: code}
		}
		return r
	}
	old, res := s.checkTxn(c.TxnID, c.ProducerID, c.Epoch)
	if res.Code != 0 {
		r := codes(res.Code)
		r.Message = res.Message
		return r, false
	}
	t, res := begin(old, c.NowMs)
	if res.Code != 0 {
		r := codes(res.Code)
		r.Message = res.Message
		return r, false
	}
	r := codes(0)
	for i, p := range c.Partitions {
		if !s.partitionExists(p.Topic, p.Partition) {
			r.Partitions[i].Code, r.Code = kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code
		}
	}
	if r.Code != 0 {
		for i := range r.Partitions {
			if r.Partitions[i].Code == 0 {
				r.Partitions[i].Code = kerr.OperationNotAttempted.Code
			}
		}
		r.Message = "unknown topic or partition; nothing added"
		return r, false
	}
	for _, p := range c.Partitions {
		if i, ok := slices.BinarySearchFunc(t.Partitions, p, compareTP); !ok {
			t.Partitions = slices.Insert(t.Partitions, i, p)
		}
	}
	if len(t.Partitions) > TxnPartitionsMax {
		return codes(kerr.InvalidRequest.Code), false
	}
	t.UpdateMs = c.NowMs
	s.setTxn(t)
	return r, true
}

func (s *state) addTxnGroup(c AddTxnGroup) (Result, bool) {
	old, res := s.checkTxn(c.TxnID, c.ProducerID, c.Epoch)
	if res.Code != 0 {
		return res, false
	}
	if c.Group == "" {
		return fail(kerr.InvalidGroupID.Code, "empty group id"), false
	}
	t, res := begin(old, c.NowMs)
	if res.Code != 0 {
		return res, false
	}
	if i, ok := slices.BinarySearch(t.Groups, c.Group); !ok {
		if len(t.Groups) >= TxnGroupsMax {
			return fail(kerr.InvalidRequest.Code, "transaction %q: %d groups", c.TxnID, len(t.Groups)), false
		}
		t.Groups = slices.Insert(t.Groups, i, c.Group)
	}
	t.UpdateMs = c.NowMs
	s.setTxn(t)
	return Result{}, true
}

func (s *state) txnCommitOffsets(c TxnCommitOffsets) (Result, bool) {
	r := Result{Partitions: make([]PartitionCode, len(c.Offsets))}
	setAll := func(res Result) Result {
		for i, o := range c.Offsets {
			r.Partitions[i] = PartitionCode{Topic: o.Topic, Partition: o.Partition, Code: res.Code}
		}
		r.Code, r.Message = res.Code, res.Message
		return r
	}
	old, res := s.checkTxn(c.TxnID, c.ProducerID, c.Epoch)
	if res.Code != 0 {
		return setAll(res), false
	}
	if _, added := slices.BinarySearch(old.Groups, c.Group); old.State != TxnOngoing || !added {
		return setAll(fail(kerr.InvalidTxnState.Code, "group %q is not in the ongoing transaction of %q", c.Group, c.TxnID)), false
	}
	for i, o := range c.Offsets {
		r.Partitions[i] = PartitionCode{Topic: o.Topic, Partition: o.Partition}
		if !s.partitionExists(o.Topic, o.Partition) {
			r.Partitions[i].Code, r.Code = kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicOrPartition.Code
		}
	}
	if r.Code != 0 {
		for i := range r.Partitions {
			if r.Partitions[i].Code == 0 {
				r.Partitions[i].Code = kerr.OperationNotAttempted.Code
			}
		}
		r.Message = "unknown topic or partition; nothing staged"
		return r, false
	}
	t := old.clone()
	for _, o := range c.Offsets {
		x := TxnOffset{Group: c.Group, OffsetCommit: o}
		if i, ok := slices.BinarySearchFunc(t.Offsets, x, compareTxnOffset); ok {
			t.Offsets[i] = x
		} else {
			t.Offsets = slices.Insert(t.Offsets, i, x)
		}
	}
	if len(t.Offsets) > CommitEntriesMax {
		return setAll(fail(kerr.InvalidRequest.Code, "%d staged offsets", len(t.Offsets))), false
	}
	s.setTxn(t)
	return r, true
}

func (s *state) endTxn(c EndTxn) (Result, bool) {
	if c.Bump {
		return s.endTxnBump(c)
	}
	old, res := s.checkTxn(c.TxnID, c.ProducerID, c.Epoch)
	if res.Code != 0 {
		return res, false
	}
	switch {
	case old.State == TxnOngoing:
		t := old.clone()
		s.prepare(t, c.Commit, false, c.NowMs)
		return resultPID(t), true
	case old.State == TxnCompleteCommit && c.Commit, old.State == TxnCompleteAbort && !c.Commit:
		return resultPID(old), false // a retry of a completed EndTxn
	case old.State == TxnPrepareCommit && c.Commit, old.State == TxnPrepareAbort && !c.Commit:
		return fail(kerr.ConcurrentTransactions.Code, "transaction %q is completing", c.TxnID), false
	}
	return invalidEnd(old, c.Commit), false
}

func invalidEnd(t *Txn, commit bool) Result {
	return fail(kerr.InvalidTxnState.Code, "transaction %q is %s; cannot %s", t.ID, t.State, map[bool]string{true: "commit", false: "abort"}[commit])
}

// endTxnBump is EndTxn v5 (KIP-890 part 2): the decision bumps the epoch.
// A retry (the epoch just below the current one after an end, or the
// previous producer id at math.MaxInt16-1 after exhaustion) of the same
// decision answers the current identity; while the markers are written it
// is CONCURRENT_TRANSACTIONS. An abort with the current epoch and no
// transaction ongoing is legal (clients abort when unsure whether a
// produce started one) and bumps the epoch too; a commit is
// INVALID_TXN_STATE. Any other epoch: PRODUCER_FENCED.
func (s *state) endTxnBump(c EndTxn) (Result, bool) {
	old, ok := s.txns[c.TxnID]
	if !ok {
		return fail(kerr.InvalidProducerIDMapping.Code, "transactional id %q is not producer %d", c.TxnID, c.ProducerID), false
	}
	current := c.ProducerID == old.ProducerID && c.Epoch == old.Epoch
	ended := old.State != TxnOngoing && old.State != TxnEmpty
	retry := ended && (c.ProducerID == old.ProducerID && int(c.Epoch)+1 == int(old.Epoch) ||
		c.ProducerID == old.PrevProducerID && c.Epoch == producerEpochBumpMaxVal && old.Epoch == 0)
	switch {
	case c.ProducerID != old.ProducerID && !retry:
		return fail(kerr.InvalidProducerIDMapping.Code, "transactional id %q is not producer %d", c.TxnID, c.ProducerID), false
	case retry:
		switch {
		case old.State.Preparing() && (old.State == TxnPrepareCommit) == c.Commit:
			return fail(kerr.ConcurrentTransactions.Code, "transaction %q is completing", c.TxnID), false
		case (old.State == TxnCompleteCommit) == c.Commit && !old.State.Preparing():
			return resultPID(old), false
		}
		return invalidEnd(old, c.Commit), false
	case !current:
		return fail(kerr.ProducerFenced.Code, "transactional id %q: epoch %d, current %d", c.TxnID, c.Epoch, old.Epoch), false
	case old.State == TxnOngoing, !c.Commit && !old.State.Preparing():
		t := old.clone()
		if old.State != TxnOngoing { // an empty abort
			t.Partitions, t.Groups, t.Offsets = nil, nil, nil
		}
		s.prepare(t, c.Commit, true, c.NowMs)
		return resultPID(t), true
	case old.State.Preparing():
		return fail(kerr.ConcurrentTransactions.Code, "transaction %q is completing", c.TxnID), false
	}
	return invalidEnd(old, c.Commit), false
}

// prepare decides t (stored): PrepareCommit or PrepareAbort, or the
// complete state at once when no partition waits for a marker. bump
// bumps the epoch (bumpForEnd), so the markers carry the bumped one.
func (s *state) prepare(t *Txn, commit, bump bool, nowMs int64) {
	if bump {
		s.bumpForEnd(t)
	} else {
		t.PrevProducerID = -1
	}
	t.State, t.UpdateMs, t.DecisionIndex = TxnPrepareAbort, nowMs, s.applied
	if commit {
		t.State = TxnPrepareCommit
	} else {
		t.Offsets = nil
	}
	if len(s.groupShards) > 0 {
		// With group shards, Groups lists the groups whose offsets are
		// not yet in their shard (their markers; groupshard.go): those
		// with offsets to commit.
		t.Groups = nil
		for _, o := range t.Offsets {
			if len(t.Groups) == 0 || t.Groups[len(t.Groups)-1] != o.Group {
				t.Groups = append(t.Groups, o.Group)
			}
		}
	}
	s.completeIfMarked(t)
	s.setTxn(t)
}

// completeIfMarked completes a preparing t whose markers are all written:
// a commit moves its staged offsets into the committed offsets.
//
// With group shards the staged offsets reach the groups through their
// shards (CommitTxnOffsets, reported by TxnGroupMarkersWritten): the
// transaction completes once no partition and no group waits.
func (s *state) completeIfMarked(t *Txn) {
	if !t.State.Preparing() || len(t.Partitions) > 0 || len(s.groupShards) > 0 && len(t.Groups) > 0 {
		return
	}
	if t.State == TxnPrepareCommit {
		if len(s.groupShards) == 0 {
			s.commitStaged(t)
		}
		t.State = TxnCompleteCommit
	} else {
		t.State = TxnCompleteAbort
	}
	t.Groups, t.Offsets, t.StartMs = nil, nil, -1
}

func (s *state) commitStaged(t *Txn) {
	for _, o := range t.Offsets {
		if !s.partitionExists(o.Topic, o.Partition) {
			continue // deleted meanwhile
		}
		byTopic := s.offsets[o.Group]
		if byTopic == nil {
			byTopic = map[string]map[int32]OffsetValue{}
			s.offsets[o.Group] = byTopic
		}
		parts := byTopic[o.Topic]
		if parts == nil {
			parts = map[int32]OffsetValue{}
			byTopic[o.Topic] = parts
		}
		parts[o.Partition] = OffsetValue{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTimestampMs: t.UpdateMs}
	}
}

func (s *state) txnMarkersWritten(c TxnMarkersWritten) (Result, bool) {
	return s.markersWritten(c.TxnID, c.ProducerID, c.Epoch, c.NowMs, func(t *Txn) bool {
		n := len(t.Partitions)
		t.Partitions = slices.DeleteFunc(t.Partitions, func(p TopicPartition) bool { return slices.Contains(c.Partitions, p) })
		return len(t.Partitions) != n
	})
}

// markersWritten applies a report of markers written (partitions' or
// groups') to a preparing transaction: drop removes what the report
// covers from a copy and says whether anything was; the transaction
// completes once nothing is left. A report for a transaction that moved
// on, or that covers nothing still waiting, changes nothing.
func (s *state) markersWritten(id string, pid int64, epoch int16, nowMs int64, drop func(*Txn) bool) (Result, bool) {
	old, ok := s.txns[id]
	if !ok || old.ProducerID != pid || old.Epoch != epoch || !old.State.Preparing() {
		return Result{}, false // stale report: the transaction moved on
	}
	t := old.clone()
	if !drop(t) {
		return Result{}, false
	}
	t.UpdateMs = nowMs
	s.completeIfMarked(t)
	s.setTxn(t)
	return Result{}, true
}

func (s *state) abortTxn(c AbortTxn) (Result, bool) {
	old, ok := s.txns[c.TxnID]
	if !ok || old.ProducerID != c.ProducerID || old.Epoch != c.Epoch || old.State != TxnOngoing {
		return Result{}, false
	}
	t := old.clone()
	s.prepare(t, false, true, c.NowMs)
	return resultPID(t), true
}

func (s *state) expireTxn(c ExpireTxn) (Result, bool) {
	t, ok := s.txns[c.TxnID]
	if !ok || !t.expirable(c.CutoffMs) {
		return Result{}, false
	}
	delete(s.txns, t.ID)
	delete(s.txnByPID, t.ProducerID)
	delete(s.txnPreparing, t.ID)
	s.txnCacheValid = false
	return Result{}, true
}

// expirable: no transaction in progress, unchanged since before cutoffMs.
func (t *Txn) expirable(cutoffMs int64) bool {
	return (t.State == TxnEmpty || t.State == TxnCompleteCommit || t.State == TxnCompleteAbort) && t.UpdateMs < cutoffMs
}

// txnsForgetTopic drops a deleted topic's partitions from every
// transaction (their markers can never be written) and completes those
// left with none.
func (s *state) txnsForgetTopic(name string) {
	for _, id := range sortedKeys(s.txns) {
		old := s.txns[id]
		if !slices.ContainsFunc(old.Partitions, func(p TopicPartition) bool { return p.Topic == name }) &&
			!slices.ContainsFunc(old.Offsets, func(o TxnOffset) bool { return o.Topic == name }) {
			continue
		}
		t := old.clone()
		t.Partitions = slices.DeleteFunc(t.Partitions, func(p TopicPartition) bool { return p.Topic == name })
		t.Offsets = slices.DeleteFunc(t.Offsets, func(o TxnOffset) bool { return o.Topic == name })
		s.completeIfMarked(t)
		s.setTxn(t)
	}
}

// preparingTxns is the View's list of preparing transactions, sorted by id.
func (s *state) preparingTxns() []*Txn {
	if s.txnCacheValid {
		return s.txnPreparingSorted
	}
	s.txnPreparingSorted = nil
	for _, id := range sortedKeys(s.txnPreparing) {
		s.txnPreparingSorted = append(s.txnPreparingSorted, s.txns[id])
	}
	s.txnCacheValid = true
	return s.txnPreparingSorted
}

// Queries.

type (
	// QueryTxn returns *Txn (nil if absent) by transactional id.
	QueryTxn struct{ ID string }
	// QueryTxnByProducer returns *Txn (nil if absent) by producer id.
	QueryTxnByProducer struct{ ProducerID int64 }
	// QueryTxns returns []*Txn sorted by id: every transaction (States
	// empty) or those in one of States, whose producer id is in
	// ProducerIDs (empty: any); at most Limit (0: TxnsMax).
	QueryTxns struct {
		States      []TxnState
		ProducerIDs []int64
		Limit       int
	}
	// QueryTimedOutTxns returns []*Txn: the ongoing transactions started
	// more than their timeout before NowMs, sorted by id.
	QueryTimedOutTxns struct{ NowMs int64 }
	// QueryExpirableTxns returns []string: at most Limit (0: TxnsMax)
	// transactional ids ExpireTxn{CutoffMs} would forget, sorted.
	QueryExpirableTxns struct {
		CutoffMs int64
		Limit    int
	}
)

func (s *state) lookupTxn(q any) (any, bool) {
	switch q := q.(type) {
	case QueryTxn:
		return s.txns[q.ID], true
	case QueryTxnByProducer:
		id, ok := s.txnByPID[q.ProducerID]
		if !ok {
			return (*Txn)(nil), true
		}
		return s.txns[id], true
	case QueryTxns:
		limit := q.Limit
		if limit <= 0 {
			limit = TxnsMax
		}
		var out []*Txn
		for _, id := range sortedKeys(s.txns) {
			t := s.txns[id]
			if (len(q.States) == 0 || slices.Contains(q.States, t.State)) &&
				(len(q.ProducerIDs) == 0 || slices.Contains(q.ProducerIDs, t.ProducerID)) {
				out = append(out, t)
				if len(out) == limit {
					break
				}
			}
		}
		return out, true
	case QueryExpirableTxns:
		limit := q.Limit
		if limit <= 0 {
			limit = TxnsMax
		}
		var out []string
		for _, id := range sortedKeys(s.txns) {
			if s.txns[id].expirable(q.CutoffMs) {
				out = append(out, id)
				if len(out) == limit {
					break
				}
			}
		}
		return out, true
	case QueryTimedOutTxns:
		var out []*Txn
		for _, id := range sortedKeys(s.txns) {
			if t := s.txns[id]; t.State == TxnOngoing && t.StartMs+int64(t.TimeoutMs) < q.NowMs {
				out = append(out, t)
			}
		}
		return out, true
	}
	return nil, false
}

// Snapshot section (version 7): count, then per transaction (sorted by
// id): id, producer id, epoch, timeout, state, start, update, partitions,
// groups, staged offsets; from version 8 then the previous producer id,
// from version 9 the decision index.
func (s *state) encodeSnapshotTxns(e *enc) {
	e.uvar(uint64(len(s.txns)))
	for _, id := range sortedKeys(s.txns) {
		t := s.txns[id]
		encodeTxnHead(e, t.ID, t.ProducerID, t.Epoch)
		e.svar(int64(t.TimeoutMs))
		e.u8(byte(t.State))
		e.svar(t.StartMs)
		e.svar(t.UpdateMs)
		encodeTPs(e, t.Partitions)
		e.uvar(uint64(len(t.Groups)))
		for _, g := range t.Groups {
			e.str(g)
		}
		e.uvar(uint64(len(t.Offsets)))
		for _, o := range t.Offsets {
			e.str(o.Group)
			e.str(o.Topic)
			e.svar(int64(o.Partition))
			e.svar(o.Offset)
			e.svar(int64(o.LeaderEpoch))
			e.str(o.Metadata)
		}
		e.svar(t.PrevProducerID)
		e.uvar(t.DecisionIndex)
	}
}

func decodeSnapshotTxns(d *dec, s *state, withPrev, withDecision bool) {
	n := d.count(TxnsMax)
	for i := 0; i < n && d.err == nil; i++ {
		t := &Txn{ID: d.str(TxnIDLenMax), ProducerID: d.svar(), Epoch: d.i16(), TimeoutMs: d.i32(),
			State: TxnState(d.u8()), StartMs: d.svar(), UpdateMs: d.svar(), Partitions: decodeTPs(d, TxnPartitionsMax)}
		ng := d.count(TxnGroupsMax)
		for j := 0; j < ng && d.err == nil; j++ {
			t.Groups = append(t.Groups, d.str(GroupIDLenMax))
		}
		no := d.count(CommitEntriesMax)
		for j := 0; j < no && d.err == nil; j++ {
			t.Offsets = append(t.Offsets, TxnOffset{Group: d.str(GroupIDLenMax), OffsetCommit: OffsetCommit{
				Topic: d.str(TopicNameLenMax), Partition: d.i32(), Offset: d.svar(), LeaderEpoch: d.i32(), Metadata: d.str(OffsetMetadataLenMax)}})
		}
		t.PrevProducerID = -1
		if withPrev {
			t.PrevProducerID = d.svar()
		}
		if withDecision {
			t.DecisionIndex = d.uvar()
		}
		if d.err != nil {
			return
		}
		if _, dup := s.txns[t.ID]; dup || t.State > TxnCompleteAbort {
			d.fail("transaction %q: duplicate or state %d", t.ID, t.State)
			return
		}
		s.setTxn(t)
	}
}

// checkTxnInvariants: indexes match, lists sorted and unique, producer ids
// below the counter.
func (s *state) checkTxnInvariants() string {
	if len(s.txnByPID) != len(s.txns) {
		return "transaction producer index size differs"
	}
	for _, id := range sortedKeys(s.txns) {
		t := s.txns[id]
		if t.ID != id || s.txnByPID[t.ProducerID] != id || t.ProducerID < 0 || t.ProducerID >= s.nextProducerID {
			return "transaction " + id + " badly indexed"
		}
		if !slices.IsSortedFunc(t.Partitions, compareTP) || !slices.IsSorted(t.Groups) || !slices.IsSortedFunc(t.Offsets, compareTxnOffset) {
			return "transaction " + id + " lists not sorted"
		}
		if s.txnPreparing[id] != t.State.Preparing() {
			return "transaction " + id + " preparing index"
		}
	}
	return ""
}
