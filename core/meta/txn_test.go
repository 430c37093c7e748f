package meta

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func (h *harness) txn(id string) *Txn {
	h.t.Helper()
	v, err := h.m.Lookup(QueryTxn{ID: id})
	if err != nil {
		h.t.Fatalf("%v", err)
	}
	return v.(*Txn)
}

func wantCode(t *testing.T, r Result, code int16) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("code %d (%s), want %d", r.Code, r.Message, code)
	}
}

// TestTxnLifecycle walks a transaction through commit (staged offsets
// committed with the last marker), abort, fencing by a new producer
// instance, a timeout abort, and a snapshot round trip.
func TestTxnLifecycle(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(1) {
		h.must(c)
	}
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 1})
	r := h.must(InitTxnProducer{TxnID: "x", TimeoutMs: 1000, NowMs: 10, ExpectedProducerID: -1, ExpectedEpoch: -1})
	pid, epoch := r.ProducerIDs.First, int16(r.ProducerIDs.Count)
	if epoch != 0 {
		t.Fatalf("epoch %d", epoch)
	}
	wantCode(t, h.apply(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: epoch, Partitions: []TopicPartition{{"t", 5}}}), kerr.UnknownTopicOrPartition.Code)
	h.must(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: epoch, NowMs: 20, Partitions: []TopicPartition{{"t", 1}, {"t", 0}}})
	h.must(AddTxnGroup{TxnID: "x", ProducerID: pid, Epoch: epoch, Group: "g"})
	h.must(TxnCommitOffsets{TxnID: "x", ProducerID: pid, Epoch: epoch, Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 42}}})
	wantCode(t, h.apply(TxnCommitOffsets{TxnID: "x", ProducerID: pid, Epoch: epoch, Group: "other", Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 1}}}), kerr.InvalidTxnState.Code)
	if tx := h.txn("x"); tx.State != TxnOngoing || tx.StartMs != 20 || len(tx.Partitions) != 2 {
		t.Fatalf("%+v", tx)
	}
	h.must(EndTxn{TxnID: "x", ProducerID: pid, Epoch: epoch, Commit: true, NowMs: 30})
	if v := h.m.View(); len(v.PreparingTxns) != 1 || v.PreparingTxns[0].State != TxnPrepareCommit ||
		v.PreparingTxns[0].DecisionIndex != h.m.Version() {
		t.Fatalf("preparing %+v (applied %d)", v.PreparingTxns, h.m.Version())
	}
	decided := h.m.Version()
	snapshotRoundTrip(t, h.m)
	wantCode(t, h.apply(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: epoch, Partitions: []TopicPartition{{"t", 0}}}), kerr.ConcurrentTransactions.Code)
	h.must(TxnMarkersWritten{TxnID: "x", ProducerID: pid, Epoch: epoch, Partitions: []TopicPartition{{"t", 0}}})
	if v, _ := h.m.Lookup(QueryOffset{Group: "g", Topic: "t", Partition: 0}); v.(OffsetLookup).Found {
		t.Fatal("offset committed before every marker was written")
	}
	h.must(TxnMarkersWritten{TxnID: "x", ProducerID: pid, Epoch: epoch, Partitions: []TopicPartition{{"t", 1}}})
	if v, _ := h.m.Lookup(QueryOffset{Group: "g", Topic: "t", Partition: 0}); v.(OffsetLookup).Value.Offset != 42 {
		t.Fatalf("staged offset not committed: %+v", v)
	}
	if tx := h.txn("x"); tx.State != TxnCompleteCommit || len(h.m.View().PreparingTxns) != 0 {
		t.Fatalf("%+v", tx)
	}
	h.must(EndTxn{TxnID: "x", ProducerID: pid, Epoch: epoch, Commit: true}) // a retry
	wantCode(t, h.apply(EndTxn{TxnID: "x", ProducerID: pid, Epoch: epoch}), kerr.InvalidTxnState.Code)

	// A second instance fences the first, aborting its ongoing transaction.
	h.must(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: epoch, NowMs: 40, Partitions: []TopicPartition{{"t", 0}}})
	wantCode(t, h.apply(InitTxnProducer{TxnID: "x", TimeoutMs: 1000, ExpectedProducerID: -1, ExpectedEpoch: -1}), kerr.ConcurrentTransactions.Code)
	if tx := h.txn("x"); tx.State != TxnPrepareAbort || tx.Epoch != 1 || tx.DecisionIndex <= decided {
		t.Fatalf("%+v (earlier decision at %d)", tx, decided)
	}
	wantCode(t, h.apply(EndTxn{TxnID: "x", ProducerID: pid, Epoch: epoch, Commit: true}), kerr.ProducerFenced.Code)
	h.must(TxnMarkersWritten{TxnID: "x", ProducerID: pid, Epoch: 1, Partitions: []TopicPartition{{"t", 0}}})
	r = h.must(InitTxnProducer{TxnID: "x", TimeoutMs: 1000, ExpectedProducerID: -1, ExpectedEpoch: -1})
	if r.ProducerIDs.First != pid || r.ProducerIDs.Count != 2 {
		t.Fatalf("%+v", r.ProducerIDs)
	}

	// Timeout: the pass finds it, AbortTxn bumps the epoch.
	h.must(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: 2, NowMs: 100, Partitions: []TopicPartition{{"t", 1}}})
	if v, _ := h.m.Lookup(QueryTimedOutTxns{NowMs: 1100}); len(v.([]*Txn)) != 0 {
		t.Fatal("timed out too early")
	}
	v, _ := h.m.Lookup(QueryTimedOutTxns{NowMs: 1101})
	if len(v.([]*Txn)) != 1 {
		t.Fatal("not timed out")
	}
	h.must(AbortTxn{TxnID: "x", ProducerID: pid, Epoch: 2, NowMs: 1101})
	if tx := h.txn("x"); tx.State != TxnPrepareAbort || tx.Epoch != 3 {
		t.Fatalf("%+v", tx)
	}
	// Deleting the topic completes the transaction (no marker can be written).
	restored, _ := h.restored()
	if !reflect.DeepEqual(restored.View().PreparingTxns, h.m.View().PreparingTxns) {
		t.Fatal("snapshot differs")
	}
	h.must(DeleteTopic{Name: "t"})
	if tx := h.txn("x"); tx.State != TxnCompleteAbort {
		t.Fatalf("%+v", tx)
	}
	// Expiry: only idle ids, only before the cutoff.
	h.must(InitTxnProducer{TxnID: "busy", TimeoutMs: 1000, NowMs: 1, ExpectedProducerID: -1, ExpectedEpoch: -1})
	h.must(CreateTopic{Name: "u", Partitions: 1, ReplicationFactor: 1})
	busy := h.txn("busy")
	h.must(AddTxnPartitions{TxnID: "busy", ProducerID: busy.ProducerID, Epoch: busy.Epoch, NowMs: 2, Partitions: []TopicPartition{{"u", 0}}})
	updated := h.txn("x").UpdateMs
	if v, _ := h.m.Lookup(QueryExpirableTxns{CutoffMs: updated}); len(v.([]string)) != 0 {
		t.Fatalf("expirable at its own update time: %v", v)
	}
	v, _ = h.m.Lookup(QueryExpirableTxns{CutoffMs: 1 << 40})
	if fmt.Sprint(v) != "[x]" {
		t.Fatalf("expirable %v, want [x] (busy is ongoing)", v)
	}
	h.must(ExpireTxn{TxnID: "busy", CutoffMs: 1 << 40})
	h.must(ExpireTxn{TxnID: "x", CutoffMs: 1 << 40})
	if h.txn("x") != nil || h.txn("busy") == nil {
		t.Fatal("expiry forgot the wrong ids")
	}
	if v, _ := h.m.Lookup(QueryTxnByProducer{ProducerID: pid}); v.(*Txn) != nil {
		t.Fatal("producer index kept an expired id")
	}
	if err := h.m.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestTxnEndBump: EndTxn v5 (KIP-890 part 2) bumps the epoch at every end,
// its markers carry the bumped epoch, a retry with the previous epoch is
// answered with the current identity, older epochs are fenced, an empty
// abort is legal, and epoch exhaustion moves to a new producer id while
// the markers close the old one.
func TestTxnEndBump(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(1) {
		h.must(c)
	}
	h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1})
	r := h.must(InitTxnProducer{TxnID: "x", TimeoutMs: 1000, ExpectedProducerID: -1, ExpectedEpoch: -1})
	pid := r.ProducerIDs.First
	tp := []TopicPartition{{"t", 0}}
	h.must(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: 0, Partitions: tp})
	r = h.must(EndTxn{TxnID: "x", ProducerID: pid, Epoch: 0, Commit: true, Bump: true})
	if r.ProducerIDs.First != pid || r.ProducerIDs.Count != 1 {
		t.Fatalf("answer %+v, want epoch 1", r.ProducerIDs)
	}
	tx := h.txn("x")
	if p, e := tx.MarkerProducer(); tx.State != TxnPrepareCommit || p != pid || e != 1 {
		t.Fatalf("%+v: markers as %d/%d", tx, p, e)
	}
	// A retry while the markers are written, then after.
	wantCode(t, h.apply(EndTxn{TxnID: "x", ProducerID: pid, Epoch: 0, Commit: true, Bump: true}), kerr.ConcurrentTransactions.Code)
	h.must(TxnMarkersWritten{TxnID: "x", ProducerID: pid, Epoch: 1, Partitions: tp})
	r = h.must(EndTxn{TxnID: "x", ProducerID: pid, Epoch: 0, Commit: true, Bump: true})
	if r.ProducerIDs.Count != 1 || h.txn("x").Epoch != 1 {
		t.Fatalf("retry answered %+v, txn %+v", r.ProducerIDs, h.txn("x"))
	}
	wantCode(t, h.apply(EndTxn{TxnID: "x", ProducerID: pid, Epoch: 0, Bump: true}), kerr.InvalidTxnState.Code)
	// The old epoch cannot start a transaction; the new one can.
	wantCode(t, h.apply(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: 0, Partitions: tp}), kerr.ProducerFenced.Code)
	h.must(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: 1, Partitions: tp})
	wantCode(t, h.apply(EndTxn{TxnID: "x", ProducerID: pid, Epoch: 0, Commit: true, Bump: true}), kerr.ProducerFenced.Code)
	h.must(EndTxn{TxnID: "x", ProducerID: pid, Epoch: 1, Bump: true})
	h.must(TxnMarkersWritten{TxnID: "x", ProducerID: pid, Epoch: 2, Partitions: tp})
	// An empty abort bumps; an empty commit is refused.
	wantCode(t, h.apply(EndTxn{TxnID: "x", ProducerID: pid, Epoch: 2, Commit: true, Bump: true}), kerr.InvalidTxnState.Code)
	if r = h.must(EndTxn{TxnID: "x", ProducerID: pid, Epoch: 2, Bump: true}); r.ProducerIDs.Count != 3 || h.txn("x").State != TxnCompleteAbort {
		t.Fatalf("empty abort: %+v %+v", r.ProducerIDs, h.txn("x"))
	}

	// Exhaustion: from math.MaxInt16-1 the answer is a new producer id at
	// epoch 0; the markers close the old id at math.MaxInt16.
	old := h.m.st.txns["x"].clone()
	old.Epoch = producerEpochBumpMaxVal
	h.m.st.setTxn(old)
	h.must(AddTxnPartitions{TxnID: "x", ProducerID: pid, Epoch: producerEpochBumpMaxVal, Partitions: tp})
	r = h.must(EndTxn{TxnID: "x", ProducerID: pid, Epoch: producerEpochBumpMaxVal, Commit: true, Bump: true})
	newPID := r.ProducerIDs.First
	if newPID == pid || r.ProducerIDs.Count != 0 {
		t.Fatalf("exhaustion answered %+v", r.ProducerIDs)
	}
	if p, e := h.txn("x").MarkerProducer(); p != pid || e != math.MaxInt16 {
		t.Fatalf("markers as %d/%d, want %d/%d", p, e, pid, math.MaxInt16)
	}
	h.must(TxnMarkersWritten{TxnID: "x", ProducerID: newPID, Epoch: 0, Partitions: tp})
	if r = h.must(EndTxn{TxnID: "x", ProducerID: pid, Epoch: producerEpochBumpMaxVal, Commit: true, Bump: true}); r.ProducerIDs.First != newPID {
		t.Fatalf("retry after exhaustion answered %+v", r.ProducerIDs)
	}
	// The snapshot keeps the previous producer id.
	m, _ := h.restored()
	v, _ := m.Lookup(QueryTxn{ID: "x"})
	if got := v.(*Txn); got.PrevProducerID != pid {
		t.Fatalf("restored %+v", got)
	}
	h.must(AddTxnPartitions{TxnID: "x", ProducerID: newPID, Epoch: 0, Partitions: tp})
	h.must(EndTxn{TxnID: "x", ProducerID: newPID, Epoch: 0, Commit: true, Bump: true})
	if p, e := h.txn("x").MarkerProducer(); p != newPID || e != 1 {
		t.Fatalf("markers as %d/%d", p, e)
	}
}
