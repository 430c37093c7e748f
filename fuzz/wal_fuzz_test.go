package fuzz

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/chronik-go/chronik/core/wal"
	"github.com/chronik-go/chronik/diskio"
)

const (
	walSeg1 = "d/wal/0000000000000001.wal"
	walSeg2 = "d/wal/0000000000000002.wal"
)

// validWALFiles builds a real WAL on a Sim (two replicas, a truncation, a
// compaction, bootstrap and snapshot records) and returns its first two
// segments.
func validWALFiles(tb testing.TB) (seg1, seg2 []byte) {
	fs := diskio.NewSim(1)
	w, err := wal.Open(fs, "d", wal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	save := func(shard, first, last, term uint64) {
		var es []pb.Entry
		for i := first; i <= last; i++ {
			es = append(es, pb.Entry{Index: i, Term: term, Cmd: bytes.Repeat([]byte{byte(i)}, int(i%7)*10)})
		}
		u := pb.Update{ShardID: shard, ReplicaID: 1, State: pb.State{Term: term, Vote: 1, Commit: first}, EntriesToSave: es}
		if err := w.SaveRaftState([]pb.Update{u}, 1); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.SaveBootstrapInfo(1, 1, pb.Bootstrap{Addresses: map[uint64]string{1: "a:1"}}); err != nil {
		tb.Fatal(err)
	}
	save(1, 1, 5, 1)
	save(2, 1, 3, 1)
	save(1, 4, 6, 2)
	if err := w.SaveSnapshots([]pb.Update{{ShardID: 1, ReplicaID: 1, Snapshot: pb.Snapshot{Index: 3, Term: 1, Filepath: "s"}}}); err != nil {
		tb.Fatal(err)
	}
	if err := w.RemoveEntriesTo(1, 1, 2); err != nil {
		tb.Fatal(err)
	}
	w.Close()
	// A reopen starts segment 2 with a checkpoint.
	w, err = wal.Open(fs, "d", wal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	save(2, 4, 4, 2)
	w.Close()
	seg1, _ = fs.ReadFile(walSeg1)
	seg2, _ = fs.ReadFile(walSeg2)
	return seg1, seg2
}

// walImage is what the fuzz target reads of an opened WAL.
type walImage struct {
	states  map[uint64]raftio.RaftState
	entries map[uint64][]pb.Entry
	snaps   map[uint64]uint64
	nodes   []raftio.NodeInfo
}

func readWAL(t *testing.T, w *wal.WAL) (walImage, bool) {
	img := walImage{states: map[uint64]raftio.RaftState{}, entries: map[uint64][]pb.Entry{}, snaps: map[uint64]uint64{}}
	img.nodes, _ = w.ListNodeInfo()
	for shard := uint64(1); shard <= 3; shard++ {
		rs, err := w.ReadRaftState(shard, 1, 0)
		if err != nil && !errors.Is(err, raftio.ErrNoSavedLog) {
			t.Fatalf("ReadRaftState(%d): %v", shard, err)
		}
		img.states[shard] = rs
		ss, err := w.GetSnapshot(shard, 1)
		if err != nil {
			t.Fatalf("GetSnapshot(%d): %v", shard, err)
		}
		img.snaps[shard] = ss.Index
		for low := uint64(1); low < 12; low++ {
			es, _, err := w.IterateEntries(nil, 0, shard, 1, low, math.MaxUint64, 0)
			if errors.Is(err, wal.ErrCorrupt) {
				return img, false // verified on read, refused: fine
			}
			if err != nil {
				t.Fatalf("IterateEntries(%d, %d): %v", shard, low, err)
			}
			for i, e := range es {
				if e.Index != low+uint64(i) {
					t.Fatalf("IterateEntries(%d, %d): entry %d has index %d", shard, low, i, e.Index)
				}
			}
			if len(es) > 0 && len(img.entries[shard]) == 0 {
				img.entries[shard] = es
			}
		}
	}
	return img, true
}

// FuzzWALRecover writes arbitrary bytes as WAL segments and opens the WAL:
// it must never panic; it either refuses (ErrCorrupt, ErrFormat) or opens
// a consistent state: every read is contiguous, and a write, a close and a
// reopen keep what was read.
func FuzzWALRecover(f *testing.F) {
	seg1, seg2 := validWALFiles(f)
	f.Add(seg1, []byte(nil))
	f.Add(seg1, seg2)
	f.Add(seg1, seg2[:len(seg2)-5])
	f.Add(seg1[:len(seg1)-9], []byte(nil))
	f.Add(append(bytes.Clone(seg1), 0x43, 0x4b, 0x42, 0x31, 9, 9), []byte(nil))
	f.Add([]byte{}, seg2)
	// A reused segment's old bytes after the newest segment's batches:
	// segment 1's batches (lower sequence numbers), whole and cut.
	f.Add(seg1, append(bytes.Clone(seg2), seg1...))
	f.Add(seg1, append(bytes.Clone(seg2), seg1[7:]...))
	f.Fuzz(func(t *testing.T, s1, s2 []byte) {
		fs := diskio.NewSim(2)
		fs.MkdirAll("d/wal")
		write := func(name string, b []byte) {
			w, err := fs.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			w.WriteAt(b, 0)
			w.Sync()
			w.Close()
		}
		write("d/wal/FORMAT", []byte("chronik-wal 1\n"))
		write(walSeg1, s1)
		if s2 != nil {
			write(walSeg2, s2)
		}
		w, err := wal.Open(fs, "d", wal.Options{})
		if err != nil {
			if !errors.Is(err, wal.ErrCorrupt) && !errors.Is(err, wal.ErrFormat) {
				t.Fatalf("Open failed with an error that is not corruption: %v", err)
			}
			return
		}
		before, ok := readWAL(t, w)
		if !ok {
			w.Close()
			return
		}
		if err := w.SaveRaftState([]pb.Update{{ShardID: 9, ReplicaID: 1, State: pb.State{Term: 1}}}, 1); err != nil {
			t.Fatalf("write after open: %v", err)
		}
		w.Close()
		w, err = wal.Open(fs, "d", wal.Options{})
		if err != nil {
			t.Fatalf("reopen of a WAL that opened: %v", err)
		}
		defer w.Close()
		after, _ := readWAL(t, w)
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("state changed across a reopen:\nbefore %+v\nafter  %+v", before, after)
		}
	})
}
