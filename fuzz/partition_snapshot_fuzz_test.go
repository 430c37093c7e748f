package fuzz

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/core/partition"
	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

// plainBatch is v2Batch without a producer (id, epoch and sequence -1).
func plainBatch(value []byte) []byte {
	b := v2Batch(value)
	for i := 43; i < 57; i++ {
		b[i] = 0xff
	}
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// idemBatch is v2Batch from producer pid, epoch 0, at sequence seq.
func idemBatch(value []byte, pid int64, seq int32) []byte {
	b := v2Batch(value)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// replica is one partition state machine on its own Sim disk.
type replica struct {
	t    testing.TB
	opts partition.Options
	reg  *partition.Registry
	sm   sm.IOnDiskStateMachine
}

func openReplica(t testing.TB, fs diskio.FS) *replica {
	r := &replica{t: t, reg: partition.NewRegistry(), opts: partition.Options{
		FS: fs, Dir: "/p", Log: plog.Options{SegmentBytesMax: 1024, IndexIntervalBytes: 128},
	}}
	r.open()
	return r
}

func (r *replica) open() uint64 {
	r.sm = partition.Factory(r.opts, r.reg)(1, 1)
	idx, err := r.sm.Open(nil)
	if err != nil {
		r.t.Fatalf("Open: %v", err)
	}
	return idx
}

func (r *replica) update(index uint64, cmd []byte) sm.Result {
	out, err := r.sm.Update([]sm.Entry{{Index: index, Cmd: cmd}})
	if err != nil {
		r.t.Fatalf("Update(%d): %v", index, err)
	}
	return out[0].Result
}

func (r *replica) snapshot() []byte {
	ctx, err := r.sm.PrepareSnapshot()
	if err != nil {
		r.t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.sm.SaveSnapshot(ctx, &b, nil); err != nil {
		r.t.Fatal(err)
	}
	return b.Bytes()
}

// replicaView is what readers of a replica can observe.
type replicaView struct {
	start, hw int64
	applied   uint64
	data      []byte
	producers []partition.ProducerState
}

func (r *replica) view() replicaView {
	rep, ok := r.reg.Get(1)
	if !ok {
		r.t.Fatal("replica not registered")
	}
	v := replicaView{start: rep.LogStartOffset(), hw: rep.HighWatermark(), applied: rep.AppliedIndex(), producers: rep.Producers()}
	for off := v.start; off < v.hw; {
		b, err := rep.Fetch(off, 1<<20)
		if err != nil || len(b) == 0 {
			r.t.Fatalf("Fetch(%d) below hw %d: %d bytes, %v", off, v.hw, len(b), err)
		}
		for p := b; len(p) > 0; {
			n := int(binary.BigEndian.Uint32(p[8:])) + 12
			if n > len(p) || !batchCRCOK(p[:n]) {
				r.t.Fatalf("served a bad batch at %d", off)
			}
			base := int64(binary.BigEndian.Uint64(p))
			if base != off {
				r.t.Fatalf("batch at %d, expected %d", base, off)
			}
			off = base + int64(binary.BigEndian.Uint32(p[23:])) + 1
			p = p[n:]
		}
		v.data = append(v.data, b...)
	}
	return v
}

func sameView(t *testing.T, what string, got, want replicaView) {
	t.Helper()
	if got.start != want.start || got.hw != want.hw || got.applied != want.applied || !bytes.Equal(got.data, want.data) {
		t.Fatalf("%s: start/hw/applied %d/%d/%d (%d bytes), want %d/%d/%d (%d bytes)", what,
			got.start, got.hw, got.applied, len(got.data), want.start, want.hw, want.applied, len(want.data))
	}
	if len(got.producers) != len(want.producers) {
		t.Fatalf("%s: %d producers, want %d", what, len(got.producers), len(want.producers))
	}
}

// filled returns a replica with a few plain and idempotent batches, a
// DeleteRecords, and applied index 6.
func filled(t testing.TB, fs diskio.FS) *replica {
	r := openReplica(t, fs)
	cmds := [][]byte{
		partition.EncodeProduce(partition.Produce{LeaderEpoch: 1, Batches: plainBatch([]byte("a"))}),
		partition.EncodeProduce(partition.Produce{LeaderEpoch: 1, Batches: idemBatch(bytes.Repeat([]byte("b"), 200), 7, 0)}),
		partition.EncodeProduce(partition.Produce{LeaderEpoch: 2, Batches: idemBatch([]byte("c"), 7, 1)}),
		partition.EncodeDeleteRecords(partition.DeleteRecords{Offset: 1}),
		partition.EncodeProduce(partition.Produce{LeaderEpoch: 3, Batches: append(plainBatch([]byte("d")), plainBatch(bytes.Repeat([]byte("e"), 900))...)}),
		partition.EncodeProduce(partition.Produce{LeaderEpoch: 3, Batches: idemBatch([]byte("f"), 9, 0)}),
	}
	for i, c := range cmds {
		r.update(uint64(i+1), c)
	}
	return r
}

// FuzzPartitionSnapshot feeds arbitrary bytes to RecoverFromSnapshot of a
// replica that holds data: it never panics; a refused snapshot leaves the
// replica exactly as it was and still applying; an accepted one leaves a
// consistent replica (contiguous batches with valid CRCs from the log start
// to the high watermark, the snapshot's applied index) whose own snapshot
// installs identically elsewhere and which reopens at the same index.
func FuzzPartitionSnapshot(f *testing.F) {
	src := filled(f, diskio.NewSim(1))
	snap := src.snapshot()
	src.sm.Close()
	empty := openReplica(f, diskio.NewSim(2))
	emptySnap := empty.snapshot()
	empty.sm.Close()
	f.Add(snap)
	f.Add(emptySnap)
	for _, cut := range []int{0, 4, 39, 40, 45, len(snap) / 2, len(snap) - 5, len(snap) - 1} {
		f.Add(snap[:cut])
	}
	flipped := bytes.Clone(snap)
	flipped[len(flipped)-1] ^= 1
	f.Add(flipped)

	f.Fuzz(func(t *testing.T, b []byte) {
		r := filled(t, diskio.NewSim(3))
		defer func() { r.sm.Close() }()
		before := r.view()
		err := r.sm.RecoverFromSnapshot(bytes.NewReader(b), nil)
		if err != nil {
			sameView(t, "after a refused snapshot", r.view(), before)
			res, err := partition.DecodeProduceResult(r.update(before.applied+1,
				partition.EncodeProduce(partition.Produce{LeaderEpoch: 9, Batches: plainBatch([]byte("z"))})))
			if err != nil || res.ErrorCode != 0 || res.BaseOffset != before.hw {
				t.Fatalf("append after a refused snapshot: %+v %v, want base %d", res, err, before.hw)
			}
			return
		}
		got := r.view()
		if len(b) >= 16 && got.applied != binary.BigEndian.Uint64(b[8:]) {
			t.Fatalf("applied %d after installing a snapshot of index %d", got.applied, binary.BigEndian.Uint64(b[8:]))
		}
		other := openReplica(t, diskio.NewSim(4))
		defer func() { other.sm.Close() }()
		if err := other.sm.RecoverFromSnapshot(bytes.NewReader(r.snapshot()), nil); err != nil {
			t.Fatalf("the installed state's own snapshot is refused: %v", err)
		}
		sameView(t, "re-snapshotted", other.view(), got)
		if err := r.sm.Close(); err != nil {
			t.Fatal(err)
		}
		if idx := r.open(); idx != got.applied {
			t.Fatalf("reopened at %d, installed %d", idx, got.applied)
		}
		sameView(t, "reopened", r.view(), got)
	})
}
