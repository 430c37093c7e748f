package plog

import (
	"fmt"
	"path"
	"time"
)

// maybeRollW rolls the active segment if appending frameBytes would exceed
// the segment size limit or the segment is older than the age limit (the
// limits as SetSegmentLimits last set them). Caller holds wlock.
func (l *Log) maybeRollW(frameBytes int64) error {
	l.mu.Lock()
	seg := l.active()
	roll := seg.size > 0 && (seg.size+frameBytes > l.segmentBytesMax || l.clk.Since(seg.createdAt) >= l.segmentAgeMax)
	l.mu.Unlock()
	if !roll {
		return nil
	}
	return l.rollW()
}

// rollW seals the active segment and starts a new one at the log end.
// Order (crash safety): sync the segment; write its index files (tmp+rename);
// create the new segment; write the checkpoint. The existence of segment N+1
// therefore implies segment N is synced and indexed.
func (l *Log) rollW() error {
	if err := l.syncAllW(); err != nil {
		return err
	}
	l.mu.Lock()
	old := l.active()
	old.sealTimeIndex()
	idx, tidx := encodeIndex(old.index), encodeTimeIndex(old.tindex)
	base := l.next
	l.mu.Unlock()
	if err := l.writeIndexFilesW(old, idx, tidx); err != nil {
		return err
	}
	p := segmentPath(l.dir, base)
	f, err := l.fs.Create(p)
	if err != nil {
		return fmt.Errorf("plog: roll: %w", err)
	}
	seg := &segment{base: base, path: p, f: f, next: base, lastRaftIndex: old.lastRaftIndex, maxTs: -1, maxTsOffset: -1, createdAt: l.clk.Now()}
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
	l.logger.Debug("plog: rolled segment", "dir", l.dir, "sealed", old.path, "base", base)
	return l.writeCheckpointW()
}

// SetSegmentLimits changes the roll limits of the open log (Kafka
// segment.bytes and segment.ms altered live). Zero values take the defaults
// and the validation is Open's (ErrInvalidArgument). The next append's roll
// decision uses them; existing segments are not rewritten, so a segment
// sealed under the old limit keeps its size.
func (l *Log) SetSegmentLimits(segmentBytesMax int64, segmentAgeMax time.Duration) error {
	o := l.opts
	o.SegmentBytesMax, o.SegmentAgeMax = segmentBytesMax, segmentAgeMax
	if o.SegmentBytesMax == 0 {
		o.SegmentBytesMax = DefaultSegmentBytesMax
	}
	if o.SegmentAgeMax == 0 {
		o.SegmentAgeMax = DefaultSegmentAgeMax
	}
	if err := o.checkSegmentLimits(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.segmentBytesMax, l.segmentAgeMax = o.SegmentBytesMax, o.SegmentAgeMax
	return nil
}

// writeFileAtomic writes data to name via name.tmp, Sync and Rename.
func (l *Log) writeFileAtomic(name string, data []byte) error {
	tmp := name + tmpSuffix
	f, err := l.fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return l.fs.Rename(tmp, name)
}

func (l *Log) writeIndexFilesW(s *segment, idx, tidx []byte) error {
	if err := l.writeFileAtomic(s.indexPath(), idx); err != nil {
		return fmt.Errorf("plog: write index: %w", err)
	}
	if err := l.writeFileAtomic(s.timeIndexPath(), tidx); err != nil {
		return fmt.Errorf("plog: write time index: %w", err)
	}
	return nil
}

// writeCheckpointW syncs the log, writes the active segment's index files and
// then the checkpoint (each atomically). Caller holds wlock. The checkpoint
// only ever describes synced, verified data.
func (l *Log) writeCheckpointW() error {
	if err := l.syncAllW(); err != nil {
		return err
	}
	l.mu.Lock()
	c := l.checkpointLocked()
	act := l.active()
	idx, tidx := encodeIndex(act.index), encodeTimeIndex(act.tindex)
	l.mu.Unlock()
	if err := l.writeIndexFilesW(act, idx, tidx); err != nil {
		return err
	}
	if err := l.writeFileAtomic(path.Join(l.dir, checkpointName), encodeCheckpoint(c)); err != nil {
		return fmt.Errorf("plog: write checkpoint: %w", err)
	}
	l.mu.Lock()
	l.ckpt = c
	l.mu.Unlock()
	return nil
}

func (l *Log) checkpointLocked() checkpoint {
	act := l.active()
	return checkpoint{
		logStart: l.start, activeBase: act.base, verifiedPos: act.size,
		nextOffset: l.next, raftIndex: act.lastRaftIndex, maxTs: act.maxTs, maxTsOffset: act.maxTsOffset,
		indexEntries: uint32(len(act.index)), timeEntries: uint32(len(act.tindex)),
		epochs: append([]epochEntry(nil), l.epochs...),
	}
}
