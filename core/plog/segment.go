package plog

import (
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"time"

	"github.com/chronik-go/chronik/diskio"
)

// segment is one .log file with its in-memory indexes.
//
// Fields below f are written only under Log.wlock and Log.mu together, and
// read under either.
type segment struct {
	base int64  // offset of the first batch; the file name
	path string // dir/<base>.log
	f    diskio.File

	size            int64 // bytes of complete frames. Invariant: size < 2^32
	next            int64 // offset after the last batch. Invariant: base <= next
	lastRaftIndex   uint64
	index           []indexEntry // Invariant: rel and pos strictly increasing, pos < size
	tindex          []timeEntry  // Invariant: ts strictly increasing, rel non-decreasing
	maxTs           int64        // largest batch maxTimestamp, -1 if none
	maxTsOffset     int64        // base offset of the batch with maxTs, -1 if none
	bytesSinceIndex int64
	createdAt       time.Time // clock time at creation or open (for SegmentAgeMax)
	// writebackFrom is where the bytes not yet handed to StartWriteback
	// begin (writer-owned, see Options.WritebackBytes).
	writebackFrom int64
}

func (s *segment) indexPath() string     { return trimLog(s.path) + indexSuffix }
func (s *segment) timeIndexPath() string { return trimLog(s.path) + timeIndexSuffix }

func trimLog(p string) string { return p[:len(p)-len(segmentSuffix)] }

func segmentPath(dir string, base int64) string {
	return path.Join(dir, segmentName(base)+segmentSuffix)
}

// addBatch records a batch appended at pos in the in-memory indexes.
func (s *segment) addBatch(pos int64, bi batchInfo, raftIndex uint64, frameBytes, intervalBytes int64) {
	if s.bytesSinceIndex >= intervalBytes && pos > 0 {
		rel := uint32(bi.baseOffset - s.base)
		s.index = append(s.index, indexEntry{rel: rel, pos: uint32(pos)})
		if s.maxTs >= 0 && (len(s.tindex) == 0 || s.maxTs > s.tindex[len(s.tindex)-1].ts) {
			s.tindex = append(s.tindex, timeEntry{ts: s.maxTs, rel: rel})
		}
		s.bytesSinceIndex = 0
	}
	s.bytesSinceIndex += frameBytes
	if bi.maxTimestamp > s.maxTs {
		s.maxTs, s.maxTsOffset = bi.maxTimestamp, bi.baseOffset
	}
	s.size = pos + frameBytes
	s.next = bi.lastOffset() + 1
	s.lastRaftIndex = raftIndex
}

// sealTimeIndex adds the final time-index entry covering the whole segment.
func (s *segment) sealTimeIndex() {
	if s.maxTs >= 0 && (len(s.tindex) == 0 || s.maxTs > s.tindex[len(s.tindex)-1].ts) {
		s.tindex = append(s.tindex, timeEntry{ts: s.maxTs, rel: uint32(s.next - s.base)})
	}
}

// lookup returns the position of the last indexed batch at or before offset.
func (s *segment) lookup(offset int64) int64 {
	rel := offset - s.base
	i := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].rel) > rel })
	if i == 0 {
		return 0
	}
	return int64(s.index[i-1].pos)
}

// truncateIndexes drops index entries at or beyond pos / offset next.
func (s *segment) truncateIndexes(pos, next int64) {
	i := sort.Search(len(s.index), func(i int) bool { return int64(s.index[i].pos) >= pos })
	s.index = s.index[:i]
	rel := next - s.base
	j := sort.Search(len(s.tindex), func(j int) bool { return int64(s.tindex[j].rel) > rel })
	s.tindex = s.tindex[:j]
}

// readFull reads len(p) bytes at off or fails (io.ErrUnexpectedEOF if short).
func readFull(f diskio.File, p []byte, off int64) error {
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: read %d of %d bytes at %d", io.ErrUnexpectedEOF, n, len(p), off)
	}
	return err
}

// frameAt reads and checks the frame header and batch header at pos.
func frameAt(f diskio.File, pos, size int64) (frameHeader, batchInfo, error) {
	var buf [headerScanBytesMax]byte
	if size-pos < headerScanBytesMax {
		return frameHeader{}, batchInfo{}, fmt.Errorf("%w: %d bytes left at %d", errBadFrame, size-pos, pos)
	}
	if err := readFull(f, buf[:], pos); err != nil {
		return frameHeader{}, batchInfo{}, err
	}
	h, err := parseFrame(buf[:])
	if err != nil {
		return h, batchInfo{}, err
	}
	if pos+h.frameBytes() > size {
		return h, batchInfo{}, fmt.Errorf("%w: frame of %d bytes at %d past end %d", errBadFrame, h.frameBytes(), pos, size)
	}
	bi := decodeBatchHeader(buf[FrameHeaderBytes:])
	bi.size = int(h.batchLen)
	return h, bi, nil
}

// walkFrames calls fn for every frame in [from, to) of f, reading in chunks.
// With verify, each batch's CRC is checked. It stops at the first bad frame
// and returns its position with the error; fn returning false stops the walk.
func walkFrames(f diskio.File, from, to int64, verify bool, fn func(pos int64, h frameHeader, bi batchInfo) bool) (int64, error) {
	const chunkBytes = 1 << 20
	var buf []byte
	bufPos := int64(-1)
	pos := from
	for pos < to {
		// Ensure buf holds the frame header at pos.
		need := int64(headerScanBytesMax)
		if to-pos < need {
			return pos, fmt.Errorf("%w: %d trailing bytes", errBadFrame, to-pos)
		}
		if bufPos < 0 || pos < bufPos || pos+need > bufPos+int64(len(buf)) {
			n := min(max(chunkBytes, need), to-pos)
			buf = growBuf(buf, int(n))
			if err := readFull(f, buf, pos); err != nil {
				return pos, err
			}
			bufPos = pos
		}
		h, err := parseFrame(buf[pos-bufPos:])
		if err != nil {
			return pos, err
		}
		end := pos + h.frameBytes()
		if end > to {
			return pos, fmt.Errorf("%w: frame of %d bytes at %d past end %d", errBadFrame, h.frameBytes(), pos, to)
		}
		if verify && end > bufPos+int64(len(buf)) {
			buf = growBuf(buf, int(max(chunkBytes, end-pos)))
			buf = buf[:min(int64(cap(buf)), to-pos)]
			if err := readFull(f, buf, pos); err != nil {
				return pos, err
			}
			bufPos = pos
		}
		batch := buf[pos-bufPos+FrameHeaderBytes:]
		bi := decodeBatchHeader(batch)
		bi.size = int(h.batchLen)
		if verify && !batchCRCValid(batch[:bi.size]) {
			return pos, fmt.Errorf("%w: batch CRC mismatch", errBadFrame)
		}
		if !fn(pos, h, bi) {
			return pos, nil
		}
		pos = end
	}
	return pos, nil
}

func growBuf(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}
