package plog

import (
	"sync"
	"testing"

	"github.com/chronik-go/chronik/diskio"
)

// hintFS records File.StartWriteback calls on the files it opened.
type hintFS struct {
	diskio.FS
	mu    sync.Mutex
	hints map[string][][2]int64 // file: (off, n) in call order
}

type hintFile struct {
	diskio.File
	fs *hintFS
}

func (f hintFile) StartWriteback(off, n int64) {
	f.fs.mu.Lock()
	f.fs.hints[f.Name()] = append(f.fs.hints[f.Name()], [2]int64{off, n})
	f.fs.mu.Unlock()
	f.File.StartWriteback(off, n)
}

func (h *hintFS) wrap(f diskio.File, err error) (diskio.File, error) {
	if err != nil {
		return nil, err
	}
	return hintFile{f, h}, nil
}
func (h *hintFS) Create(n string) (diskio.File, error) { return h.wrap(h.FS.Create(n)) }
func (h *hintFS) OpenRW(n string) (diskio.File, error) { return h.wrap(h.FS.OpenRW(n)) }
func (h *hintFS) CreateExclusive(n string) (diskio.File, error) {
	return h.wrap(h.FS.CreateExclusive(n))
}

// TestWritebackHints: appends start the write-out of each segment's
// bytes in order, WritebackBytes at a time or more, each byte once, up to
// at most WritebackBytes behind its end; a negative WritebackBytes never
// hints.
func TestWritebackHints(t *testing.T) {
	const every = 16 << 10
	for _, wb := range []int64{every, -1} {
		h := &hintFS{FS: diskio.NewSim(1), hints: map[string][][2]int64{}}
		o := testOpts(h)
		o.SegmentBytesMax, o.WritebackBytes = 256<<10, wb
		l := mustOpen(t, o)
		for i := range 100 {
			mustAppend(t, l, mkBatch(3, 1000, int64(i)), uint64(i+1), 0)
		}
		l.mu.Lock()
		segs := make([]segment, len(l.segs))
		for i, s := range l.segs {
			segs[i] = segment{path: s.path, size: s.size}
		}
		l.mu.Unlock()
		l.Close()
		if len(segs) < 2 {
			t.Fatalf("%d segments, want several", len(segs))
		}
		if wb < 0 {
			if len(h.hints) != 0 {
				t.Fatalf("hints with WritebackBytes %d: %v", wb, h.hints)
			}
			continue
		}
		for _, s := range segs {
			var end int64
			for _, x := range h.hints[s.path] {
				if x[0] != end || x[1] < wb {
					t.Fatalf("%s: hint %v after %d, want from %d and at least %d", s.path, x, end, end, wb)
				}
				end += x[1]
			}
			if end > s.size || s.size-end >= wb {
				t.Fatalf("%s: %d bytes hinted of %d", s.path, end, s.size)
			}
		}
	}
}
