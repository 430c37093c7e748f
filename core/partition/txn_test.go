package partition

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/diskio"
)

func (h *harness) marker(m Marker) ProduceResult {
	h.t.Helper()
	r, err := DecodeMarkerResult(h.apply(EncodeMarker(m)))
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// TestTransactionLSOAndAbortedIndex: an open transaction holds the last
// stable offset at its first offset; read_committed reads stop there; an
// abort marker records the transaction in the aborted index, which
// survives a reopen (checkpoint) and a rebuild from the log alone.
func TestTransactionLSOAndAbortedIndex(t *testing.T) {
	fs := diskio.NewSim(1)
	h, _ := openHarness(t, testOptions(fs))
	mustOK(t, h.produce(1, tb{pid: -1, records: 2}), 0, 1)
	mustOK(t, h.produce(1, tb{pid: 7, epoch: 0, seq: 0, records: 3, txn: true}), 2, 4)
	mustOK(t, h.produce(1, tb{pid: -1, records: 1}), 5, 5)
	r := h.replica()
	if r.LastStableOffset() != 2 || r.HighWatermark() != 6 {
		t.Fatalf("lso %d hw %d, want 2, 6", r.LastStableOffset(), r.HighWatermark())
	}
	b, ab, lso, err := r.FetchCommitted(0, 1<<20)
	if err != nil || lso != 2 || lastOffsetOf(b) != 1 || len(ab) != 0 {
		t.Fatalf("read_committed: last %d lso %d aborted %v err %v", lastOffsetOf(b), lso, ab, err)
	}
	if b, _, _, _ := r.FetchCommitted(3, 1<<20); len(b) != 0 {
		t.Fatal("read_committed returned data at or above the LSO")
	}
	if ps := r.Producers(); len(ps) != 1 || ps[0].CurrentTxnStartOffset != 2 {
		t.Fatalf("producers %+v", ps)
	}
	mk := h.marker(Marker{ProducerID: 7, ProducerEpoch: 0, TimestampMs: 5})
	if mk.ErrorCode != 0 || mk.BaseOffset != 6 {
		t.Fatalf("abort marker: %+v", mk)
	}
	if r.LastStableOffset() != 7 {
		t.Fatalf("lso after abort %d", r.LastStableOffset())
	}
	b, ab, _, _ = r.FetchCommitted(0, 1<<20)
	if lastOffsetOf(b) != 6 || len(ab) != 1 || ab[0] != (AbortedTxn{ProducerID: 7, FirstOffset: 2, LastOffset: 6}) {
		t.Fatalf("after abort: last %d aborted %+v", lastOffsetOf(b), ab)
	}
	if _, ab, _, _ := r.FetchCommitted(7, 1<<20); len(ab) != 0 {
		t.Fatalf("aborted reported past its marker: %+v", ab)
	}
	// Next transaction, committed: no aborted entry.
	mustOK(t, h.produce(1, tb{pid: 7, epoch: 0, seq: 3, records: 1, txn: true}), 7, 7)
	if mk := h.marker(Marker{ProducerID: 7, ProducerEpoch: 0, Commit: true}); mk.ErrorCode != 0 {
		t.Fatal(mk)
	}
	// A marker with a bumped epoch (a timeout abort) fences epoch 0.
	mustOK(t, h.produce(1, tb{pid: 7, epoch: 0, seq: 4, records: 1, txn: true}), 9, 9)
	if mk := h.marker(Marker{ProducerID: 7, ProducerEpoch: 1}); mk.ErrorCode != 0 {
		t.Fatal(mk)
	}
	mustCode(t, h.produce(1, tb{pid: 7, epoch: 0, seq: 5, records: 1, txn: true}), kerr.InvalidProducerEpoch.Code)
	if mk := h.marker(Marker{ProducerID: 7, ProducerEpoch: 0}); mk.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale marker: %+v", mk)
	}
	mustOK(t, h.produce(1, tb{pid: 7, epoch: 1, seq: 0, records: 1, txn: true}), 11, 11)
	mustCode(t, h.produce(1, tb{pid: -1, records: 1, txn: true}), kerr.InvalidRecord.Code)
	want := stateOf(t, h)
	if want.lso != 11 {
		t.Fatalf("lso %d", want.lso)
	}
	h.close()
	h.open()
	sameState(t, "reopened", stateOf(t, h), want)
	h.close()
	// Without the checkpoint: rebuilt from the log.
	if err := fs.Remove("/data/partitions/1/" + checkpointName); err != nil {
		t.Fatal(err)
	}
	h.open()
	sameState(t, "rebuilt", stateOf(t, h), want)
	// Snapshot onto an empty replica.
	snap := snapshotOf(t, h)
	h2, _ := openHarness(t, testOptions(diskio.NewSim(2)))
	if err := h2.sm.RecoverFromSnapshot(bytesReader(snap), nil); err != nil {
		t.Fatal(err)
	}
	sameState(t, "snapshot", stateOf(t, h2), want)
	// Deleting records past an aborted transaction drops it.
	if r := h.apply(EncodeDeleteRecords(DeleteRecords{Offset: 8})); r.Value != 0 {
		t.Fatal(r)
	}
	if len(h.sm.txns.aborted) != 1 || h.sm.txns.aborted[0].FirstOffset != 9 {
		t.Fatalf("aborted index kept %+v below the log start", h.sm.txns.aborted)
	}
	h.close()
	h2.close()
}

func TestControlBatchRoundTrip(t *testing.T) {
	for _, typ := range []int16{ControlAbort, ControlCommit} {
		b := buildControlBatch(5, 3, typ, 9, 1234)
		hdrs, err := parseBatchHeaders(b, nil)
		if err != nil || len(hdrs) != 1 {
			t.Fatal(err)
		}
		h := hdrs[0]
		if !h.control() || !h.transactional() || h.ctrlType != typ || h.producerID != 5 || h.producerEpoch != 3 {
			t.Fatalf("%+v", h)
		}
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
