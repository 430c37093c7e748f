package wal

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/chronik-go/chronik/diskio"
)

// commitLoop is the committer: it gathers the queued requests into one
// batch (one Write, at most one fsync) and answers each of them. It is the
// only writer of the segment files and of the in-memory state.
func (w *WAL) commitLoop() {
	defer close(w.done)
	defer close(w.unlinkQ)
	for {
		var first *request
		select {
		case first = <-w.reqs:
		case <-w.stop:
			w.drain()
			w.cutReusedTail()
			return
		}
		group := []*request{first}
		bytes := len(first.recs) - batchHeaderBytes
	gather:
		for bytes < w.opts.GroupBytesMax {
			select {
			case r := <-w.reqs:
				group = append(group, r)
				bytes += len(r.recs) - batchHeaderBytes
			default:
				break gather
			}
		}
		err := w.commit(group)
		for _, r := range group {
			r.done <- err
		}
		// Relocation goes on between groups, a chunk at a time, when
		// nothing waits (or it waited relocStarveGroups groups), so that
		// no group waits for more than one chunk.
		if w.relocSeg != 0 {
			w.relocWait++
			if len(w.reqs) == 0 || w.relocWait >= relocStarveGroups {
				w.relocWait = 0
				w.relocateStep()
			}
		}
	}
}

// cutReusedTail, at Close, cuts a reused active segment's old bytes past
// what was written (so that the next Open finds no tail to cut). Best
// effort: the old bytes are harmless, Open cuts them too.
func (w *WAL) cutReusedTail() {
	if w.failed != nil || w.active == nil || w.activeFileSize <= w.activeSize {
		return
	}
	if err := errors.Join(w.active.f.Truncate(w.activeSize), w.active.f.Sync()); err != nil {
		w.log.Warn("WAL: could not cut a reused segment's old bytes at close (the next open cuts them)", "segment", w.active.name, "err", err)
	}
}

// drain answers the requests left in the queue at Close.
func (w *WAL) drain() {
	for {
		select {
		case r := <-w.reqs:
			r.done <- ErrClosed
		default:
			return
		}
	}
}

// commit writes one group as one batch, fsyncs it if any request needs it
// (or a segment was started), applies its records to the in-memory state,
// and deletes the segments nothing live is left in. A group of one request
// is framed in the request's own buffer (its header room) and written from
// there; a larger group, or one opening a segment, is copied into the
// committer's reused batch buffer.
func (w *WAL) commit(group []*request) error {
	if w.failed != nil {
		return w.failed
	}
	sync, frees := false, false
	for _, r := range group {
		sync = sync || r.sync
		frees = frees || r.frees
	}
	var buf []byte
	own := len(group) != 1 || w.activeSize >= w.opts.SegmentBytes
	if !own {
		buf = group[0].recs
	} else {
		// The header is written whole by frameBatch, the records are
		// copied over: nothing stale of an earlier batch stays in buf.
		buf = slices.Grow(w.batchBuf[:0], batchHeaderBytes+w.groupBytes(group))[:batchHeaderBytes]
		if w.activeSize >= w.opts.SegmentBytes {
			var err error
			if buf, err = w.roll(buf); err != nil {
				return w.fail(err)
			}
			sync, frees = true, true
		}
		for _, r := range group {
			buf = append(buf, r.recs[batchHeaderBytes:]...)
		}
	}
	err := w.writeBatch(buf, sync)
	if own && cap(buf) <= recBufKeepBytesMax {
		w.batchBuf = buf[:0]
	}
	if err != nil {
		return w.fail(err)
	}
	if frees {
		w.deleteDead()
	}
	return nil
}

func (w *WAL) groupBytes(group []*request) int {
	n := 0
	for _, r := range group {
		n += len(r.recs) - batchHeaderBytes
	}
	return n
}

// writeBatch frames buf (its header reserved) as the next batch, appends it
// to the active segment, fsyncs if asked, and applies its records.
func (w *WAL) writeBatch(buf []byte, sync bool) error {
	if len(buf)-batchHeaderBytes > BatchBytesMax {
		return fmt.Errorf("wal: batch of %d bytes, max %d", len(buf)-batchHeaderBytes, BatchBytesMax)
	}
	frameBatch(buf, w.seq)
	off := w.activeSize
	if _, err := w.active.f.WriteAt(buf, off); err != nil {
		return err
	}
	w.dirty = true
	if sync {
		if err := w.syncActive(); err != nil {
			return err
		}
		w.dirty = false
	}
	w.seq++
	w.activeSize += int64(len(buf))
	w.mu.Lock()
	defer w.mu.Unlock()
	// The records were encoded by this process a moment ago: their CRCs
	// are not checked again (recovery checks them when reading back).
	if err := applyBody(w.st, buf[batchHeaderBytes:], w.active.num, off+batchHeaderBytes, false); err != nil {
		panic(fmt.Sprintf("wal: a batch written by this process does not apply: %v", err))
	}
	return nil
}

// applyBody applies the records of a batch body found at offset base of
// segment seg; verify checks each record's CRC (bytes read from disk).
func applyBody(st *memState, body []byte, seg uint64, base int64, verify bool) error {
	for pos := 0; pos < len(body); {
		t, p, n, err := parseRecordVerify(body[pos:], verify)
		if err != nil {
			return fmt.Errorf("record at offset %d: %w", base+int64(pos), err)
		}
		if err := st.apply(t, p, seg, base+int64(pos), int64(n)); err != nil {
			return fmt.Errorf("record at offset %d: %w", base+int64(pos), err)
		}
		pos += n
	}
	return nil
}

// fail makes the WAL refuse everything from now on (fail-stop: a failed
// write or fsync leaves the file's durable content unknown; never retried).
func (w *WAL) fail(err error) error {
	w.failed = fmt.Errorf("%w: %w", ErrFailed, err)
	w.log.Error("WAL failed; refusing every write until reopened", "err", err)
	return w.failed
}

// roll seals the active segment (fsynced, so that only the newest segment
// can ever have a torn tail) and starts the next one. It appends to buf
// the record that opens it, the checkpoint of every node's state, and
// starts moving the oldest segment's live entries forward if it is worth
// it (relocate).
func (w *WAL) roll(buf []byte) ([]byte, error) {
	if w.activeFileSize > w.activeSize {
		// A reused segment: cut its old bytes, so that a sealed segment
		// ends where its batches do (only the newest can hold more).
		if err := w.active.f.Truncate(w.activeSize); err != nil {
			return buf, err
		}
		w.dirty = true
	}
	if w.dirty {
		if err := w.syncActive(); err != nil {
			return buf, err
		}
		w.dirty = false
	}
	if err := w.startSegment(w.active.num + 1); err != nil {
		return buf, err
	}
	w.relocate()
	return appendCheckpoint(buf, w.st), nil
}

// startSegment makes segment num the active one: the oldest dead segment
// kept for reuse, renamed (its old bytes stay until overwritten, see
// recover.go), or else a new file.
func (w *WAL) startSegment(num uint64) error {
	name := w.segPath(num)
	var (
		f    diskio.File
		size int64
		err  error
	)
	if len(w.free) > 0 {
		old := path.Join(w.dir, freeName(w.free[0]))
		if err = w.fs.Rename(old, name); err != nil {
			return err
		}
		w.free = w.free[1:]
		w.reused++
		if f, err = w.fs.OpenRW(name); err != nil {
			return err
		}
		if size, err = f.Size(); err != nil {
			f.Close()
			return err
		}
	} else if f, err = w.fs.CreateExclusive(name); err != nil {
		return err
	}
	s := &segment{num: num, f: f, name: name}
	w.mu.Lock()
	w.segs[num] = s
	w.mu.Unlock()
	w.active, w.activeSize, w.activeFileSize = s, 0, size
	return nil
}

// liveBytes returns, per segment, the bytes of the records some run still
// needs (each record counted once). Committer only.
func (w *WAL) liveBytes() map[uint64]int64 {
	type loc struct {
		seg uint64
		off int64
	}
	seen := map[loc]bool{}
	live := map[uint64]int64{}
	for _, n := range w.st.nodes {
		for _, r := range n.runs {
			if l := (loc{r.seg, r.off}); !seen[l] {
				seen[l] = true
				live[r.seg] += r.recBytes
			}
		}
	}
	return live
}

// relocate decides, at a roll, whether to move the live entries of the
// oldest sealed segment forward (as relocated records, which move entries
// without truncating the log): when that segment is mostly dead or the
// WAL holds more than twice its live bytes plus two segments. The moving
// is done by relocateStep, RelocateChunkBytes at a time between group
// commits (one copy of tens of MB inside a group commit stalled every
// shard's writes for over a second); the segment is then dead and goes
// with the deletion after the last chunk. This bounds the space a
// rarely-writing shard can pin.
func (w *WAL) relocate() {
	if w.relocSeg != 0 {
		return // one at a time; the next roll looks again
	}
	nums := w.sortedSegs()
	if len(nums) < 2 {
		return
	}
	oldest := nums[0]
	live := w.liveBytes()
	if live[oldest] == 0 {
		return
	}
	var total, totalLive int64
	for _, num := range nums {
		total += w.segSize(num)
		totalLive += live[num]
	}
	if live[oldest]*2 > w.opts.SegmentBytes && total <= 2*totalLive+2*w.opts.SegmentBytes {
		return
	}
	w.relocSeg = oldest
	w.log.Info("WAL: relocating live entries out of the oldest segment", "segment", w.segPath(oldest), "live_bytes", live[oldest])
}

// relocateStep writes the next chunk (at least one run, then runs up to
// RelocateChunkBytes) of the live entries left in segment relocSeg as one
// batch. The last chunk (nothing left after it) is fsynced and followed by
// the deletion of the dead segments; the others are not (an entry whose
// relocated copy is lost in a crash is still read where it was).
// Committer only.
func (w *WAL) relocateStep() {
	if w.failed != nil {
		w.relocSeg = 0
		return
	}
	w.mu.RLock()
	src := w.segs[w.relocSeg]
	w.mu.RUnlock()
	if src == nil {
		w.relocSeg = 0
		return
	}
	buf := slices.Grow(w.batchBuf[:0], batchHeaderBytes)[:batchHeaderBytes]
	var moved int64
	left := false
	for _, k := range w.st.sortedKeys() {
		for _, r := range w.st.nodes[k].runs {
			if r.seg != w.relocSeg {
				continue
			}
			if moved > 0 && moved+r.recBytes > RelocateChunkBytes {
				left = true
				break
			}
			w.relocRead = slices.Grow(w.relocRead[:0], int(r.recBytes))[:r.recBytes]
			v, err := w.readEntriesInto(src, r, w.relocRead)
			if err != nil {
				w.fail(err)
				return
			}
			if v.key != k || r.first < v.first || r.last > v.last() {
				w.fail(w.corrupt(src, r.off, fmt.Errorf("%w: record of %v [%d, %d] where the index has %v [%d, %d]",
					errBadRecord, v.key, v.first, v.last(), k, r.first, r.last)))
				return
			}
			buf = appendEntriesRange(buf, recRelocated, v, r.first, r.last)
			moved += r.recBytes
		}
		if left {
			break
		}
	}
	if moved == 0 {
		w.relocSeg = 0
		return
	}
	err := w.writeBatch(buf, !left)
	if cap(buf) <= recBufKeepBytesMax {
		w.batchBuf = buf[:0]
	}
	if cap(w.relocRead) > recBufKeepBytesMax {
		w.relocRead = nil
	}
	if err != nil {
		w.fail(err)
		return
	}
	if !left {
		w.relocSeg = 0
		w.deleteDead()
	}
}

func (w *WAL) segSize(num uint64) int64 {
	if num == w.active.num {
		return w.activeSize
	}
	w.mu.RLock()
	s := w.segs[num]
	w.mu.RUnlock()
	if sz, err := s.f.Size(); err == nil {
		return sz
	}
	return 0
}

// isLive reports whether some run still needs segment num. Committer only.
func (w *WAL) isLive(num uint64) bool {
	for _, n := range w.st.nodes {
		for _, r := range n.runs {
			if r.seg == num {
				return true
			}
		}
	}
	return false
}

// deleteDead deletes the oldest sealed segments while nothing live is in
// them, or renames them for reuse (freeName, up to RecycleSegments)
// (oldest first, stopping at the first live one: recovery replays a
// suffix of the segments, each opening with a checkpoint). Called after a
// batch that may have freed some (a compaction, removal or import record,
// or a roll), always fsynced, so whatever made them dead is durable;
// entries freed only by a truncation wait for the next such batch. A
// segment being read is left for a later pass. A failed remove or rename
// fails the WAL.
func (w *WAL) deleteDead() {
	for _, num := range w.sortedSegs() {
		if num == w.active.num || w.isLive(num) {
			return
		}
		w.mu.Lock()
		s := w.segs[num]
		if s.readers.Load() > 0 {
			w.mu.Unlock()
			return
		}
		delete(w.segs, num)
		w.mu.Unlock()
		err := s.f.Close()
		if len(w.free) < w.opts.RecycleSegments {
			if err = errors.Join(err, w.fs.Rename(s.name, path.Join(w.dir, freeName(num)))); err == nil {
				w.free = append(w.free, num)
			}
		} else {
			err = errors.Join(err, w.unlink(s.name, num))
		}
		if err != nil {
			w.fail(fmt.Errorf("delete %s: %w", s.name, err))
			return
		}
		w.log.Debug("WAL: a segment with nothing live deleted or kept for reuse", "segment", s.name)
	}
}

// Removing dead segments. unlinkQueueLen bounds the dead segments
// waiting for unlinker (beyond it the committer removes them itself).
// unlinker cuts a segment from its end unlinkChunkBytes at a time,
// unlinkPause apart, then unlinks it (as RocksDB's rate-limited
// deletes): freeing a 64 MiB file's blocks at once held the file
// system's journal long enough to stall the WAL's fsyncs 10-25 ms. With
// unlinkPacedMax or more others waiting it removes a segment at once
// (falling behind would hold their disk space).
const (
	unlinkQueueLen   = 16
	unlinkChunkBytes = 4 << 20
	unlinkPause      = 20 * time.Millisecond
	unlinkPacedMax   = 2
)

// unlink removes dead segment num (file name): renamed deadName (a
// durable rename, so that no later open replays it), then removed by
// unlinker, off the committer's path (freeing a 64 MiB file's blocks took
// 27 ms on ext4, with every group commit waiting behind it). Committer
// (or Open) only.
func (w *WAL) unlink(name string, num uint64) error {
	dead := path.Join(w.dir, deadName(num))
	if err := w.fs.Rename(name, dead); err != nil {
		return err
	}
	select {
	case w.unlinkQ <- dead:
		return nil
	default:
		return w.fs.Remove(dead)
	}
}

// unlinker removes the dead segments unlink hands it, until unlinkQ is
// closed. A failed removal is logged, not fatal: the file is dead (Open
// removes it).
func (w *WAL) unlinker() {
	defer close(w.unlinked)
	for name := range w.unlinkQ {
		if len(w.unlinkQ) < unlinkPacedMax {
			w.cutPaced(name)
		}
		if err := w.fs.Remove(name); err != nil {
			w.log.Warn("WAL: could not remove a dead segment (the next open removes it)", "file", name, "err", err)
		}
	}
}

// cutPaced truncates dead segment name unlinkChunkBytes at a time,
// unlinkPause apart, down to one chunk; it stops early (leaving the rest
// to the unlink) on an error or once the WAL is closing.
func (w *WAL) cutPaced(name string) {
	f, err := w.fs.OpenRW(name)
	if err != nil {
		return
	}
	defer f.Close()
	size, err := f.Size()
	for err == nil && size > unlinkChunkBytes {
		size -= unlinkChunkBytes
		if err = f.Truncate(size); err != nil {
			return
		}
		t := w.opts.Clock.NewTimer(unlinkPause)
		select {
		case <-t.C():
		case <-w.stop:
			t.Stop()
			return
		}
	}
}

// syncActive fsyncs the active segment, timed for Options.ObserveSync.
func (w *WAL) syncActive() error {
	if w.opts.ObserveSync == nil {
		return w.active.f.Sync()
	}
	start := w.opts.Clock.Now()
	err := w.active.f.Sync()
	w.opts.ObserveSync(w.opts.Clock.Since(start))
	return err
}
