package wal

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/chronik-go/chronik/diskio"
)

// reuseWorkload writes shard 1's entries in rounds of 4 (100-1500 bytes
// each, so that a reused segment's earlier life was often longer),
// keeping the newest 20 (a compaction per round), on a WAL of the smallest
// segments, until stop says so; it returns the next index.
func reuseWorkload(t *testing.T, w *WAL, next uint64, stop func(round int) bool) uint64 {
	t.Helper()
	for round := 0; !stop(round); round++ {
		big := make([]byte, 100+int(next*397%1400))
		var es []pb.Entry
		for range 4 {
			es = append(es, pb.Entry{Index: next, Term: 1, Cmd: big})
			next++
		}
		if err := w.SaveRaftState([]pb.Update{{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Commit: next - 1}, EntriesToSave: es}}, 1); err != nil {
			t.Fatal(err)
		}
		if next > 20 {
			if err := w.RemoveEntriesTo(1, 1, next-20); err != nil {
				t.Fatal(err)
			}
		}
	}
	return next
}

func freeFiles(t *testing.T, fs *diskio.Sim) []string {
	t.Helper()
	names, err := fs.List("data/wal")
	if err != nil {
		t.Fatal(err)
	}
	var free []string
	for _, n := range names {
		if strings.HasSuffix(n, freeSuffix) {
			free = append(free, n)
		}
	}
	return free
}

// TestSegmentReuse: dead segments are kept (at most RecycleSegments of
// them) and become the next segments; sealed reused segments end where
// their batches do, so every reopen reads back exactly what was written.
func TestSegmentReuse(t *testing.T) {
	for _, keep := range []int{-1, 1, 3} {
		fs := diskio.NewSim(5)
		opts := Options{SegmentBytes: SegmentBytesMin, RecycleSegments: keep}
		w := mustOpen(t, fs, opts)
		next := reuseWorkload(t, w, 1, func(round int) bool { return round == 200 })
		w.Close()
		want := max(keep, 0)
		if keep > 0 && w.reused < 20 {
			t.Fatalf("keep %d: %d segments reused over ~50 rolls", keep, w.reused)
		}
		if keep < 0 && w.reused != 0 {
			t.Fatalf("keep %d: %d segments reused", keep, w.reused)
		}
		if got := freeFiles(t, fs); len(got) > want {
			t.Fatalf("keep %d: %d kept for reuse: %v", keep, len(got), got)
		}
		for range 3 {
			w = mustOpen(t, fs, opts)
			if got := iterate(t, w, 1, next-19, next, 0); len(got) != 19 || got[18].Index != next-1 {
				t.Fatalf("keep %d: %d entries after reopen, %s", keep, len(got), indexes(got))
			}
			next = reuseWorkload(t, w, next, func(round int) bool { return round == 30 })
			w.Close()
		}
	}
}

// TestReusedSegmentCrash: a crash while the newest segment is a reused one
// leaves its old batches (valid, older sequence numbers) after the last
// batch written since: Open cuts them and keeps every acknowledged entry;
// a bad byte inside a batch of the current content is still corruption.
func TestReusedSegmentCrash(t *testing.T) {
	fs := diskio.NewSim(6)
	opts := Options{SegmentBytes: SegmentBytesMin}
	w := mustOpen(t, fs, opts)
	// Run until the active segment is a reused file with old bytes left
	// past what is written in it.
	// The committer's fields are read between calls that it answered.
	next := reuseWorkload(t, w, 1, func(int) bool {
		return w.reused > 3 && w.activeFileSize > w.activeSize+1000
	})
	// Acknowledged writes of a second shard into that segment.
	for i := uint64(1); i <= 3; i++ {
		if err := w.SaveRaftState([]pb.Update{{ShardID: 2, ReplicaID: 1, State: pb.State{Term: 1}, EntriesToSave: ents(i, i, 1)}}, 1); err != nil {
			t.Fatal(err)
		}
	}
	active := w.active.name
	img := fs.CrashImage(diskio.CrashSyncedOnly)
	w.Close()

	data, _ := img.ReadFile(active)
	first, _, _, err := parseBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	stale := 0
	for i := 0; i+batchHeaderBytes <= len(data); i++ {
		if seq, _, n, err := parseBatch(data[i:]); err == nil && seq < first {
			stale++
			i += n - 1
		}
	}
	if stale == 0 {
		t.Fatalf("the crash image's newest segment %s holds no old batch: the test does not test reuse", active)
	}

	corrupt := img.CrashImage(diskio.CrashSyncedOnly)
	r := mustOpen(t, img, opts)
	check := func(r *WAL) {
		t.Helper()
		if got := iterate(t, r, 2, 1, 10, 0); !reflect.DeepEqual(got, ents(1, 3, 1)) {
			t.Fatalf("shard 2 after the crash: %s", indexes(got))
		}
		if got := iterate(t, r, 1, next-19, next, 0); len(got) != 19 {
			t.Fatalf("shard 1 after the crash: %d entries, %s", len(got), indexes(got))
		}
	}
	check(r)
	r.Close()
	r = mustOpen(t, img, opts)
	check(r)
	r.Close()

	// A flipped byte in the current content of that segment (its second
	// batch), with valid current batches after it: refused, not cut.
	data, _ = corrupt.ReadFile(active)
	_, _, n, err := parseBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := corrupt.OpenRW(active)
	f.WriteAt([]byte{data[n+30] ^ 0xff}, int64(n+30))
	f.Sync()
	f.Close()
	if _, err := Open(corrupt, "data", opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a bad current batch followed by valid ones in a reused segment: %v, want ErrCorrupt", err)
	}
}

// TestCloseCutsReusedTail: a clean close leaves a reused active segment
// ending at its last batch.
func TestCloseCutsReusedTail(t *testing.T) {
	fs := diskio.NewSim(8)
	opts := Options{SegmentBytes: SegmentBytesMin}
	w := mustOpen(t, fs, opts)
	// The committer's fields are read between calls that it answered.
	reuseWorkload(t, w, 1, func(int) bool {
		return w.reused > 0 && w.activeFileSize > w.activeSize
	})
	active, size := w.active.name, w.activeSize
	w.Close()
	if fi, err := fs.Stat(active); err != nil || fi.Size != size {
		t.Fatalf("%s after close: %+v %v, want %d bytes", active, fi, err, size)
	}
}

// TestRelocationInChunks: a quiet shard's 3 MiB of live entries in the
// oldest segment move forward in batches of about RelocateChunkBytes
// between group commits (not in one batch that every waiting write sits
// behind), the old segments go, and the entries read back whole, also
// after a reopen.
func TestRelocationInChunks(t *testing.T) {
	fs := diskio.NewSim(9)
	opts := Options{SegmentBytes: 4 << 20}
	w := mustOpen(t, fs, opts)
	var quiet []pb.Entry
	for i := uint64(1); i <= 12; i++ {
		e := pb.Entry{Index: i, Term: 1, Cmd: bytes.Repeat([]byte{byte(i)}, 256<<10)}
		quiet = append(quiet, e)
		if err := w.SaveRaftState([]pb.Update{{ShardID: 2, ReplicaID: 1, State: pb.State{Term: 1, Commit: i}, EntriesToSave: []pb.Entry{e}}}, 1); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, 64<<10)
	next := uint64(1)
	for round := 0; round < 600; round++ {
		es := []pb.Entry{{Index: next, Term: 1, Cmd: big}, {Index: next + 1, Term: 1, Cmd: big}}
		next += 2
		if err := w.SaveRaftState([]pb.Update{{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Commit: next - 1}, EntriesToSave: es}}, 1); err != nil {
			t.Fatal(err)
		}
		if err := w.RemoveEntriesTo(1, 1, next-3); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	names, _ := fs.List("data/wal")
	if names[0] == segmentName(1) {
		t.Fatalf("segment 1 (the quiet shard's entries) still there: %v", names)
	}
	relocBatches := 0
	for _, name := range names {
		if !strings.HasSuffix(name, segSuffix) {
			continue
		}
		data, _ := fs.ReadFile("data/wal/" + name)
		for pos := 0; pos < len(data); {
			_, body, n, err := parseBatch(data[pos:])
			if err != nil {
				break
			}
			var reloc int
			for rp := 0; rp < len(body); {
				typ, _, rn, err := parseRecord(body[rp:])
				if err != nil {
					t.Fatal(err)
				}
				if typ == recRelocated {
					reloc += rn
				}
				rp += rn
			}
			if reloc > 0 {
				relocBatches++
				if reloc > RelocateChunkBytes+(256<<10)+4096 {
					t.Fatalf("%s: a batch relocates %d bytes, chunks are %d", name, reloc, RelocateChunkBytes)
				}
			}
			pos += n
		}
	}
	if relocBatches < 3 {
		t.Fatalf("%d batches of relocated entries, want the 3 MiB in chunks", relocBatches)
	}
	for range 2 {
		w = mustOpen(t, fs, opts)
		if got := iterate(t, w, 2, 1, 13, 0); !reflect.DeepEqual(got, quiet) {
			t.Fatalf("quiet shard after relocation: %s", indexes(got))
		}
		w.Close()
	}
}
