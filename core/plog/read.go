package plog

import (
	"errors"
	"fmt"
	"sync"
)

// Read returns whole batches, concatenated as Kafka sends them in a fetch,
// starting with the batch that contains offset, up to maxBytes (but always
// the first batch, whatever its size) and only batches whose last offset is
// below upperOffset (the caller's high watermark). offset == the log end (or
// >= upperOffset) returns no data. Every returned batch has passed its frame
// and CRC-32C checks; a failed check is ErrCorruptLog.
func (l *Log) Read(offset int64, maxBytes int, upperOffset int64) ([]byte, error) {
	maxBytes = min(max(maxBytes, 0), ReadBytesLimit)
	var lastErr error
	for range readAttemptsMax {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, ErrClosed
		}
		if offset < l.start || offset > l.next {
			start, next := l.start, l.next
			l.mu.Unlock()
			return nil, fmt.Errorf("%w: offset %d, log [%d, %d)", ErrOffsetOutOfRange, offset, start, next)
		}
		upper := min(upperOffset, l.next)
		gen := l.gen
		i := l.findSegmentLocked(offset)
		segs := append([]*segment(nil), l.segs[i:]...)
		sizes := make([]int64, len(segs))
		for j, s := range segs {
			sizes[j] = s.size
		}
		pos := segs[0].lookup(offset)
		l.mu.Unlock()
		if offset >= upper {
			return nil, nil
		}
		out, err := readSegments(segs, sizes, pos, offset, maxBytes, upper)
		l.mu.Lock()
		changed := l.gen != gen
		l.mu.Unlock()
		if !changed {
			return out, err
		}
		lastErr = err // a truncation or deletion raced the read: retry on the new state
	}
	return nil, fmt.Errorf("plog: read raced with truncation %d times: %w", readAttemptsMax, lastErr)
}

// readBufPool recycles read chunks (readChunkBytesMax each) across Reads.
var readBufPool = sync.Pool{New: func() any { b := make([]byte, readChunkBytesMax); return &b }}

func readSegments(segs []*segment, sizes []int64, pos, offset int64, maxBytes int, upper int64) ([]byte, error) {
	avail := sizes[0] - pos
	for _, n := range sizes[1:] {
		avail += n
	}
	out := make([]byte, 0, min(int64(maxBytes), avail))
	for j, s := range segs {
		var done bool
		var err error
		out, done, err = readSegment(s, sizes[j], pos, offset, maxBytes, upper, out)
		if err != nil || done {
			return out, err
		}
		pos = 0
	}
	return out, nil
}

// readSegment appends to out the batches of s from pos on that end at or after
// offset, within the limits; done reports that a limit was reached.
func readSegment(s *segment, size, pos, offset int64, maxBytes int, upper int64, out []byte) ([]byte, bool, error) {
	pooled := readBufPool.Get().(*[]byte)
	defer readBufPool.Put(pooled)
	buf := *pooled
	for pos < size {
		want := min(max(int64(maxBytes-len(out))+FrameHeaderBytes, readChunkBytesMin), readChunkBytesMax)
		n := min(want, size-pos)
		buf = growBuf(buf, int(n))
		if err := readFull(s.f, buf, pos); err != nil {
			return out, true, fmt.Errorf("plog: read %s at %d: %w", s.path, pos, err)
		}
		r := 0
		for r < len(buf) {
			if len(buf)-r < headerScanBytesMax {
				if r == 0 {
					return out, true, corruptAt(s, pos, errors.New("frame header past segment end"))
				}
				break
			}
			h, err := parseFrame(buf[r:])
			if err != nil {
				return out, true, corruptAt(s, pos+int64(r), err)
			}
			fb := int(h.frameBytes())
			if r+fb > len(buf) {
				if r == 0 {
					if pos+int64(fb) > size {
						return out, true, corruptAt(s, pos, errors.New("frame past segment end"))
					}
					buf = growBuf(buf, fb)
					if err := readFull(s.f, buf, pos); err != nil {
						return out, true, fmt.Errorf("plog: read %s at %d: %w", s.path, pos, err)
					}
					continue
				}
				break
			}
			batch := buf[r+FrameHeaderBytes : r+fb]
			bi := decodeBatchHeader(batch)
			if bi.lastOffset() >= offset {
				if bi.lastOffset() >= upper {
					return out, true, nil
				}
				if len(out) > 0 && len(out)+len(batch) > maxBytes {
					return out, true, nil
				}
				if !batchCRCValid(batch) {
					return out, true, corruptAt(s, pos+int64(r), errors.New("batch CRC-32C mismatch"))
				}
				out = append(out, batch...)
			}
			r += fb
		}
		pos += int64(r)
	}
	return out, false, nil
}

func corruptAt(s *segment, pos int64, err error) error {
	return fmt.Errorf("%w: segment %s position %d: %w", ErrCorruptLog, s.path, pos, err)
}

// Leader-epoch answers for an unknown epoch, as Kafka.
const (
	UndefinedEpoch  int32 = -1
	UndefinedOffset int64 = -1
)

// OffsetForLeaderEpoch answers KIP-101/320 OffsetForLeaderEpoch: the largest
// epoch <= requested and the start offset of the next higher epoch (or the log
// end if requested is the latest). A requested epoch below every known one
// answers (requested, first epoch's start); above every one, or an empty
// cache, answers (UndefinedEpoch, UndefinedOffset). Same as Kafka's
// LeaderEpochFileCache.endOffsetFor.
func (l *Log) OffsetForLeaderEpoch(requested int32) (int32, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	es := l.epochs
	if requested == UndefinedEpoch || len(es) == 0 {
		return UndefinedEpoch, UndefinedOffset
	}
	if es[len(es)-1].epoch == requested {
		return requested, l.next
	}
	// hi: first entry with epoch > requested.
	hi := 0
	for hi < len(es) && es[hi].epoch <= requested {
		hi++
	}
	if hi == len(es) {
		return UndefinedEpoch, UndefinedOffset
	}
	if hi == 0 {
		return requested, es[0].start
	}
	return es[hi-1].epoch, es[hi].start
}

// OffsetForTimestamp returns the base offset of the first batch (at or after
// the log start) whose maxTimestamp is >= tsMs, found through the time index.
// Records are not decoded, so the answer is at batch granularity: the batch
// holding the first record with timestamp >= tsMs. found is false if no batch
// qualifies.
func (l *Log) OffsetForTimestamp(tsMs int64) (offset int64, found bool, err error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, false, ErrClosed
	}
	type probe struct {
		s         *segment
		pos, size int64
	}
	var probes []probe
	for _, c := range l.segs {
		if c.maxTs < tsMs || c.next <= l.start {
			continue
		}
		var pos int64
		for _, e := range c.tindex {
			if e.ts >= tsMs {
				break
			}
			pos = c.lookup(c.base + int64(e.rel))
		}
		probes = append(probes, probe{c, pos, c.size})
	}
	start := l.start
	l.mu.Unlock()
	// Usually the first candidate answers; later ones matter only when the
	// qualifying batches of a segment lie below the log start.
	for _, p := range probes {
		_, werr := walkFrames(p.s.f, p.pos, p.size, false, func(_ int64, _ frameHeader, bi batchInfo) bool {
			if bi.maxTimestamp >= tsMs && bi.lastOffset() >= start {
				offset, found = max(bi.baseOffset, start), true
				return false
			}
			return true
		})
		if werr != nil {
			return 0, false, corruptAt(p.s, p.pos, werr)
		}
		if found {
			return offset, true, nil
		}
	}
	return 0, false, nil
}
