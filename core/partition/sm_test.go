package partition

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	crdberrors "github.com/cockroachdb/errors"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

func mustOK(t *testing.T, r ProduceResult, base, last int64) {
	t.Helper()
	if r.ErrorCode != 0 || r.BaseOffset != base || r.LastOffset != last || r.Duplicate {
		t.Fatalf("got %+v, want ok [%d, %d]", r, base, last)
	}
}

func mustCode(t *testing.T, r ProduceResult, code int16) {
	t.Helper()
	if r.ErrorCode != code {
		t.Fatalf("got %+v, want error %d (%v)", r, code, kerr.ErrorForCode(code))
	}
}

func TestOffsetsInOrder(t *testing.T) {
	h, idx := openHarness(t, testOptions(diskio.NewSim(1)))
	defer h.close()
	if idx != 0 {
		t.Fatalf("fresh Open returned %d", idx)
	}
	mustOK(t, h.produce(1, tb{pid: -1, records: 3}), 0, 2)
	mustOK(t, h.produce(1, tb{pid: -1, records: 1}, tb{pid: -1, records: 2}), 3, 5)
	mustOK(t, h.produce(1, tb{pid: 7, seq: 0, records: 4}), 6, 9)
	r := h.replica()
	if r.HighWatermark() != 10 || r.AppliedIndex() != 3 || r.LogStartOffset() != 0 {
		t.Fatalf("hw %d applied %d start %d", r.HighWatermark(), r.AppliedIndex(), r.LogStartOffset())
	}
	if b, err := r.Fetch(10, 100); err != nil || len(b) != 0 {
		t.Fatalf("Fetch at hw: %d bytes, %v", len(b), err)
	}
	if _, err := r.Fetch(11, 100); err == nil {
		t.Fatal("Fetch above hw succeeded")
	}
	// Epoch stamping never goes backwards.
	mustOK(t, h.produce(0, tb{pid: -1}), 10, 10)
	if e, end := r.OffsetForLeaderEpoch(1); e != 1 || end != 11 {
		t.Fatalf("OffsetForLeaderEpoch(1) = %d, %d", e, end)
	}
	// Bad commands and bad batches get error codes, not Go errors.
	res := h.apply([]byte{9, 9})
	if pr, err := DecodeProduceResult(res); err != nil || pr.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("bad command: %+v %v", pr, err)
	}
	bad := tb{pid: -1}.encode()
	bad[len(bad)-1] ^= 1
	mustCode(t, decodeP(t, h.apply(EncodeProduce(Produce{Batches: bad}))), kerr.CorruptMessage.Code)
	if r.HighWatermark() != 11 {
		t.Fatalf("hw moved to %d on rejected entries", r.HighWatermark())
	}
}

func decodeP(t *testing.T, r sm.Result) ProduceResult {
	t.Helper()
	p, err := DecodeProduceResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDuplicateOfLastFive(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(1)))
	defer h.close()
	var got []ProduceResult
	seq := int32(0)
	for i := range 7 {
		n := i%3 + 1
		r := h.produce(2, tb{pid: 42, epoch: 3, seq: seq, records: n, seed: byte(i)})
		mustCode(t, r, 0)
		got = append(got, r)
		seq += int32(n)
	}
	hw := h.replica().HighWatermark()
	before := fetchAll(t, h.replica())
	seq = 0
	for i := range 7 {
		n := i%3 + 1
		r := h.produce(2, tb{pid: 42, epoch: 3, seq: seq, records: n, seed: byte(i)})
		seq += int32(n)
		if i < 2 {
			mustCode(t, r, kerr.OutOfOrderSequenceNumber.Code) // older than the last 5
			continue
		}
		if !r.Duplicate || r.ErrorCode != 0 || r.BaseOffset != got[i].BaseOffset || r.LastOffset != got[i].LastOffset {
			t.Fatalf("retry of batch %d: %+v, original %+v", i, r, got[i])
		}
	}
	if h.replica().HighWatermark() != hw || !bytes.Equal(fetchAll(t, h.replica()), before) {
		t.Fatal("duplicates appended data")
	}
	ps := h.replica().Producers()
	if len(ps) != 1 || ps[0].ProducerID != 42 || ps[0].ProducerEpoch != 3 || ps[0].LastSequence != seq-1 {
		t.Fatalf("Producers() = %+v", ps)
	}
}

func TestSequenceRules(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(1)))
	defer h.close()
	// Unknown producer: any sequence is accepted (Kafka >= 2.5).
	mustOK(t, h.produce(1, tb{pid: 1, epoch: 0, seq: 7, records: 2}), 0, 1)
	// Gap.
	mustCode(t, h.produce(1, tb{pid: 1, epoch: 0, seq: 10}), kerr.OutOfOrderSequenceNumber.Code)
	mustOK(t, h.produce(1, tb{pid: 1, epoch: 0, seq: 9}), 2, 2)
	// New epoch must start at 0.
	mustCode(t, h.produce(1, tb{pid: 1, epoch: 1, seq: 10}), kerr.OutOfOrderSequenceNumber.Code)
	mustOK(t, h.produce(1, tb{pid: 1, epoch: 1, seq: 0}), 3, 3)
	// Older epoch is fenced; a retry of an old-epoch batch is not a duplicate.
	mustCode(t, h.produce(1, tb{pid: 1, epoch: 0, seq: 10}), kerr.InvalidProducerEpoch.Code)
	mustCode(t, h.produce(1, tb{pid: 1, epoch: 0, seq: 9}), kerr.InvalidProducerEpoch.Code)
	// Several batches: checked in order, all or nothing.
	mustCode(t, h.produce(1, tb{pid: 1, epoch: 1, seq: 1}, tb{pid: 1, epoch: 1, seq: 5}), kerr.OutOfOrderSequenceNumber.Code)
	mustCode(t, h.produce(1, tb{pid: -1}, tb{pid: 1, epoch: 1, seq: 5}), kerr.OutOfOrderSequenceNumber.Code)
	if hw := h.replica().HighWatermark(); hw != 4 {
		t.Fatalf("hw %d after rejected requests", hw)
	}
	mustOK(t, h.produce(1, tb{pid: 1, epoch: 1, seq: 1}, tb{pid: -1}, tb{pid: 1, epoch: 1, seq: 2, records: 2}), 4, 7)
	// The whole multi-batch request retried is a duplicate.
	r := h.produce(1, tb{pid: 1, epoch: 1, seq: 1}, tb{pid: 1, epoch: 1, seq: 2, records: 2})
	if !r.Duplicate || r.BaseOffset != 4 || r.LastOffset != 7 {
		t.Fatalf("multi-batch retry: %+v", r)
	}
	// Negative sequence with a producer id is invalid.
	mustCode(t, h.produce(1, tb{pid: 2, epoch: 0, seq: -5}), kerr.InvalidRecord.Code)
}

func TestSequenceWraps(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(1)))
	defer h.close()
	mustOK(t, h.produce(1, tb{pid: 5, seq: math.MaxInt32 - 1, records: 1}), 0, 0)
	mustOK(t, h.produce(1, tb{pid: 5, seq: math.MaxInt32, records: 3}), 1, 3) // last seq wraps to 1
	mustOK(t, h.produce(1, tb{pid: 5, seq: 2}), 4, 4)
	r := h.produce(1, tb{pid: 5, seq: math.MaxInt32, records: 3})
	if !r.Duplicate || r.BaseOffset != 1 {
		t.Fatalf("wrapped retry: %+v", r)
	}
	if nextSeq(math.MaxInt32, 1) != 0 || nextSeq(math.MaxInt32-1, 3) != 1 || !inSequence(math.MaxInt32, 0) {
		t.Fatal("sequence arithmetic")
	}
}

func TestDeleteRecords(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(1)))
	defer h.close()
	for range 10 {
		h.produce(1, tb{pid: -1, records: 2})
	}
	dr := func(off int64) DeleteRecordsResult {
		r, err := DecodeDeleteRecordsResult(h.apply(EncodeDeleteRecords(DeleteRecords{Offset: off})))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := dr(5); r.ErrorCode != 0 || r.LogStartOffset != 5 {
		t.Fatalf("%+v", r)
	}
	if r := dr(21); r.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("%+v", r)
	}
	if r := dr(3); r.ErrorCode != 0 || r.LogStartOffset != 5 {
		t.Fatalf("%+v", r)
	}
	b, err := h.replica().Fetch(5, 1)
	if err != nil || len(b) == 0 || int64(beUint64(b)) != 4 {
		t.Fatalf("fetch inside the first batch: %v", err)
	}
	if r := dr(-1); r.LogStartOffset != 20 {
		t.Fatalf("%+v", r)
	}
	if v, err := h.sm.Lookup(QueryLogStart); err != nil || v.(int64) != 20 {
		t.Fatalf("Lookup: %v %v", v, err)
	}
}

func beUint64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func TestWaitBeyond(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(1)))
	r := h.replica()
	c := r.WaitBeyond(0)
	select {
	case <-c:
		t.Fatal("closed before any data")
	default:
	}
	h.produce(1, tb{pid: -1})
	<-c
	c = r.WaitBeyond(5)
	h.close()
	<-c
	if _, err := r.Fetch(0, 10); err != ErrClosed {
		t.Fatalf("Fetch after close: %v", err)
	}
	if _, ok := h.reg.Get(1); ok {
		t.Fatal("still registered after Close")
	}
}

// workload is a fixed sequence of commands exercising every path.
func workload(n int) [][]byte { return workloadOpts(n, true) }

func workloadOpts(n int, deletes bool) [][]byte {
	var cmds [][]byte
	seqs := map[int64]int32{}
	for i := range n {
		pid := int64(i % 4)
		switch {
		case deletes && i%11 == 10:
			cmds = append(cmds, EncodeDeleteRecords(DeleteRecords{Offset: int64(i / 2)}))
		case i%7 == 6: // retry of the previous batch of pid
			cmds = append(cmds, cmds[len(cmds)-4])
		case i%13 == 12:
			cmds = append(cmds, []byte{1, 2, 3})
		case pid == 3:
			cmds = append(cmds, produceCmd(int32(i/20), tb{pid: -1, records: 1 + i%3, seed: byte(i)}))
		case i%17 == 16: // pid 102 is transactional: a marker, commit or abort
			cmds = append(cmds, EncodeMarker(Marker{ProducerID: 102, ProducerEpoch: 1, Commit: i%34 == 16, TimestampMs: int64(i), LeaderEpoch: int32(i / 20)}))
		default:
			cmds = append(cmds, produceCmd(int32(i/20), tb{pid: 100 + pid, epoch: 1, seq: seqs[pid], records: 1 + i%2, seed: byte(i), txn: pid == 2}))
			seqs[pid] += int32(1 + i%2)
		}
	}
	return cmds
}

// reference applies cmds on a fresh replica without interruption.
func reference(t *testing.T, cmds [][]byte) (replicaState, []sm.Result) {
	h, _ := openHarness(t, bigSegments(testOptions(diskio.NewSim(99))))
	defer h.close()
	var results []sm.Result
	for _, c := range cmds {
		results = append(results, h.apply(c))
	}
	return stateOf(t, h), results
}

func TestReopenReplaysAfterDurableIndex(t *testing.T) {
	cmds := workload(120)
	want, wantResults := reference(t, cmds)
	for _, syncAt := range []int{0, 37, 60, 119} {
		t.Run(fmt.Sprint(syncAt), func(t *testing.T) {
			fs := diskio.NewSim(2)
			h, _ := openHarness(t, testOptions(fs))
			for i, c := range cmds {
				h.apply(c)
				if i+1 == syncAt {
					if err := h.sm.Sync(); err != nil {
						t.Fatal(err)
					}
				}
			}
			h.close()
			idx := h.open()
			if idx != uint64(len(cmds)) {
				t.Fatalf("Open after Close returned %d, want %d", idx, len(cmds))
			}
			// Replay of already-applied entries is ignored.
			h.sm.Update([]sm.Entry{{Index: idx, Cmd: cmds[idx-1]}})
			sameState(t, "reopened", stateOf(t, h), want)
			// And the next entries behave identically (dedupe state survived).
			for i := len(cmds) - 6; i < len(cmds); i++ {
				if got := h.apply(cmds[i]); got.Value != 0 && got.Value != wantResults[i].Value {
					t.Fatalf("re-sent command %d: %v", i, got)
				}
			}
			h.close()
		})
	}
}

func TestCrashThenReplay(t *testing.T) {
	cmds := workloadOpts(150, false)
	want, wantResults := reference(t, cmds)
	for seed := int64(1); seed <= 6; seed++ {
		for _, mode := range []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashRandomPrefix, diskio.CrashTornPrefix} {
			t.Run(fmt.Sprintf("seed=%d/%v", seed, mode), func(t *testing.T) {
				fs := diskio.NewSim(seed)
				h, _ := openHarness(t, bigSegments(testOptions(fs)))
				syncAt := int(seed * 20)
				for i, c := range cmds {
					h.apply(c)
					if i+1 == syncAt {
						if err := h.sm.Sync(); err != nil {
							t.Fatal(err)
						}
					}
				}
				fs.Freeze()
				_ = h.sm.Close()
				image := fs.CrashImage(mode)
				h2, idx := openHarness(t, bigSegments(testOptions(image)))
				if idx < uint64(min(syncAt, len(cmds))) {
					t.Fatalf("Open returned %d below the synced index %d", idx, syncAt)
				}
				t.Logf("synced at %d, Open returned %d of %d", syncAt, idx, len(cmds))
				for i := idx; i < uint64(len(cmds)); i++ {
					got := h2.applyAt(i+1, cmds[i])
					if !bytes.Equal(got.Data, wantResults[i].Data) {
						t.Fatalf("replayed entry %d: result %x, want %x", i+1, got.Data, wantResults[i].Data)
					}
				}
				sameState(t, "after crash and replay", stateOf(t, h2), want)
				h2.close()
			})
		}
	}
}

func snapshotOf(t *testing.T, h *harness) []byte {
	t.Helper()
	ctx, err := h.sm.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := h.sm.SaveSnapshot(ctx, &buf, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSnapshotReadFailureAborts: a log read that fails its checksum
// while a snapshot is saved aborts the snapshot softly
// (sm.ErrSnapshotAborted: dragonboat retries later instead of stopping the
// process); once the disk reads clean, the snapshot is whole.
func TestSnapshotReadFailureAborts(t *testing.T) {
	disk := diskio.NewSim(3)
	a, _ := openHarness(t, testOptions(disk))
	defer a.close()
	for _, c := range workload(120) {
		a.apply(c)
	}
	ctx, err := a.sm.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	disk.SetFaults(diskio.Faults{ReadBitFlipProbability: 1})
	var partial bytes.Buffer
	err = a.sm.SaveSnapshot(ctx, &partial, nil)
	// dragonboat decides with cockroachdb/errors.Is (node.go, saveAborted
	// and streamAborted), which does not follow multi-%w wrapping.
	if !crdberrors.Is(err, sm.ErrSnapshotAborted) || !strings.Contains(err.Error(), plog.ErrCorruptLog.Error()) {
		t.Fatalf("SaveSnapshot over flipped reads: %v, want sm.ErrSnapshotAborted (as dragonboat matches it) naming plog.ErrCorruptLog", err)
	}
	disk.SetFaults(diskio.Faults{})
	b, _ := openHarness(t, testOptions(diskio.NewSim(4)))
	defer b.close()
	if err := b.sm.RecoverFromSnapshot(bytes.NewReader(snapshotOf(t, a)), nil); err != nil {
		t.Fatalf("snapshot after the disk reads clean: %v", err)
	}
	sameState(t, "after the retried snapshot", stateOf(t, b), stateOf(t, a))
}

// TestOpenStorageFailureStopsReplica: with the node's fail-stop hook, a
// replica whose files read back corrupt on Open calls the hook, tells
// dragonboat it is stopping (sm.ErrOpenStopped, as dragonboat matches it:
// any other error panics the process) and then answers every call with an
// error: nothing is applied, nothing acknowledged, nothing panics.
func TestOpenStorageFailureStopsReplica(t *testing.T) {
	disk := diskio.NewSim(5)
	opts := testOptions(disk)
	a, _ := openHarness(t, opts)
	for _, c := range workload(60) {
		a.apply(c)
	}
	a.close()

	var failures []error
	opts.OnStorageFailure = func(err error) { failures = append(failures, err) }
	disk.SetFaults(diskio.Faults{ReadBitFlipProbability: 1})
	m := Factory(opts, NewRegistry())(1, 1).(*stateMachine)
	_, err := m.Open(nil)
	if !crdberrors.Is(err, sm.ErrOpenStopped) || len(failures) != 1 {
		t.Fatalf("Open over corrupt reads: %v (hook calls %d), want sm.ErrOpenStopped and one hook call", err, len(failures))
	}
	disk.SetFaults(diskio.Faults{})
	ents, err := m.Update([]sm.Entry{{Index: 61, Cmd: workload(61)[60]}})
	if err != nil {
		t.Fatalf("Update on a stopped replica: %v", err)
	}
	if r := decodeP(t, ents[0].Result); r.ErrorCode == 0 {
		t.Fatalf("a stopped replica answered success: %+v", r)
	}
	if err := m.Sync(); err != nil {
		t.Fatalf("Sync on a stopped replica: %v", err)
	}
	if _, err := m.PrepareSnapshot(); !errors.Is(err, sm.ErrSnapshotStopped) {
		t.Fatalf("PrepareSnapshot on a stopped replica: %v", err)
	}
	if _, err := m.Lookup(QueryHighWatermark); err == nil {
		t.Fatal("Lookup on a stopped replica answered")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close on a stopped replica: %v", err)
	}

	// Without a hook the error goes to dragonboat as before.
	disk.SetFaults(diskio.Faults{ReadBitFlipProbability: 1})
	opts.OnStorageFailure = nil
	m = Factory(opts, NewRegistry())(1, 1).(*stateMachine)
	if _, err := m.Open(nil); err == nil || crdberrors.Is(err, sm.ErrOpenStopped) {
		t.Fatalf("Open without a hook: %v, want the storage error itself", err)
	}
}

func TestSnapshotRecoverOnEmptyReplica(t *testing.T) {
	cmds := workload(200)
	for _, n := range []int{0, 1, 50, 200} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a, _ := openHarness(t, testOptions(diskio.NewSim(3)))
			defer a.close()
			for _, c := range cmds[:n] {
				a.apply(c)
			}
			snap := snapshotOf(t, a)
			b, _ := openHarness(t, testOptions(diskio.NewSim(4)))
			// b has some unrelated data the snapshot must replace.
			b.produce(9, tb{pid: 77, records: 5})
			if err := b.sm.RecoverFromSnapshot(bytes.NewReader(snap), nil); err != nil {
				t.Fatal(err)
			}
			sameState(t, "recovered", stateOf(t, b), stateOf(t, a))
			if b.replica().AppliedIndex() != uint64(n) {
				t.Fatalf("applied %d", b.replica().AppliedIndex())
			}
			for e := int32(0); e < 12; e++ {
				ae, ao := a.replica().OffsetForLeaderEpoch(e)
				be, bo := b.replica().OffsetForLeaderEpoch(e)
				if ae != be || ao != bo {
					t.Logf("OffsetForLeaderEpoch(%d): %d,%d vs %d,%d (below the log start)", e, ae, ao, be, bo)
				}
			}
			// Both continue identically, including dedupe of retries.
			for i := max(0, n-5); i < len(cmds) && i < n+20; i++ {
				ra, rb := a.applyAt(uint64(i+1000), cmds[i]), b.applyAt(uint64(i+1000), cmds[i])
				if !bytes.Equal(ra.Data, rb.Data) {
					t.Fatalf("command %d after recovery: %x vs %x", i, rb.Data, ra.Data)
				}
			}
			sameState(t, "continued", stateOf(t, b), stateOf(t, a))
			// b survives a reopen after the recovery.
			b.close()
			if idx := b.open(); idx != uint64(min(len(cmds), n+20)-1+1000) {
				t.Fatalf("reopen after recovery: %d", idx)
			}
			sameState(t, "reopened", stateOf(t, b), stateOf(t, a))
			b.close()
			// A truncated snapshot fails and leaves the old state serving.
			c, _ := openHarness(t, testOptions(diskio.NewSim(5)))
			c.produce(1, tb{pid: -1, records: 3})
			before := stateOf(t, c)
			if err := c.sm.RecoverFromSnapshot(bytes.NewReader(snap[:len(snap)-3]), nil); err == nil {
				t.Fatal("truncated snapshot accepted")
			}
			sameState(t, "after a failed recovery", stateOf(t, c), before)
			c.close()
		})
	}
}

// bigSegments keeps everything in one segment, so only Sync makes data
// durable (rolls and DeleteRecords sync too).
func bigSegments(o Options) Options {
	o.Log.SegmentBytesMax = 1 << 20
	return o
}

// TestRetentionByDeleteRecordsAndSnapshotsFromItsStart: retention is a
// RetentionStart computed on the leader and applied as a DeleteRecords
// entry; the producer table is untouched and snapshots stream from the new
// start.
func TestRetentionByDeleteRecordsAndSnapshotsFromItsStart(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(1)))
	defer h.close()
	for i := range 200 {
		mustCode(t, h.produce(1, tb{pid: 5, seq: int32(i), seed: byte(i)}), 0)
	}
	r := h.replica()
	x, err := r.RetentionStart(8192, -1)
	if err != nil {
		t.Fatal(err)
	}
	if x == 0 || r.LogStartOffset() != 0 {
		t.Fatalf("RetentionStart %d, start %d: want a move, and nothing moved yet", x, r.LogStartOffset())
	}
	dr, err := DecodeDeleteRecordsResult(h.apply(EncodeDeleteRecords(DeleteRecords{Offset: x})))
	if err != nil || dr.ErrorCode != 0 || dr.LogStartOffset != x || r.LogStartOffset() != x {
		t.Fatalf("delete records to %d: %+v %v; start %d", x, dr, err, r.LogStartOffset())
	}
	start := r.LogStartOffset()
	if _, err := r.Fetch(start-1, 100); err == nil {
		t.Fatal("fetch below the log start succeeded")
	}
	// Retention does not touch producer state: retries still dedupe.
	if d := h.produce(1, tb{pid: 5, seq: 199, seed: 199}); !d.Duplicate || d.BaseOffset != 199 {
		t.Fatalf("retry after retention: %+v", d)
	}
	b, _ := openHarness(t, testOptions(diskio.NewSim(2)))
	defer b.close()
	if err := b.sm.RecoverFromSnapshot(bytes.NewReader(snapshotOf(t, h)), nil); err != nil {
		t.Fatal(err)
	}
	sameState(t, "recovered from a trimmed log", stateOf(t, b), stateOf(t, h))
}

// TestSnapshotRecoveryCutByCrash fails snapshot recovery at each of its
// disk steps, crashes, and reopens: the replica holds its old state at its
// old index, nothing at index 0, or the snapshot's state at its index; never
// a partial log claiming an index it does not hold.
func TestSnapshotRecoveryCutByCrash(t *testing.T) {
	cmds := workload(120)
	a, _ := openHarness(t, testOptions(diskio.NewSim(3)))
	for _, c := range cmds {
		a.apply(c)
	}
	snap, newState := snapshotOf(t, a), stateOf(t, a)
	a.close()
	dir := "/data/partitions/1/"
	for i, rule := range []diskio.FaultRule{
		{Op: diskio.OpWrite, PathPattern: dir + "recover/log/*.log"},
		{Op: diskio.OpCreate, PathPattern: dir + "recover/producers.state.tmp"},
		{Op: diskio.OpRemove, PathPattern: dir + "producers.state"},
		{Op: diskio.OpRemove, PathPattern: dir + "log"},
		{Op: diskio.OpRename, PathPattern: dir + "recover/log"},
		{Op: diskio.OpRename, PathPattern: dir + "recover/producers.state"},
		{Op: diskio.OpRemove, PathPattern: dir + "recover"},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			fs := diskio.NewSim(int64(i))
			b, _ := openHarness(t, testOptions(fs))
			for _, c := range workload(30) {
				b.apply(c)
			}
			if err := b.sm.Sync(); err != nil {
				t.Fatal(err)
			}
			oldState, oldIndex := stateOf(t, b), b.sm.applied
			rule.Probability = 1
			fs.SetFaults(diskio.Faults{Rules: []diskio.FaultRule{rule}})
			err := b.sm.RecoverFromSnapshot(bytes.NewReader(snap), nil)
			fs.SetFaults(diskio.Faults{})
			fs.Freeze()
			if err == nil {
				_ = b.sm.Close()
			} else {
				b.reg.unregister(b.sm.rep)
				if b.sm.log != nil {
					_ = b.sm.log.Close()
				}
			}
			c, idx := openHarness(t, testOptions(fs.CrashImage(diskio.CrashSyncedOnly)))
			defer c.close()
			got := stateOf(t, c)
			switch idx {
			case 0: // the old log was removed, the new one not yet in place
				if got.hw != 0 || len(got.data) != 0 {
					t.Fatalf("Open returned 0 over a log ending at %d", got.hw)
				}
			case oldIndex:
				if _, err := c.sm.opts.FS.Stat(dir + checkpointName); err != nil {
					got.producers, oldState.producers = nil, nil // rebuilt by a scan
				}
				sameState(t, "old state", got, oldState)
			case uint64(len(cmds)):
				got.producers, newState.producers = nil, nil // may be rebuilt by a scan
				sameState(t, "new state", got, newState)
			default:
				t.Fatalf("Open returned %d: neither the old index %d nor the snapshot's %d (recovery: %v)", idx, oldIndex, len(cmds), err)
			}
			t.Logf("fault %v %s: recovery %v; reopened at %d", rule.Op, rule.PathPattern, err, idx)
		})
	}
}

func TestProducerTableEvictsLeastRecentlyAppended(t *testing.T) {
	tab := newProducerTable(3)
	for pid := int64(1); pid <= 3; pid++ {
		tab.record(pid, 0, batchMeta{firstSeq: 0, lastSeq: 0}, 0)
	}
	tab.record(1, 0, batchMeta{firstSeq: 1, lastSeq: 1}, 0) // 1 is now the most recent
	tab.record(4, 0, batchMeta{}, 0)                        // evicts 2
	var ids []int64
	for _, p := range tab.states(newTxnState()) {
		ids = append(ids, p.ProducerID)
	}
	if fmt.Sprint(ids) != "[1 3 4]" {
		t.Fatalf("producers after eviction: %v", ids)
	}
	for i := range 7 {
		tab.record(1, 0, batchMeta{firstSeq: int32(i + 2), lastSeq: int32(i + 2)}, 0)
	}
	if n := len(tab.byID[1].batches); n != BatchesPerProducerMax {
		t.Fatalf("%d batches kept", n)
	}
	tab.record(1, 1, batchMeta{}, 0)
	if n := len(tab.byID[1].batches); n != 1 {
		t.Fatalf("new epoch kept %d old batches", n)
	}
}

// TestDeleteRecordsThenCrashKeepsSequences: retention (DeleteRecords)
// deletes batches that the last producer checkpoint does not cover, then
// the replica crashes before its next checkpoint. Reopened, it must apply
// the entries after its durable index to the same results as before the
// crash: the deleted batches' sequences are not lost. (The simulator
// found this: a replica refused the replayed produces with
// OUT_OF_ORDER_SEQUENCE_NUMBER where its peer had appended them, and the
// acknowledged records were lost behind a high watermark that never
// moved again.)
func TestDeleteRecordsThenCrashKeepsSequences(t *testing.T) {
	for _, mode := range []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashRandomPrefix, diskio.CrashTornPrefix} {
		t.Run(mode.String(), func(t *testing.T) {
			fs := diskio.NewSim(7)
			h, _ := openHarness(t, testOptions(fs))
			seq := map[int64]int32{}
			next := func(pid int64) []byte {
				b := produceCmd(1, tb{pid: pid, seq: seq[pid], records: 2})
				seq[pid] += 2
				return b
			}
			var cmds [][]byte
			var results []sm.Result
			do := func(c []byte) {
				cmds = append(cmds, c)
				results = append(results, h.apply(c))
			}
			for range 5 {
				do(next(1))
				do(next(2))
			}
			if err := h.sm.Sync(); err != nil {
				t.Fatal(err)
			}
			synced := len(cmds)
			// Producer 2's last batches come after the checkpoint; then
			// retention deletes everything, and both go on.
			for range 3 {
				do(next(2))
			}
			do(EncodeDeleteRecords(DeleteRecords{Offset: -1}))
			for range 3 {
				do(next(1))
				do(next(2))
			}
			fs.Freeze()
			_ = h.sm.Close()
			h2, idx := openHarness(t, testOptions(fs.CrashImage(mode)))
			defer h2.close()
			if idx < uint64(synced) {
				t.Fatalf("Open returned %d below the synced index %d", idx, synced)
			}
			for i := idx; i < uint64(len(cmds)); i++ {
				if got := h2.applyAt(i+1, cmds[i]); !bytes.Equal(got.Data, results[i].Data) {
					r, _ := DecodeProduceResult(got)
					t.Fatalf("replayed entry %d (durable index %d): %+v, want the result before the crash", i+1, idx, r)
				}
			}
		})
	}
}
