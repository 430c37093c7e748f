package diskio

import (
	"bytes"
	"errors"
	"path"
	"testing"
)

// fenceRecorder is a stop hook that records each failure and, like the
// simulator's fence, leaves the disk healthy before returning.
type fenceRecorder struct {
	disk *Sim
	errs []error
}

func (r *fenceRecorder) stop(err error) {
	r.errs = append(r.errs, err)
	r.disk.SetFaults(Faults{})
}

// TestFailStopWriteSide: every write-side failure reaches stop with the
// disk's error; once stop returns, the call is made again and succeeds
// exactly once (no doubled append), so a fenced node winds down cleanly.
func TestFailStopWriteSide(t *testing.T) {
	cases := []struct {
		name   string
		faults Faults
		call   func(fs FS, f File) error
		want   error
	}{
		{"sync", Faults{Rules: []FaultRule{{Op: OpSync, Probability: 1}}}, func(_ FS, f File) error { return f.Sync() }, ErrInjected},
		{"syncdir", Faults{Rules: []FaultRule{{Op: OpSync, Probability: 1}}}, func(fs FS, _ File) error { return fs.SyncDir("d") }, ErrInjected},
		{"writeat", Faults{Rules: []FaultRule{{Op: OpWrite, Probability: 1}}}, func(_ FS, f File) error {
			_, err := f.WriteAt([]byte("xyz"), 3)
			return err
		}, ErrInjected},
		{"append-enospc", Faults{CapacityBytes: 3}, func(_ FS, f File) error {
			n, err := f.Append([]byte("xyz"))
			if err == nil && n != 3 {
				t.Errorf("append wrote %d bytes, want 3", n)
			}
			return err
		}, ErrNoSpace},
		{"truncate-enospc", Faults{CapacityBytes: 3}, func(_ FS, f File) error { return f.Truncate(64) }, ErrNoSpace},
		{"remove", Faults{Rules: []FaultRule{{Op: OpRemove, Probability: 1}}}, func(fs FS, _ File) error { return fs.Remove("d/f") }, ErrInjected},
		{"removeall", Faults{Rules: []FaultRule{{Op: OpRemove, Probability: 1}}}, func(fs FS, _ File) error { return fs.RemoveAll("d") }, ErrInjected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			disk := NewSim(1)
			rec := &fenceRecorder{disk: disk}
			fs := FailStop(disk, rec.stop)
			if err := fs.MkdirAll("d"); err != nil {
				t.Fatal(err)
			}
			f, err := fs.Create("d/f")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Append([]byte("abc")); err != nil {
				t.Fatal(err)
			}
			disk.SetFaults(tc.faults)
			if err := tc.call(fs, f); err != nil {
				t.Fatalf("after a fencing stop the call must be retried and succeed: %v", err)
			}
			if len(rec.errs) != 1 || !errors.Is(rec.errs[0], tc.want) {
				t.Fatalf("stop got %v, want one error wrapping %v", rec.errs, tc.want)
			}
			var pe *PathError
			if !errors.As(rec.errs[0], &pe) || pe.Path == "" {
				t.Fatalf("stop's error %v names no path", rec.errs[0])
			}
			if tc.name == "append-enospc" {
				if got, _ := disk.ReadFile("d/f"); !bytes.Equal(got, []byte("abcxyz")) {
					t.Fatalf("file = %q after the retried append, want %q", got, "abcxyz")
				}
			}
		})
	}
}

// TestFailStopStopThatReturnsOnFaultyDisk: a stop hook that does not heal
// the disk gets the retry's error back (nothing is hidden from callers).
func TestFailStopStopThatReturnsOnFaultyDisk(t *testing.T) {
	disk := NewSim(1)
	calls := 0
	fs := FailStop(disk, func(error) { calls++ })
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	disk.SetFaults(Faults{Rules: []FaultRule{{Op: OpSync, Probability: 1}}})
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Sync = %v, want the injected error", err)
	}
	if calls != 1 {
		t.Fatalf("stop called %d times, want 1", calls)
	}
}

// TestFailStopReadSidePassesThrough: expected errors (a missing file, a
// failed read) are the caller's to handle; stop is not called.
func TestFailStopReadSidePassesThrough(t *testing.T) {
	disk := NewSim(1)
	calls := 0
	fs := FailStop(disk, func(error) { calls++ })
	if _, err := fs.Open("missing"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Open(missing) = %v", err)
	}
	if err := fs.Remove("missing"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Remove(missing) = %v", err)
	}
	f, err := fs.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Append([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	disk.SetFaults(Faults{Rules: []FaultRule{{Op: OpRead, Probability: 1}, {Op: OpRename, Probability: 1}}})
	if _, err := f.ReadAt(make([]byte, 3), 0); !errors.Is(err, ErrInjected) {
		t.Fatalf("ReadAt = %v, want the injected error", err)
	}
	if err := fs.Rename("f", "g"); !errors.Is(err, ErrInjected) {
		t.Fatalf("Rename = %v, want the injected error", err)
	}
	if calls != 0 {
		t.Fatalf("stop called %d times for read-side errors", calls)
	}
}

// TestNewVFSLooksThroughFailStop: the dragonboat adapter still sees the
// Sim's capacity under a FailStop wrapper.
func TestNewVFSLooksThroughFailStop(t *testing.T) {
	disk := NewSim(1)
	disk.SetFaults(Faults{CapacityBytes: 1000})
	du, err := NewVFS(FailStop(disk, func(error) {})).GetDiskUsage("/")
	if err != nil {
		t.Fatal(err)
	}
	if du.TotalBytes != 1000 {
		t.Fatalf("TotalBytes = %d through FailStop, want the Sim's capacity 1000", du.TotalBytes)
	}
}

// TestReadBitFlipPattern: flips hit only the files the pattern selects.
func TestReadBitFlipPattern(t *testing.T) {
	disk := NewSim(3)
	data := bytes.Repeat([]byte{0x55}, 64)
	for _, name := range []string{"p/1.log", "p/raft.dat", "w/1.wal"} {
		if err := disk.MkdirAll(path.Dir(name)); err != nil {
			t.Fatal(err)
		}
		f, err := disk.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Append(data); err != nil {
			t.Fatal(err)
		}
	}
	disk.SetFaults(Faults{ReadBitFlipProbability: 1, ReadBitFlipPattern: "p/*.log|w/*.wal"})
	read := func(name string) []byte {
		f, err := disk.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, len(data))
		if _, err := f.ReadAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	for _, name := range []string{"p/1.log", "w/1.wal"} {
		if bytes.Equal(read(name), data) {
			t.Fatalf("%s, selected, was read without its flipped bit", name)
		}
	}
	if !bytes.Equal(read("p/raft.dat"), data) {
		t.Fatal("a file outside the pattern was flipped")
	}
}
