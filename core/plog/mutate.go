package plog

import (
	"fmt"
	"time"
)

// DeletePrefix sets the log start offset to offset (Kafka DeleteRecords, and
// replicated retention): offsets below it are no longer readable, the new
// start is persisted in the checkpoint before it returns, and segments
// wholly below it are deleted. When the new start is the log end and the
// active segment holds data, the log rolls first so that the old active
// segment is sealed and deleted too: a topic with a short retention.ms and
// no new writes frees its disk. An offset at or below the current start is
// a no-op.
//
// Crash safety: the roll is the ordinary one (old segment synced and
// indexed before its successor exists; checkpoint after), and the
// checkpoint holding the new start is written before any file is removed,
// so a crash leaves either the old start with every segment or the new
// start (Open then removes segments below it).
func (l *Log) DeletePrefix(offset int64) error {
	l.lockW()
	defer l.unlockW()
	l.mu.Lock()
	err := l.checkUsableLocked()
	start, next := l.start, l.next
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if offset > next {
		return fmt.Errorf("%w: delete prefix to %d beyond log end %d", ErrOffsetOutOfRange, offset, next)
	}
	if offset <= start {
		return nil
	}
	l.mu.Lock()
	l.start = offset
	l.pruneEpochsLocked()
	rollActive := offset == next && l.active().size > 0
	l.mu.Unlock()
	if rollActive {
		if err := l.rollW(); err != nil {
			return err
		}
	}
	return l.deleteBelowStartW()
}

// pruneEpochsLocked drops epoch entries wholly below the log start; the entry
// covering the start is moved to it (as Kafka's truncateFromStart).
func (l *Log) pruneEpochsLocked() {
	i := 0
	for i+1 < len(l.epochs) && l.epochs[i+1].start <= l.start {
		i++
	}
	l.epochs = l.epochs[i:]
	if len(l.epochs) > 0 && l.epochs[0].start < l.start {
		l.epochs[0].start = l.start
	}
}

// deleteBelowStartW persists the start offset, then removes the sealed
// segments that end at or below it. Caller holds wlock.
func (l *Log) deleteBelowStartW() error {
	if err := l.writeCheckpointW(); err != nil {
		return err
	}
	l.mu.Lock()
	var doomed []*segment
	for len(l.segs) > 1 && l.segs[0].next <= l.start {
		doomed = append(doomed, l.segs[0])
		l.segs = l.segs[1:]
	}
	if len(doomed) > 0 {
		l.gen++
	}
	l.mu.Unlock()
	return l.removeSegments(doomed)
}

func (l *Log) removeSegments(doomed []*segment) error {
	var first error
	for _, s := range doomed {
		s.f.Close()
		for _, p := range []string{s.path, s.indexPath(), s.timeIndexPath()} {
			if err := l.fs.Remove(p); err != nil && first == nil && p == s.path {
				first = fmt.Errorf("plog: remove segment: %w", err)
			}
		}
		l.logger.Info("plog: deleted segment", "path", s.path)
	}
	return first
}

// RetentionStart returns the log start offset that Kafka's retention would
// give now, without changing anything (no I/O): the oldest segments are
// dropped while either holds
//
//   - retentionBytes >= 0 and the log without the segment still holds at
//     least retentionBytes (Kafka retention.bytes; sealed segments only), or
//   - retentionAge >= 0 and the segment's newest batch timestamp is older
//     than the Clock's now minus retentionAge (Kafka retention.ms). This
//     includes the active segment when it is non-empty: Kafka rolls and
//     deletes it, so the answer is then the log end.
//
// A negative limit is unlimited. The result is >= StartOffset. The log does
// not apply retention itself: the partition leader computes this and
// replicates the move (DeletePrefix on every replica), so that every
// replica has the same log start.
func (l *Log) RetentionStart(retentionBytes int64, retentionAge time.Duration) int64 {
	nowMs := l.clk.Now().UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	newStart := l.start
	for i, s := range l.segs {
		sealed := i < len(l.segs)-1
		bySize := sealed && retentionBytes >= 0 && total-s.size >= retentionBytes
		byAge := retentionAge >= 0 && s.size > 0 && s.maxTs >= 0 && s.maxTs < nowMs-retentionAge.Milliseconds()
		if !bySize && !byAge {
			break
		}
		total -= s.size
		newStart = max(newStart, s.next)
	}
	return newStart
}

// TruncateSuffix removes every batch that ends at or after offset (a batch
// containing offset is removed whole), so the log end becomes the base offset
// of the first removed batch (or stays, if none). Writes are synced first; the
// checkpoint is rewritten before the files are cut. Offsets below the log
// start cannot be truncated.
func (l *Log) TruncateSuffix(offset int64) error {
	l.lockW()
	defer l.unlockW()
	l.mu.Lock()
	err := l.checkUsableLocked()
	start, next := l.start, l.next
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if offset < start || offset > next {
		return fmt.Errorf("%w: truncate to %d, log [%d, %d]", ErrOffsetOutOfRange, offset, start, next)
	}
	if offset == next {
		return nil
	}
	if err := l.syncAllW(); err != nil {
		return err
	}
	cut, err := l.findCutW(offset)
	if err != nil {
		return err
	}
	return l.truncateW(cut)
}

// cutPoint is where a suffix truncation cuts: segment index, position,
// and the state of the log just before it.
type cutPoint struct {
	seg       int
	pos       int64
	next      int64
	raftIndex uint64
	maxTs     int64
	maxTsOff  int64
}

// findCutW locates the first frame whose batch ends at or after offset and
// recomputes the segment state before it. Caller holds wlock.
func (l *Log) findCutW(offset int64) (cutPoint, error) {
	l.mu.Lock()
	i := l.findSegmentLocked(offset)
	s := l.segs[i]
	from := s.lookup(offset)
	var prev *segment
	if i > 0 {
		prev = l.segs[i-1]
	}
	l.mu.Unlock()
	var prevRaft uint64
	if prev != nil {
		var err error
		if prevRaft, err = l.lastRaftIndexOf(prev); err != nil {
			return cutPoint{}, err
		}
	}
	c := cutPoint{seg: i, pos: -1, next: s.base, raftIndex: prevRaft, maxTs: -1, maxTsOff: -1}
	// Recompute the segment's max timestamp and last Raft index below the cut
	// by walking from its start: bounded by one segment, and only on this rare path.
	_, err := walkFrames(s.f, 0, s.size, false, func(pos int64, h frameHeader, bi batchInfo) bool {
		if pos >= from && bi.lastOffset() >= offset {
			c.pos = pos
			return false
		}
		c.next, c.raftIndex = bi.lastOffset()+1, h.raftIndex
		if bi.maxTimestamp > c.maxTs {
			c.maxTs, c.maxTsOff = bi.maxTimestamp, bi.baseOffset
		}
		return true
	})
	if err != nil {
		return c, corruptAt(s, from, err)
	}
	if c.pos < 0 {
		panic(fmt.Sprintf("plog: no batch ends at or after %d in segment %s (next %d)", offset, s.path, s.next))
	}
	return c, nil
}

// truncateW applies a cut: checkpoint first, then remove later segments
// (newest first), then truncate and sync the cut segment.
func (l *Log) truncateW(c cutPoint) error {
	l.mu.Lock()
	s := l.segs[c.seg]
	doomed := append([]*segment(nil), l.segs[c.seg+1:]...)
	l.segs = l.segs[:c.seg+1]
	s.size, s.next, s.lastRaftIndex = c.pos, c.next, c.raftIndex
	s.maxTs, s.maxTsOffset = c.maxTs, c.maxTsOff
	s.truncateIndexes(c.pos, c.next)
	s.bytesSinceIndex = 0
	l.next = c.next
	if l.start > l.next {
		l.start = l.next
	}
	for len(l.epochs) > 0 && l.epochs[len(l.epochs)-1].start >= l.next {
		l.epochs = l.epochs[:len(l.epochs)-1]
	}
	l.written.next, l.written.raft = c.next, c.raftIndex
	l.durable.next, l.durable.raft = c.next, c.raftIndex
	l.gen++
	l.mu.Unlock()
	if err := l.writeCheckpointW(); err != nil {
		return err
	}
	for k := len(doomed) - 1; k >= 0; k-- {
		if err := l.removeSegments(doomed[k : k+1]); err != nil {
			l.fail(err)
			return fmt.Errorf("%w: %w", ErrLogFailed, err)
		}
	}
	if err := s.f.Truncate(c.pos); err != nil {
		l.fail(err)
		return fmt.Errorf("%w: %w", ErrLogFailed, err)
	}
	if err := s.f.Sync(); err != nil {
		l.fail(err)
		return fmt.Errorf("%w: %w", ErrLogFailed, err)
	}
	return nil
}
