package wal

import (
	"errors"
	"path"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chronik-go/chronik/diskio"
)

// truncFS records the Truncate calls on the files it opened.
type truncFS struct {
	diskio.FS
	mu    sync.Mutex
	sizes []int64
}

type truncFile struct {
	diskio.File
	fs *truncFS
}

func (f truncFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	f.fs.sizes = append(f.fs.sizes, size)
	f.fs.mu.Unlock()
	return f.File.Truncate(size)
}

func (t *truncFS) OpenRW(n string) (diskio.File, error) {
	f, err := t.FS.OpenRW(n)
	if err != nil {
		return nil, err
	}
	return truncFile{f, t}, nil
}

// TestDeadSegmentCutPaced: a dead segment handed to the unlinker is cut
// from its end a chunk at a time, then removed; Close waits for the
// removal, and ends a paced cut early (the file is still removed).
func TestDeadSegmentCutPaced(t *testing.T) {
	for _, closeAtOnce := range []bool{false, true} {
		fs := &truncFS{FS: diskio.NewSim(1)}
		w := mustOpen(t, fs, Options{})
		name := path.Join(w.dir, deadName(99))
		f, err := fs.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(make([]byte, 3*unlinkChunkBytes+100), 0); err != nil {
			t.Fatal(err)
		}
		f.Close()
		w.unlinkQ <- name // as unlink does
		if !closeAtOnce {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				if _, err := fs.Stat(name); errors.Is(err, diskio.ErrNotExist) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("dead segment not removed within 10 s")
				}
			}
			fs.mu.Lock()
			got := slices.Clone(fs.sizes)
			fs.mu.Unlock()
			if want := []int64{2*unlinkChunkBytes + 100, unlinkChunkBytes + 100, 100}; !slices.Equal(got, want) {
				t.Fatalf("cut to %v, want %v", got, want)
			}
		}
		w.Close()
		if _, err := fs.Stat(name); !errors.Is(err, diskio.ErrNotExist) {
			t.Fatalf("closeAtOnce=%v: dead segment still there after Close: %v", closeAtOnce, err)
		}
	}
}

// TestOpenRemovesDeadSegments: a dead segment left by a crash between its
// rename and its removal is removed by the next Open, not replayed.
func TestOpenRemovesDeadSegments(t *testing.T) {
	fs := diskio.NewSim(1)
	w := mustOpen(t, fs, Options{})
	name := path.Join(w.dir, deadName(1))
	w.Close()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("not a segment"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w = mustOpen(t, fs, Options{})
	defer w.Close()
	if _, err := fs.Stat(name); !errors.Is(err, diskio.ErrNotExist) {
		t.Fatalf("dead segment kept by Open: %v", err)
	}
}
