package plog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/chronik-go/chronik/diskio"
)

// Open opens (creating if needed) the log in opts.Dir and recovers it:
//
//  1. Leftover *.tmp files are removed; the checkpoint is read (a corrupt one
//     is ErrCorruptLog: delete it to force a full recovery).
//  2. Sealed segments wholly below the log start are deleted. The other
//     sealed segments are trusted to their length (they were synced when
//     sealed); their index files get a cheap consistency check and are
//     rebuilt (with full CRC verification) if missing or inconsistent.
//  3. From the checkpoint's verified position on, batch headers of sealed
//     segments are walked (to rebuild the epoch cache and Raft index) and the
//     active segment is verified batch by batch. A bad frame followed only by
//     bytes of the same write is a torn tail: truncated, logged. A bad frame
//     followed by a valid frame of a later write is ErrCorruptLog.
//  4. The active segment is synced and a fresh checkpoint written.
func Open(opts Options) (*Log, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	l := &Log{opts: o, fs: o.FS, dir: o.Dir, clk: o.Clock, logger: o.Logger, wlock: make(chan struct{}, 1),
		segmentBytesMax: o.SegmentBytesMax, segmentAgeMax: o.SegmentAgeMax}
	if err := l.fs.MkdirAll(l.dir); err != nil {
		return nil, fmt.Errorf("plog: open: %w", err)
	}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			s.f.Close()
		}
		return nil, err
	}
	l.lockW()
	err = l.writeCheckpointW()
	l.unlockW()
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) recover() error {
	bases, err := l.listDir()
	if err != nil {
		return err
	}
	ck, hasCk, err := l.readCheckpoint()
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		base := int64(0)
		if hasCk {
			if ck.nextOffset > ck.logStart {
				return fmt.Errorf("%w: checkpoint records offsets [%d, %d) but no segment exists", ErrCorruptLog, ck.logStart, ck.nextOffset)
			}
			base = ck.nextOffset
		}
		f, err := l.fs.Create(segmentPath(l.dir, base))
		if err != nil {
			return fmt.Errorf("plog: open: %w", err)
		}
		f.Close()
		bases = []int64{base}
	}
	if hasCk {
		bases, err = l.removeBelow(bases, ck.logStart)
		if err != nil {
			return err
		}
	}
	if err := l.openSegments(bases); err != nil {
		return err
	}
	return l.recoverTail(ck, hasCk)
}

// listDir removes *.tmp leftovers and returns the segment bases, ascending.
func (l *Log) listDir() ([]int64, error) {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return nil, fmt.Errorf("plog: open: %w", err)
	}
	var bases []int64
	for _, n := range names {
		if strings.HasSuffix(n, tmpSuffix) {
			if err := l.fs.Remove(path.Join(l.dir, n)); err != nil {
				return nil, fmt.Errorf("plog: open: %w", err)
			}
			continue
		}
		stem, ok := strings.CutSuffix(n, segmentSuffix)
		if !ok || len(stem) != segmentNameDigits {
			continue
		}
		b, err := strconv.ParseInt(stem, 10, 64)
		if err != nil || b < 0 {
			continue
		}
		bases = append(bases, b) // List is sorted and names are fixed-width
	}
	return bases, nil
}

func (l *Log) readCheckpoint() (checkpoint, bool, error) {
	p := path.Join(l.dir, checkpointName)
	data, err := l.readWhole(p, checkpointBytesMax)
	if errors.Is(err, diskio.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("plog: open: %w", err)
	}
	c, err := decodeCheckpoint(data)
	if err != nil {
		return c, false, fmt.Errorf("%w: %s: %w", ErrCorruptLog, p, err)
	}
	return c, true, nil
}

// readWhole reads a small file, refusing one larger than limit.
func (l *Log) readWhole(name string, limit int64) ([]byte, error) {
	f, err := l.fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%s: %d bytes, limit %d", name, n, limit)
	}
	b := make([]byte, n)
	return b, readFull(f, b, 0)
}

// removeBelow deletes sealed segments whose successor starts at or below start.
func (l *Log) removeBelow(bases []int64, start int64) ([]int64, error) {
	for len(bases) > 1 && bases[1] <= start {
		s := &segment{base: bases[0], path: segmentPath(l.dir, bases[0])}
		for _, p := range []string{s.path, s.indexPath(), s.timeIndexPath()} {
			if err := l.fs.Remove(p); err != nil && !errors.Is(err, diskio.ErrNotExist) {
				return nil, fmt.Errorf("plog: open: %w", err)
			}
		}
		bases = bases[1:]
	}
	return bases, nil
}

func (l *Log) openSegments(bases []int64) error {
	now := l.clk.Now()
	for i, b := range bases {
		p := segmentPath(l.dir, b)
		f, err := l.fs.OpenRW(p)
		if err != nil {
			return fmt.Errorf("plog: open: %w", err)
		}
		s := &segment{base: b, path: p, f: f, next: b, maxTs: -1, maxTsOffset: -1, createdAt: now}
		l.segs = append(l.segs, s)
		if s.size, err = f.Size(); err != nil {
			return fmt.Errorf("plog: open: %w", err)
		}
		if s.size >= 1<<32 {
			return fmt.Errorf("%w: segment %s of %d bytes", ErrCorruptLog, p, s.size)
		}
		if i < len(bases)-1 {
			s.next = bases[i+1]
			if err := l.loadSealed(s); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadSealed loads a sealed segment's index files, checks them cheaply, and
// rebuilds them from the data if they fail.
func (l *Log) loadSealed(s *segment) error {
	if l.loadIndexes(s, -1, -1) && l.indexesPlausible(s, s.size) {
		return nil
	}
	l.logger.Warn("plog: rebuilding index of sealed segment", "path", s.path)
	s.index, s.tindex, s.maxTs, s.maxTsOffset, s.bytesSinceIndex = nil, nil, -1, -1, 0
	want := s.base
	pos, err := walkFrames(s.f, 0, s.size, true, func(pos int64, h frameHeader, bi batchInfo) bool {
		if bi.baseOffset != want {
			return false
		}
		s.addBatch(pos, bi, h.raftIndex, h.frameBytes(), l.opts.IndexIntervalBytes)
		want = bi.lastOffset() + 1
		return true
	})
	if err == nil && want != s.next {
		err = fmt.Errorf("offsets end at %d, next segment starts at %d", want, s.next)
	}
	if err != nil {
		return corruptAt(s, pos, err)
	}
	s.sealTimeIndex()
	return l.writeIndexFilesW(s, encodeIndex(s.index), encodeTimeIndex(s.tindex))
}

// loadIndexes reads s's index files, keeping at most nIdx/nTime entries (-1:
// all). It reports false if they are missing or malformed.
func (l *Log) loadIndexes(s *segment, nIdx, nTime int) bool {
	ib, err1 := l.readWhole(s.indexPath(), 1<<32)
	tb, err2 := l.readWhole(s.timeIndexPath(), 1<<32)
	if err1 != nil || err2 != nil {
		return false
	}
	idx, ok1 := decodeIndex(ib)
	tidx, ok2 := decodeTimeIndex(tb)
	if !ok1 || !ok2 || (nIdx >= 0 && len(idx) < nIdx) || (nTime >= 0 && len(tidx) < nTime) {
		return false
	}
	if nIdx >= 0 {
		idx, tidx = idx[:nIdx], tidx[:nTime]
	}
	s.index, s.tindex = idx, tidx
	s.maxTs = -1
	if len(tidx) > 0 {
		s.maxTs = tidx[len(tidx)-1].ts
	}
	return true
}

// indexesPlausible checks index entries against the segment's extent
// [0, size) and offsets [base, next], and that the first and last indexed
// frames are sound and carry the indexed offsets.
func (l *Log) indexesPlausible(s *segment, size int64) bool {
	span := s.next - s.base
	for _, e := range s.index {
		if int64(e.pos) >= size || int64(e.rel) >= span {
			return false
		}
	}
	for _, e := range s.tindex {
		if int64(e.rel) > span {
			return false
		}
	}
	if size == 0 {
		return len(s.index) == 0 && len(s.tindex) == 0
	}
	check := []indexEntry{{0, 0}}
	if len(s.index) > 0 {
		check = append(check, s.index[len(s.index)-1])
	}
	for _, e := range check {
		_, bi, err := frameAt(s.f, int64(e.pos), size)
		if err != nil || bi.baseOffset != s.base+int64(e.rel) {
			return false
		}
	}
	return true
}

// tailState is the log state carried along the recovery walk.
type tailState struct {
	next   int64
	raft   uint64
	epochs []epochEntry
}

func (t *tailState) add(h frameHeader, bi batchInfo) {
	if len(t.epochs) == 0 || bi.leaderEpoch > t.epochs[len(t.epochs)-1].epoch {
		t.epochs = append(t.epochs, epochEntry{bi.leaderEpoch, bi.baseOffset})
		if len(t.epochs) > EpochEntriesMax {
			t.epochs = t.epochs[len(t.epochs)-EpochEntriesMax:]
		}
	}
	t.next, t.raft = bi.lastOffset()+1, h.raftIndex
}

// recoverTail resumes from the checkpoint (if it names a segment and a
// position that still exist) or from the first segment.
func (l *Log) recoverTail(ck checkpoint, hasCk bool) error {
	k, from := -1, int64(0)
	st := tailState{next: l.segs[0].base}
	for i, s := range l.segs {
		if hasCk && s.base == ck.activeBase && ck.verifiedPos <= s.size {
			k, from = i, ck.verifiedPos
			st = tailState{next: ck.nextOffset, raft: ck.raftIndex, epochs: ck.epochs}
		}
	}
	if k < 0 {
		k = 0
		if hasCk {
			l.logger.Warn("plog: checkpoint does not match segments; recovering from the first segment", "dir", l.dir, "activeBase", ck.activeBase)
		}
	}
	last := len(l.segs) - 1
	for i := k; i < last; i++ {
		if err := l.walkSealed(l.segs[i], from, &st); err != nil {
			return err
		}
		from = 0
	}
	act := l.segs[last]
	var err error
	if k == last && from > 0 {
		if !l.loadActiveIndexes(act, ck) {
			l.logger.Warn("plog: active segment index unusable; verifying whole segment", "path", act.path)
			from, act.index, act.tindex = 0, nil, nil
			act.maxTs, act.maxTsOffset = -1, -1
			st.next, st.raft = act.base, 0
			if last > 0 {
				if st.raft, err = l.lastRaftIndexOf(l.segs[last-1]); err != nil {
					return err
				}
			}
		}
	}
	if from == 0 {
		act.index, act.tindex, act.maxTs, act.maxTsOffset, act.bytesSinceIndex = nil, nil, -1, -1, 0
		if st.next != act.base {
			return corruptAt(act, 0, fmt.Errorf("segment base %d, previous data ends at %d", act.base, st.next))
		}
	}
	if err := l.recoverActive(act, from, &st); err != nil {
		return err
	}
	if err := act.f.Sync(); err != nil {
		return fmt.Errorf("plog: open: sync %s: %w", act.path, err)
	}
	l.finishOpen(ck, hasCk, st)
	return nil
}

func (l *Log) finishOpen(ck checkpoint, hasCk bool, st tailState) {
	l.next = st.next
	l.start = l.segs[0].base
	if hasCk {
		l.start = max(l.start, ck.logStart)
	}
	l.start = min(l.start, l.next)
	l.epochs = st.epochs
	for len(l.epochs) > 0 && l.epochs[len(l.epochs)-1].start >= l.next {
		l.epochs = l.epochs[:len(l.epochs)-1]
	}
	l.pruneEpochsLocked()
	l.active().lastRaftIndex = st.raft
	l.written = point{seq: 0, next: st.next, raft: st.raft}
	l.durable = l.written
}

// walkSealed walks the frame headers of a sealed segment from pos, checking
// offset continuity, to carry the epoch cache and Raft index forward.
func (l *Log) walkSealed(s *segment, from int64, st *tailState) error {
	var bad error
	pos, err := walkFrames(s.f, from, s.size, false, func(pos int64, h frameHeader, bi batchInfo) bool {
		if bi.baseOffset != st.next {
			bad = fmt.Errorf("batch at offset %d, expected %d", bi.baseOffset, st.next)
			return false
		}
		st.add(h, bi)
		return true
	})
	if err == nil {
		err = bad
	}
	if err == nil && st.next != s.next {
		err = fmt.Errorf("offsets end at %d, next segment starts at %d", st.next, s.next)
	}
	if err != nil {
		return corruptAt(s, pos, err)
	}
	s.lastRaftIndex = st.raft
	return nil
}

// loadActiveIndexes restores the active segment's indexes and state as of the
// checkpoint, reporting false if the index files do not match it.
func (l *Log) loadActiveIndexes(s *segment, ck checkpoint) bool {
	if !l.loadIndexes(s, int(ck.indexEntries), int(ck.timeEntries)) {
		return false
	}
	s.next = ck.nextOffset
	if !l.indexesPlausible(s, ck.verifiedPos) {
		return false
	}
	s.maxTs, s.maxTsOffset = ck.maxTs, ck.maxTsOffset
	s.lastRaftIndex = ck.raftIndex
	s.bytesSinceIndex = ck.verifiedPos
	if len(s.index) > 0 {
		s.bytesSinceIndex = ck.verifiedPos - int64(s.index[len(s.index)-1].pos)
	}
	return true
}

// recoverActive verifies the active segment from pos on, truncating a torn
// tail and refusing mid-log corruption.
func (l *Log) recoverActive(s *segment, from int64, st *tailState) error {
	size := s.size // the file's length
	s.size = from
	pos := from
	var err error
	for attempt := 0; ; attempt++ {
		var bad error
		pos, err = walkFrames(s.f, pos, size, true, func(pos int64, h frameHeader, bi batchInfo) bool {
			if bi.baseOffset != st.next || h.raftIndex < st.raft || bi.recordCount != bi.lastOffsetDelta+1 || bi.recordCount <= 0 {
				bad = fmt.Errorf("batch at offset %d (raft %d), expected offset %d (raft >= %d)", bi.baseOffset, h.raftIndex, st.next, st.raft)
				return false
			}
			s.addBatch(pos, bi, h.raftIndex, h.frameBytes(), l.opts.IndexIntervalBytes)
			st.add(h, bi)
			return true
		})
		if err == nil {
			err = bad
		}
		if err == nil || attempt == 1 {
			break
		}
		// Re-read once: a read-path bit flip is transient, a bad frame on disk is not.
	}
	if err == nil {
		s.size = size
		return nil
	}
	if later, q := l.laterWriteAfter(s, pos, size); later {
		return corruptAt(s, pos, fmt.Errorf("%w; valid frame of a later write at %d", err, q))
	}
	l.logger.Warn("plog: truncating torn tail", "path", s.path, "position", pos, "bytes", size-pos, "reason", err)
	if err := s.f.Truncate(pos); err != nil {
		return fmt.Errorf("plog: open: truncate %s: %w", s.path, err)
	}
	s.size = pos
	return nil
}

// laterWriteAfter searches [bad+1, size) for a valid frame (magic, header CRC,
// batch CRC) that belongs to a write starting after bad. Torn writes leave
// garbage only at the end of the last write, so such a frame means the bad
// frame is not a torn tail. Cost: one pass over the tail, on this rare path.
func (l *Log) laterWriteAfter(s *segment, bad, size int64) (bool, int64) {
	const chunk = 1 << 20
	var magic [4]byte
	binary.BigEndian.PutUint32(magic[:], FrameMagic)
	var buf []byte
	for base := bad + 1; base < size; {
		n := min(int64(chunk), size-base)
		buf = growBuf(buf, int(n))
		if readFull(s.f, buf, base) != nil {
			return false, 0
		}
		for i := 0; ; i++ {
			j := bytes.Index(buf[i:], magic[:])
			if j < 0 {
				break
			}
			i += j
			q := base + int64(i)
			if h, _, err := frameAt(s.f, q, size); err == nil && q-int64(h.writeOffset) > bad && l.frameCRCValid(s, q, h) {
				return true, q
			}
		}
		base += max(n-3, 1)
	}
	return false, 0
}

func (l *Log) frameCRCValid(s *segment, q int64, h frameHeader) bool {
	b := make([]byte, h.batchLen)
	return readFull(s.f, b, q+FrameHeaderBytes) == nil && batchCRCValid(b)
}

// lastRaftIndexOf returns the Raft index of the last frame of s (walking from
// its last index entry), or of the segment before it if s is empty.
func (l *Log) lastRaftIndexOf(s *segment) (uint64, error) {
	var from int64
	if len(s.index) > 0 {
		from = int64(s.index[len(s.index)-1].pos)
	}
	raft := s.lastRaftIndex
	_, err := walkFrames(s.f, from, s.size, false, func(_ int64, h frameHeader, _ batchInfo) bool {
		raft = h.raftIndex
		return true
	})
	if err != nil {
		return 0, corruptAt(s, from, err)
	}
	return raft, nil
}
