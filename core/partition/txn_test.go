package partition

import (
	"bytes"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/plog"
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
		b := buildControlBatch(5, 3, typ, 9, 0, 1234)
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

// TestDuplicateDecisionMarker: a marker of a coordinator decision this
// partition already holds (a leader crashing between its marker and its
// report, or a new leader acting on a lagging controller view) appends
// nothing, even when the producer's next transaction is open here at the
// same epoch (a classic producer); it would otherwise end that
// transaction half way. The newest decision survives a reopen, a rebuild
// from the log alone (it is in the marker's value) and a snapshot.
func TestDuplicateDecisionMarker(t *testing.T) {
	fs := diskio.NewSim(1)
	h, _ := openHarness(t, testOptions(fs))
	mustOK(t, h.produce(1, tb{pid: 7, epoch: 0, seq: 0, records: 2, txn: true}), 0, 1)
	if mk := h.marker(Marker{ProducerID: 7, ProducerEpoch: 0, Commit: true, Decision: 10}); mk.ErrorCode != 0 || mk.BaseOffset != 2 {
		t.Fatalf("first marker: %+v", mk)
	}
	// The next transaction of the same producer and epoch.
	mustOK(t, h.produce(1, tb{pid: 7, epoch: 0, seq: 2, records: 1, txn: true}), 3, 3)
	stale := func(h *harness, what string) {
		t.Helper()
		r := h.replica()
		lso, hw := r.LastStableOffset(), r.HighWatermark()
		for _, d := range []uint64{10, 9} {
			mk := h.marker(Marker{ProducerID: 7, ProducerEpoch: 0, Commit: true, Decision: d})
			if mk.ErrorCode != 0 || mk.BaseOffset != -1 {
				t.Fatalf("%s: duplicate marker of decision %d: %+v", what, d, mk)
			}
		}
		if r.LastStableOffset() != lso || r.HighWatermark() != hw || lso != 3 {
			t.Fatalf("%s: duplicate marker moved lso %d->%d hw %d->%d", what, lso, r.LastStableOffset(), hw, r.HighWatermark())
		}
	}
	stale(h, "live")
	want := stateOf(t, h)
	h.close()
	h.open()
	sameState(t, "reopened", stateOf(t, h), want)
	stale(h, "reopened")
	h.close()
	if err := fs.Remove("/data/partitions/1/" + checkpointName); err != nil {
		t.Fatal(err)
	}
	h.open()
	stale(h, "rebuilt from the log")
	snap := snapshotOf(t, h)
	h2, _ := openHarness(t, testOptions(diskio.NewSim(2)))
	if err := h2.sm.RecoverFromSnapshot(bytesReader(snap), nil); err != nil {
		t.Fatal(err)
	}
	h2.next = h.next
	stale(h2, "snapshot")
	// The next decision ends the transaction; a marker without a
	// decision (WriteTxnMarkers) is always written.
	if mk := h.marker(Marker{ProducerID: 7, ProducerEpoch: 0, Commit: true, Decision: 12}); mk.ErrorCode != 0 || mk.BaseOffset != 4 {
		t.Fatalf("next decision: %+v", mk)
	}
	if r := h.replica(); r.LastStableOffset() != r.HighWatermark() {
		t.Fatalf("lso %d hw %d after the commit", r.LastStableOffset(), r.HighWatermark())
	}
	if mk := h.marker(Marker{ProducerID: 7, ProducerEpoch: 0}); mk.ErrorCode != 0 || mk.BaseOffset != 5 {
		t.Fatalf("marker without a decision: %+v", mk)
	}
	h.close()
	h2.close()
}

// TestControlBatchWithDecisionIsKafkaBatch: the marker batch with a
// decision in its value is a valid Kafka batch (CRC, one record, key
// {0, type}) that franz-go's parser reads.
func TestControlBatchWithDecisionIsKafkaBatch(t *testing.T) {
	for _, d := range []uint64{0, 1 << 40} {
		b := buildControlBatch(5, 3, ControlCommit, 9, d, 1234)
		if _, err := plog.ValidateBatches(b, 1<<20); err != nil {
			t.Fatalf("decision %d: %v", d, err)
		}
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(b); err != nil || kb.NumRecords != 1 || int(kb.Length)+12 != len(b) {
			t.Fatalf("decision %d: %v %+v", d, err, kb)
		}
		if crc32.Checksum(b[21:], castagnoli) != uint32(kb.CRC) {
			t.Fatalf("decision %d: crc", d)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(kb.Records); err != nil {
			t.Fatal(err)
		}
		wantVal := 6
		if d > 0 {
			wantVal = 14
		}
		if !bytes.Equal(rec.Key, []byte{0, 0, 0, 1}) || len(rec.Value) != wantVal || rec.Value[0] != 0 || rec.Value[1] != 0 {
			t.Fatalf("decision %d: key %x value %x", d, rec.Key, rec.Value)
		}
		if got := controlDecision(b); got != d {
			t.Fatalf("decision %d read back as %d", d, got)
		}
	}
}
