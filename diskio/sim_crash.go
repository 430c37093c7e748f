package diskio

import (
	"math/rand/v2"
	"sort"
)

// CrashMode says how much unsynced data a crash image keeps.
type CrashMode int

const (
	// CrashSyncedOnly keeps exactly the synced data.
	CrashSyncedOnly CrashMode = iota
	// CrashRandomPrefix keeps, per file, a random prefix of the writes and
	// truncates made since its last Sync.
	CrashRandomPrefix
	// CrashTornPrefix is CrashRandomPrefix where the last kept write may be
	// cut short and/or end in garbage bytes.
	CrashTornPrefix
)

func (m CrashMode) String() string {
	switch m {
	case CrashSyncedOnly:
		return "synced-only"
	case CrashRandomPrefix:
		return "random-prefix"
	case CrashTornPrefix:
		return "torn-prefix"
	}
	return "CrashMode(?)"
}

// simImage is the tree at the crash instant. Its inodes are private copies
// (data cloned; journal slices shared, their undo bytes being immutable).
type simImage struct {
	files map[string]*inode
	dirs  map[string]struct{}
}

// Freeze marks the crash instant: the tree, every file's content and its
// unsynced journal are captured now (O(total bytes), once). Later operations
// keep working for the dying process but reach no crash image. A second
// Freeze does nothing.
func (s *Sim) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freezeLocked()
}

func (s *Sim) freezeLocked() {
	if s.frozen != nil {
		return
	}
	img := &simImage{files: make(map[string]*inode, len(s.files)), dirs: make(map[string]struct{}, len(s.dirs))}
	for p, ino := range s.files {
		img.files[p] = &inode{data: append([]byte(nil), ino.data...), journal: ino.journal[:len(ino.journal):len(ino.journal)]}
	}
	for d := range s.dirs {
		img.dirs[d] = struct{}{}
	}
	s.frozen = img
}

// CrashImage returns a new Sim holding what a node restarted after the crash
// instant (Freeze, done now if not yet) would find: all synced bytes and
// metadata, plus unsynced writes according to mode. Choices come from the
// Sim's seeded source; the new Sim has a seed derived from it and no faults.
// CrashImage may be called repeatedly for different images of one crash.
func (s *Sim) CrashImage(mode CrashMode) *Sim {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freezeLocked()
	img := NewSim(s.crashRng.Int64())
	for d := range s.frozen.dirs {
		img.dirs[d] = struct{}{}
	}
	paths := make([]string, 0, len(s.frozen.files))
	for p := range s.frozen.files {
		paths = append(paths, p)
	}
	sort.Strings(paths) // map order is random; rng draws must not be
	for _, p := range paths {
		ino := s.frozen.files[p]
		data := crashContent(ino, mode, s.crashRng)
		img.files[p] = &inode{data: data, linked: true}
		img.usedBytes += int64(len(data))
	}
	return img
}

// crashContent builds one file's content after a crash in mode.
func crashContent(ino *inode, mode CrashMode, rng *rand.Rand) []byte {
	n := len(ino.journal)
	if mode == CrashSyncedOnly || n == 0 {
		return stateAfter(ino.data, ino.journal, 0)
	}
	k := rng.IntN(n + 1)
	data := stateAfter(ino.data, ino.journal, k)
	if mode != CrashTornPrefix || k == 0 || ino.journal[k-1].truncate || ino.journal[k-1].length == 0 {
		return data
	}
	// Tear write k-1: keep its first kept bytes, then garbage bytes, and
	// leave the rest of its range as it was before it.
	op := ino.journal[k-1]
	written := append([]byte(nil), data[op.off:op.off+op.length]...)
	data = undoOp(data, op)
	kept := rng.Int64N(op.length + 1)
	garbage := rng.Int64N(op.length - kept + 1)
	if kept+garbage == 0 {
		return data
	}
	end := op.off + kept + garbage
	if end > int64(len(data)) {
		data = resizeBytes(data, end)
	}
	copy(data[op.off:], written[:kept])
	for i := op.off + kept; i < end; i++ {
		data[i] = byte(rng.Uint32())
	}
	return data
}

// stateAfter returns a fresh copy of the content the file had right after
// journal[k-1] (k = 0: the durable content), by undoing journal[k:] from
// current in reverse. Cost: O(len(current) + undo bytes), paid only here.
func stateAfter(current []byte, journal []journalOp, k int) []byte {
	data := append([]byte(nil), current...)
	for i := len(journal) - 1; i >= k; i-- {
		data = undoOp(data, journal[i])
	}
	return data
}

// undoOp reverts op on data, which must be the content right after op.
func undoOp(data []byte, op journalOp) []byte {
	data = resizeBytes(data, op.sizeOld)
	if op.truncate {
		if op.off < op.sizeOld {
			copy(data[op.off:], op.undo)
		}
		return data
	}
	if op.off < op.sizeOld {
		copy(data[op.off:], op.undo)
	}
	return data
}
