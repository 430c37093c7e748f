package plog

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/chronik-go/chronik/diskio"
)

// retentionLog builds a log of several sealed segments and a non-empty
// active one; each batch is stamped with the clock, which advances a minute
// per append, so segments have distinct newest timestamps.
func retentionLog(t *testing.T, fs diskio.FS) (*Log, *fakeClock) {
	t.Helper()
	o := testOpts(fs)
	o.SegmentBytesMax = 4096
	clk := o.Clock.(*fakeClock)
	l := mustOpen(t, o)
	for i := 0; i < 14; i++ {
		mustAppend(t, l, mkBatch(1, 1000, clk.Now().UnixMilli()), uint64(i+1), 0)
		clk.Advance(time.Minute)
	}
	if len(l.segs) < 4 || l.active().size == 0 {
		t.Fatalf("setup: %d segments, active %d bytes", len(l.segs), l.active().size)
	}
	return l, clk
}

func TestRetentionStart(t *testing.T) {
	l, clk := retentionLog(t, diskio.NewSim(31))
	defer l.Close()
	segs := l.segs
	var total int64
	for _, s := range segs {
		total += s.size
	}
	nowMs := clk.Now().UnixMilli()
	// ageKeeping returns a retention age under which segment k is the
	// oldest one kept (its newest batch is exactly at the boundary).
	ageKeeping := func(k int) time.Duration { return time.Duration(nowMs-segs[k].maxTs) * time.Millisecond }
	act := segs[len(segs)-1]
	cases := []struct {
		name  string
		bytes int64
		age   time.Duration
		want  int64
	}{
		{"unlimited", -1, -1, 0},
		{"bytes: all fits", total, -1, 0},
		{"bytes: one sealed segment too many", total - segs[0].size, -1, segs[1].base},
		{"bytes: just short of dropping the first", total - segs[0].size + 1, -1, 0},
		{"bytes: two", total - segs[0].size - segs[1].size, -1, segs[2].base},
		{"bytes: zero keeps the active segment", 0, -1, act.base},
		{"age: nothing expired", -1, ageKeeping(0), 0},
		{"age: first two expired", -1, ageKeeping(2), segs[2].base},
		{"age: every sealed expired", -1, ageKeeping(len(segs) - 1), act.base},
		{"age: active expired too", -1, time.Duration(nowMs-act.maxTs-1) * time.Millisecond, l.NextOffset()},
		{"age: zero", -1, 0, l.NextOffset()},
		{"either: bytes drops one, age none", total - segs[0].size, ageKeeping(0), segs[1].base},
		{"either: age drops two, bytes one", total - segs[0].size, ageKeeping(2), segs[2].base},
	}
	for _, c := range cases {
		if got := l.RetentionStart(c.bytes, c.age); got != c.want {
			t.Errorf("%s: RetentionStart(%d, %v) = %d, want %d", c.name, c.bytes, c.age, got, c.want)
		}
	}
	// Pure: nothing moved, nothing deleted.
	if l.StartOffset() != 0 || len(l.segs) != len(segs) {
		t.Fatalf("RetentionStart changed the log: start %d, %d segments", l.StartOffset(), len(l.segs))
	}
	// Never below the current start.
	mid := segs[2].base + 1
	if err := l.DeletePrefix(mid); err != nil {
		t.Fatal(err)
	}
	if got := l.RetentionStart(total-segs[0].size, -1); got != mid {
		t.Fatalf("after DeletePrefix(%d): RetentionStart = %d", mid, got)
	}
}

// TestRetentionStartEmptyActive: a just-rolled (empty) active segment is
// not "expired" by age; the start stops at its base, the log end.
func TestRetentionStartEmptyActive(t *testing.T) {
	l, clk := retentionLog(t, diskio.NewSim(32))
	defer l.Close()
	if err := l.DeletePrefix(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if got := l.RetentionStart(0, 0); got != l.NextOffset() {
		t.Fatalf("RetentionStart = %d, end %d", got, l.NextOffset())
	}
}

// TestDeletePrefixFreesActiveSegment: moving the start to the log end of a
// log whose only data sits in the active segment deletes that segment's
// files (a topic with short retention.ms and no new writes frees its disk).
func TestDeletePrefixFreesActiveSegment(t *testing.T) {
	fs := diskio.NewSim(33)
	l, clk := retentionLog(t, fs)
	end := l.NextOffset()
	x := l.RetentionStart(-1, time.Second)
	if x != end {
		t.Fatalf("RetentionStart with everything expired = %d, end %d", x, end)
	}
	if err := l.DeletePrefix(x); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != end || len(l.segs) != 1 || l.active().size != 0 || l.active().base != end {
		t.Fatalf("start %d, %d segments, active base %d size %d", l.StartOffset(), len(l.segs), l.active().base, l.active().size)
	}
	if names := segmentFiles(t, fs); len(names) != 1 || names[0] != segmentName(end)+segmentSuffix {
		t.Fatalf("segment files on disk: %v", names)
	}
	// Appends continue at the end; the start survives a reopen.
	mustAppend(t, l, mkBatch(2, 10, clk.Now().UnixMilli()), 100, 0)
	l.Close()
	l = mustOpen(t, l.opts)
	defer l.Close()
	if l.StartOffset() != end || l.NextOffset() != end+2 || len(readAll(t, l)) != 1 {
		t.Fatalf("after reopen: [%d, %d)", l.StartOffset(), l.NextOffset())
	}
}

func segmentFiles(t *testing.T, fs diskio.FS) []string {
	t.Helper()
	names, err := fs.List("log")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, segmentSuffix) {
			out = append(out, n)
		}
	}
	return out
}

// freezeFS freezes a Sim after its k-th durable step (File.Sync, Create,
// Rename, Remove, SyncDir): the crash instant falls on every boundary of
// an operation in turn.
type freezeFS struct {
	diskio.FS
	sim   *diskio.Sim
	k     int
	steps int
}

func (f *freezeFS) step() {
	f.steps++
	if f.steps == f.k {
		f.sim.Freeze()
	}
}

func (f *freezeFS) Create(name string) (diskio.File, error) {
	file, err := f.FS.Create(name)
	f.step()
	if err != nil {
		return nil, err
	}
	return &freezeFile{File: file, fs: f}, nil
}

func (f *freezeFS) OpenRW(name string) (diskio.File, error) {
	file, err := f.FS.OpenRW(name)
	if err != nil {
		return nil, err
	}
	return &freezeFile{File: file, fs: f}, nil
}

func (f *freezeFS) Remove(name string) error                 { err := f.FS.Remove(name); f.step(); return err }
func (f *freezeFS) Rename(o, n string) error                 { err := f.FS.Rename(o, n); f.step(); return err }
func (f *freezeFS) SyncDir(dir string) error                 { err := f.FS.SyncDir(dir); f.step(); return err }
func (f *freezeFile) Sync() error                            { err := f.File.Sync(); f.fs.step(); return err }
func (f *freezeFile) WriteAt(p []byte, o int64) (int, error) { return f.File.WriteAt(p, o) }

type freezeFile struct {
	diskio.File
	fs *freezeFS
}

// TestDeletePrefixToEndCrashAtEveryStep crashes a DeletePrefix that frees
// the active segment after each of its durable steps, in every crash mode,
// and checks the recovered log: the start is the old one (with every
// batch) or the new one (with nothing below it, and no segment file left
// below it after Open), and it accepts appends.
func TestDeletePrefixToEndCrashAtEveryStep(t *testing.T) {
	probe := diskio.NewSim(34)
	pl, _ := retentionLog(t, probe)
	want := readAll(t, pl)
	pl.Close()
	var outcomes [2]int // recovered with the old start, with the new one
	for k := 1; ; k++ {
		sim := diskio.NewSim(34)
		ffs := &freezeFS{FS: sim, sim: sim}
		l, _ := retentionLog(t, ffs)
		end := l.NextOffset()
		ffs.k = ffs.steps + k
		if err := l.DeletePrefix(end); err != nil {
			t.Fatal(err)
		}
		l.Close()
		if ffs.steps < ffs.k {
			if k == 1 {
				t.Fatal("DeletePrefix took no durable step")
			}
			t.Logf("crashed at each of %d steps: %d images kept the old start, %d the new", k-1, outcomes[0], outcomes[1])
			if outcomes[0] == 0 || outcomes[1] == 0 {
				t.Fatal("the crash points did not cover both outcomes")
			}
			return
		}
		for _, m := range crashModes {
			what := fmt.Sprintf("step %d mode %v", k, m)
			img := sim.CrashImage(m)
			o := testOpts(img)
			o.SegmentBytesMax = 4096
			rl, err := Open(o)
			if err != nil {
				t.Fatalf("%s: Open: %v", what, err)
			}
			if checkPrefixCrash(t, rl, img, want, end, what) {
				outcomes[1]++
			} else {
				outcomes[0]++
			}
			rl.Close()
		}
	}
}

// checkPrefixCrash reports whether the recovered log has the new start.
func checkPrefixCrash(t *testing.T, l *Log, img *diskio.Sim, want [][]byte, end int64, what string) bool {
	t.Helper()
	got := readAll(t, l)
	moved := l.StartOffset() == end
	switch l.StartOffset() {
	case 0:
		if len(got) != len(want) {
			t.Fatalf("%s: old start with %d batches, want %d", what, len(got), len(want))
		}
	case end:
		if len(got) != 0 {
			t.Fatalf("%s: new start with %d batches readable", what, len(got))
		}
		for _, n := range segmentFiles(t, img) {
			if n < segmentName(end) {
				t.Fatalf("%s: segment %s below start %d left on disk", what, n, end)
			}
		}
	default:
		t.Fatalf("%s: start %d, want 0 or %d", what, l.StartOffset(), end)
	}
	if l.NextOffset() != end {
		t.Fatalf("%s: end %d, want %d", what, l.NextOffset(), end)
	}
	if _, err := l.AppendDurable(context.Background(), mkBatch(1, 10, 0), l.LastDurableRaftIndex()+1, 0); err != nil {
		t.Fatalf("%s: append after recovery: %v", what, err)
	}
	if _, err := img.Stat(path.Join("log", checkpointName)); err != nil {
		t.Fatalf("%s: no checkpoint after recovery: %v", what, err)
	}
	return moved
}

// TestSetSegmentLimits: limits change live, take effect for the next roll
// decision, and are validated like Options.
func TestSetSegmentLimits(t *testing.T) {
	o := testOpts(diskio.NewSim(35))
	o.SegmentBytesMax = 1 << 20
	o.SegmentAgeMax = time.Hour
	clk := o.Clock.(*fakeClock)
	l := mustOpen(t, o)
	for i := 0; i < 8; i++ {
		mustAppend(t, l, mkBatch(1, 1000, 0), uint64(i+1), 0)
	}
	if len(l.segs) != 1 {
		t.Fatalf("rolled under 1 MiB: %d segments", len(l.segs))
	}
	if err := l.SetSegmentLimits(4096, time.Hour); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, mkBatch(1, 1000, 0), 9, 0) // the 8 KiB segment exceeds the new limit: roll
	if len(l.segs) != 2 {
		t.Fatalf("size limit: %d segments, want 2", len(l.segs))
	}
	if err := l.SetSegmentLimits(1<<20, time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	mustAppend(t, l, mkBatch(1, 1000, 0), 10, 0)
	if len(l.segs) != 3 {
		t.Fatalf("age limit: %d segments, want 3", len(l.segs))
	}
	for _, c := range []struct {
		bytes int64
		age   time.Duration
	}{{SegmentBytesFloor - 1, time.Hour}, {SegmentBytesLimit + 1, time.Hour}, {4096, -time.Second}, {512, time.Hour}} {
		if err := l.SetSegmentLimits(c.bytes, c.age); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("SetSegmentLimits(%d, %v) = %v, want ErrInvalidArgument", c.bytes, c.age, err)
		}
	}
	// A rejected change keeps the previous limits.
	if l.segmentBytesMax != 1<<20 || l.segmentAgeMax != time.Minute {
		t.Fatalf("limits now %d %v", l.segmentBytesMax, l.segmentAgeMax)
	}
	if err := l.SetSegmentLimits(0, 0); err != nil || l.segmentBytesMax != DefaultSegmentBytesMax || l.segmentAgeMax != DefaultSegmentAgeMax {
		t.Fatalf("zero values: %v, %d %v", err, l.segmentBytesMax, l.segmentAgeMax)
	}
	l.Close()
	if err := l.SetSegmentLimits(4096, time.Hour); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
