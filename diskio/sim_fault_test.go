package diskio

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/vfs"
)

// TestFaultRulePerOp: a rule for each Op fails exactly the matching calls
// with a *PathError naming the op and path and wrapping ErrInjected.
func TestFaultRulePerOp(t *testing.T) {
	cases := []struct {
		op     Op
		opName string
		path   string // the path the error names, for target "d/hit"
		call   func(s *Sim, name string) error
	}{
		{OpRead, "read", "d/hit", func(s *Sim, n string) error {
			f := openSeeded(t, s, n)
			_, err := f.ReadAt(make([]byte, 1), 0)
			return err
		}},
		{OpWrite, "write", "d/hit", func(s *Sim, n string) error {
			_, err := openSeeded(t, s, n).WriteAt([]byte("x"), 0)
			return err
		}},
		{OpWrite, "append", "d/hit", func(s *Sim, n string) error {
			_, err := openSeeded(t, s, n).Append([]byte("x"))
			return err
		}},
		{OpSync, "sync", "d/hit", func(s *Sim, n string) error { return openSeeded(t, s, n).Sync() }},
		{OpTruncate, "truncate", "d/hit", func(s *Sim, n string) error { return openSeeded(t, s, n).Truncate(0) }},
		{OpOpen, "open", "d/hit", func(s *Sim, n string) error {
			f, err := s.Open(n)
			if err == nil {
				_ = f.Close()
			}
			return err
		}},
		{OpCreate, "create", "d/hit", func(s *Sim, n string) error {
			f, err := s.Create(n)
			if err == nil {
				_ = f.Close()
			}
			return err
		}},
		{OpCreate, "mkdir", "d/hitdir", func(s *Sim, n string) error { return s.MkdirAll(n + "dir") }},
		{OpRemove, "remove", "d/hit", func(s *Sim, n string) error { return s.Remove(n) }},
		{OpRename, "rename", "d/hit -> d/new", func(s *Sim, n string) error { return s.Rename(n, "d/new") }},
		{OpSync, "syncdir", "d/hit", func(s *Sim, n string) error { return s.SyncDir(n) }},
	}
	for _, tc := range cases {
		t.Run(tc.opName, func(t *testing.T) {
			s := NewSim(7)
			for _, n := range []string{"d/hit", "d/other"} {
				if tc.opName == "syncdir" {
					must(t, s.MkdirAll(n))
				} else {
					must(t, s.MkdirAll("d"))
					openSeeded(t, s, n)
				}
			}
			s.SetFaults(Faults{Rules: []FaultRule{{Op: tc.op, PathPattern: "d/hit*", Probability: 1}}})
			err := tc.call(s, "d/hit")
			wantErr(t, err, tc.opName, tc.path, ErrInjected)
			if got := s.Stats().FaultsInjected; got != 1 {
				t.Fatalf("FaultsInjected = %d", got)
			}
			if err := tc.call(s, "d/other"); err != nil {
				t.Fatalf("non-matching path failed: %v", err)
			}
			if tc.op.String() == "" {
				t.Fatal("no Op name")
			}
		})
	}
}

// openSeeded returns a read-write handle on name holding "abc", creating it
// with faults off.
func openSeeded(t *testing.T, s *Sim, name string) File {
	t.Helper()
	s.mu.Lock()
	saved := s.faults
	s.faults = Faults{}
	s.mu.Unlock()
	defer s.SetFaults(saved)
	f, err := s.Create(name)
	must(t, err)
	_, err = f.Append([]byte("abc"))
	must(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestFaultRuleCustomErr(t *testing.T) {
	s := NewSim(1)
	s.SetFaults(Faults{Rules: []FaultRule{{Op: OpWrite, Probability: 1, Err: ErrNoSpace}}})
	f, err := s.Create("f")
	must(t, err)
	_, err = f.Append([]byte("x"))
	wantErr(t, err, "append", "f", ErrInjected)
	if !errors.Is(err, ErrNoSpace) || !vfs.IsNoSpaceError(err) {
		t.Fatalf("custom Err not wrapped: %v", err)
	}
}

func TestFailedSyncNotDurable(t *testing.T) {
	s := NewSim(5)
	f, err := s.Create("f")
	must(t, err)
	_, err = f.Append([]byte("synced"))
	must(t, err)
	must(t, f.Sync())
	_, err = f.Append([]byte("+lost"))
	must(t, err)
	s.SetFaults(Faults{Rules: []FaultRule{{Op: OpSync, Probability: 1}}})
	wantErr(t, f.Sync(), "sync", "f", ErrInjected)
	if got, _ := s.DurableFile("f"); string(got) != "synced" {
		t.Fatalf("durable after failed Sync = %q", got)
	}
	if got, _ := s.CrashImage(CrashSyncedOnly).ReadFile("f"); string(got) != "synced" {
		t.Fatalf("crash image after failed Sync = %q", got)
	}
	if got, _ := s.ReadFile("f"); string(got) != "synced+lost" {
		t.Fatalf("reads after failed Sync = %q", got)
	}
}

func TestNoSpace(t *testing.T) {
	s := NewSim(1)
	s.SetFaults(Faults{CapacityBytes: 10})
	f, err := s.Create("f")
	must(t, err)
	_, err = f.Append(make([]byte, 8))
	must(t, err)
	_, err = f.Append([]byte("abc"))
	wantErr(t, err, "append", "f", ErrNoSpace)
	_, err = f.WriteAt([]byte("abc"), 8)
	wantErr(t, err, "write", "f", ErrNoSpace)
	wantErr(t, f.Truncate(11), "truncate", "f", ErrNoSpace)
	if got, _ := s.ReadFile("f"); len(got) != 8 {
		t.Fatalf("ENOSPC wrote something: %d bytes", len(got))
	}
	_, err = f.WriteAt([]byte("ab"), 6) // overwrite + 0 growth fits
	must(t, err)
	g, err := s.Create("g")
	must(t, err)
	_, err = g.Append([]byte("abc"))
	wantErr(t, err, "append", "g", ErrNoSpace)
	must(t, s.Remove("f"))
	_, err = g.Append([]byte("abc"))
	must(t, err)
}

// flipFile returns a Sim holding file "f" of 32 bytes 0x55, open, and
// those bytes.
func flipFile(t *testing.T) (*Sim, File, []byte) {
	t.Helper()
	s := NewSim(9)
	f, err := s.Create("f")
	must(t, err)
	stored := bytes.Repeat([]byte{0x55}, 32)
	_, err = f.Append(stored)
	must(t, err)
	return s, f, stored
}

func TestReadBitFlip(t *testing.T) {
	s, f, stored := flipFile(t)
	s.SetFaults(Faults{ReadBitFlipProbability: 1})
	buf := make([]byte, 32)
	n, err := f.ReadAt(buf, 0)
	if n != 32 || err != nil {
		t.Fatalf("ReadAt = %d %v", n, err)
	}
	diffBits := 0
	for i := range buf {
		for x := buf[i] ^ stored[i]; x != 0; x &= x - 1 {
			diffBits++
		}
	}
	if diffBits != 1 {
		t.Fatalf("%d bits flipped, want 1", diffBits)
	}
	if got, _ := s.ReadFile("f"); !bytes.Equal(got, stored) {
		t.Fatal("bit flip changed the stored bytes")
	}
}

// TestReadBitFlipSticky: a sticky flip comes back on every read of its
// byte (also a read at another offset that covers it), without a new
// draw; a write over the byte, or SetFaults, ends it; the stored bytes
// are never changed.
func TestReadBitFlipSticky(t *testing.T) {
	s, f, stored := flipFile(t)
	s.SetFaults(Faults{ReadBitFlipProbability: 1, ReadBitFlipSticky: true})
	buf := make([]byte, 32)
	_, err := f.ReadAt(buf, 0)
	must(t, err)
	bad := -1
	for i := range buf {
		if buf[i] != stored[i] {
			bad = i
		}
	}
	if bad < 0 {
		t.Fatal("no bit flipped")
	}
	// No more new flips: only the bad spot stays.
	s.mu.Lock()
	s.faults.ReadBitFlipProbability = 0
	s.mu.Unlock()
	for _, off := range []int64{0, int64(bad)} {
		part := make([]byte, 32-off)
		_, err = f.ReadAt(part, off)
		must(t, err)
		if part[int64(bad)-off] == stored[bad] {
			t.Fatalf("read at %d: the sticky flip at byte %d is gone", off, bad)
		}
	}
	if got, _ := s.ReadFile("f"); !bytes.Equal(got, stored) {
		t.Fatal("a sticky flip changed the stored bytes")
	}

	// A write over the bad byte ends it.
	_, err = f.WriteAt(stored[bad:bad+1], int64(bad))
	must(t, err)
	_, err = f.ReadAt(buf, 0)
	must(t, err)
	if !bytes.Equal(buf, stored) {
		t.Fatal("a write over a sticky flip did not end it")
	}

	// SetFaults forgets every bad spot.
	s.SetFaults(Faults{ReadBitFlipProbability: 1, ReadBitFlipSticky: true})
	_, err = f.ReadAt(buf, 0)
	must(t, err)
	s.SetFaults(Faults{})
	_, err = f.ReadAt(buf, 0)
	must(t, err)
	if !bytes.Equal(buf, stored) {
		t.Fatal("SetFaults kept a sticky flip")
	}
}

// TestFaultDeterminism: the same seed and calls give the same faults.
func TestFaultDeterminism(t *testing.T) {
	run := func(seed int64) string {
		s := NewSim(seed)
		s.SetFaults(Faults{
			Rules: []FaultRule{
				{Op: OpWrite, Probability: 0.3},
				{Op: OpSync, Probability: 0.3},
				{Op: OpRead, PathPattern: "f1", Probability: 0.5},
			},
			ReadBitFlipProbability: 0.2,
		})
		var log bytes.Buffer
		var files []File
		for i := range 3 {
			f, err := s.Create(fmt.Sprintf("f%d", i))
			must(t, err)
			files = append(files, f)
		}
		buf := make([]byte, 8)
		for i := range 300 {
			f := files[i%3]
			_, werr := f.Append([]byte("01234567"))
			serr := f.Sync()
			n, rerr := f.ReadAt(buf, 0)
			fmt.Fprintf(&log, "%v|%v|%v|%x\n", werr != nil, serr != nil, rerr != nil, buf[:n])
		}
		img, _ := s.CrashImage(CrashTornPrefix).ReadFile("f0")
		fmt.Fprintf(&log, "%x %+v", img, s.Stats())
		return log.String()
	}
	a, b := run(11), run(11)
	if a != b {
		t.Fatal("seed=11: two runs with the same seed differ")
	}
	if a == run(12) {
		t.Fatal("seeds 11 and 12 gave identical fault traces")
	}
}

// TestLatencyOutsideLock: under synctest, a slow write delays only its
// caller; reads on another goroutine proceed (the lock is not held while
// sleeping).
func TestLatencyOutsideLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(1)
		f, err := s.Create("f")
		must(t, err)
		_, err = f.Append([]byte("abc"))
		must(t, err)
		s.SetFaults(Faults{Latency: map[Op]time.Duration{OpWrite: time.Second}})
		start := time.Now()
		var wg sync.WaitGroup
		var writeTook time.Duration
		wg.Go(func() {
			_, err := f.Append([]byte("d"))
			must(t, err)
			writeTook = time.Since(start)
		})
		synctest.Wait() // the writer is asleep in its latency
		buf := make([]byte, 3)
		_, err = f.ReadAt(buf, 0)
		must(t, err)
		if time.Since(start) != 0 {
			t.Fatalf("read waited %v behind a sleeping write", time.Since(start))
		}
		wg.Wait()
		if writeTook != time.Second {
			t.Fatalf("write took %v, want 1s", writeTook)
		}
	})
}

// TestLyingSync: with LyingSync, Sync succeeds but nothing becomes
// durable (the simulator's deliberately broken disk).
func TestLyingSync(t *testing.T) {
	s := NewSim(6)
	f, err := s.Create("f")
	must(t, err)
	_, err = f.Append([]byte("synced"))
	must(t, err)
	must(t, f.Sync())
	s.SetFaults(Faults{LyingSync: true})
	_, err = f.Append([]byte("+lied"))
	must(t, err)
	must(t, f.Sync())
	if got, _ := s.DurableFile("f"); string(got) != "synced" {
		t.Fatalf("durable after a lying Sync = %q", got)
	}
	if got, _ := s.CrashImage(CrashSyncedOnly).ReadFile("f"); string(got) != "synced" {
		t.Fatalf("crash image after a lying Sync = %q", got)
	}
}

// TestLyingSyncPattern: LyingSyncPattern limits the lie to matching files.
func TestLyingSyncPattern(t *testing.T) {
	s := NewSim(7)
	must(t, s.MkdirAll("/d/lie"))
	lie, err := s.Create("/d/lie/f")
	must(t, err)
	honest, err := s.Create("/d/g")
	must(t, err)
	s.SetFaults(Faults{LyingSync: true, LyingSyncPattern: "f"})
	for _, f := range []File{lie, honest} {
		_, err = f.Append([]byte("x"))
		must(t, err)
		must(t, f.Sync())
	}
	img := s.CrashImage(CrashSyncedOnly)
	if got, _ := img.ReadFile("/d/lie/f"); len(got) != 0 {
		t.Fatalf("lying file kept %q", got)
	}
	if got, _ := img.ReadFile("/d/g"); string(got) != "x" {
		t.Fatalf("honest file = %q", got)
	}
}
