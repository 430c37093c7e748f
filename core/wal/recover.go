package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/chronik-go/chronik/diskio"
)

const (
	// DirName is the WAL's directory under the dir given to Open.
	DirName = "wal"
	// markerName is the format marker file; its content is formatMarker.
	markerName   = "FORMAT"
	formatMarker = "chronik-wal 1\n"
	segSuffix    = ".wal"
	freeSuffix   = ".free"
	tmpSuffix    = ".tmp"
)

// Open opens (creating if needed) the WAL in dir/wal and recovers it:
//
//  1. The format marker is checked (written if the directory is new;
//     segments without it, or another marker, are ErrFormat).
//  2. Segments are replayed oldest first: each batch's CRC is verified,
//     then each record's, and the records rebuild the in-memory state.
//     Segment numbers must be consecutive and batch sequence numbers
//     increasing.
//  3. In the newest segment, a bad batch with no valid batch after it is a
//     torn write (never acknowledged): it is truncated, durably, and
//     logged; so is a valid batch older than the one before it (a reused
//     segment's old bytes, see doc.go). A bad batch followed by a valid
//     one not older than the last good one, a bad or old batch in an
//     older segment, or a valid batch whose records do not verify or
//     apply, is ErrCorrupt naming the file and offset: Open refuses.
//     Dead segments kept for reuse (NNNN.free) are not read.
//  4. The newest segment is fsynced (a clean close leaves nothing
//     unsynced, but a crash may have), a new segment is started with a
//     checkpoint, and dead segments are deleted.
func Open(fs diskio.FS, dir string, opts Options) (*WAL, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &WAL{fs: fs, dir: path.Join(dir, DirName), opts: o, log: o.Logger.With("component", "wal"),
		reqs: make(chan *request, queueLen), stop: make(chan struct{}), done: make(chan struct{}),
		unlinkQ: make(chan string, unlinkQueueLen), unlinked: make(chan struct{}),
		st: newMemState(), segs: map[uint64]*segment{}, seq: 1}
	go w.unlinker()
	if err := w.recover(); err != nil {
		close(w.unlinkQ)
		<-w.unlinked
		for _, s := range w.segs {
			s.f.Close()
		}
		return nil, err
	}
	go w.commitLoop()
	return w, nil
}

func (w *WAL) recover() error {
	if err := w.fs.MkdirAll(w.dir); err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	nums, err := w.listSegments()
	if err != nil {
		return err
	}
	if err := w.checkMarker(len(nums) > 0); err != nil {
		return err
	}
	for i, num := range nums {
		if i > 0 && num != nums[i-1]+1 {
			return fmt.Errorf("%w: segment %s missing (found %s and %s)", ErrCorrupt,
				segmentName(nums[i-1]+1), segmentName(nums[i-1]), segmentName(num))
		}
		if err := w.replaySegment(num, i == len(nums)-1); err != nil {
			return err
		}
	}
	next := uint64(1)
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	if err := w.startSegment(next); err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	if err := w.writeBatch(appendCheckpoint(make([]byte, batchHeaderBytes), w.st), true); err != nil {
		return fmt.Errorf("wal: open: write the checkpoint: %w", err)
	}
	w.deleteDead()
	if w.failed != nil {
		return w.failed
	}
	return nil
}

// listSegments returns the segment numbers found, sorted, after removing
// leftover temporary files.
func (w *WAL) listSegments() ([]uint64, error) {
	names, err := w.fs.List(w.dir)
	if err != nil {
		return nil, fmt.Errorf("wal: open: %w", err)
	}
	var nums []uint64
	for _, name := range names {
		if strings.HasSuffix(name, tmpSuffix) {
			if err := w.fs.Remove(path.Join(w.dir, name)); err != nil {
				return nil, fmt.Errorf("wal: open: %w", err)
			}
			continue
		}
		if stem, ok := strings.CutSuffix(name, freeSuffix); ok {
			num, err := strconv.ParseUint(stem, 16, 64)
			if err != nil || len(stem) != 16 {
				return nil, fmt.Errorf("%w: unexpected file %s in %s", ErrFormat, name, w.dir)
			}
			w.free = append(w.free, num)
			continue
		}
		stem, ok := strings.CutSuffix(name, segSuffix)
		if !ok {
			continue
		}
		num, err := strconv.ParseUint(stem, 16, 64)
		if err != nil || len(stem) != 16 || num == 0 {
			return nil, fmt.Errorf("%w: unexpected file %s in %s", ErrFormat, name, w.dir)
		}
		nums = append(nums, num)
	}
	slices.Sort(nums)
	slices.Sort(w.free)
	// Fewer kept for reuse than found (a smaller RecycleSegments): the
	// newest are removed.
	for len(w.free) > w.opts.RecycleSegments {
		last := w.free[len(w.free)-1]
		if err := w.fs.Remove(path.Join(w.dir, freeName(last))); err != nil {
			return nil, fmt.Errorf("wal: open: %w", err)
		}
		w.free = w.free[:len(w.free)-1]
	}
	return nums, nil
}

// checkMarker verifies the format marker, writing it (through a temporary
// file and a rename) if the WAL is new.
func (w *WAL) checkMarker(haveSegments bool) error {
	name := path.Join(w.dir, markerName)
	data, err := readFile(w.fs, name)
	switch {
	case err == nil:
		if string(data) != formatMarker {
			return fmt.Errorf("%w: %s holds %q, this version reads %q", ErrFormat, name, data, formatMarker)
		}
		return nil
	case !errors.Is(err, diskio.ErrNotExist):
		return fmt.Errorf("wal: open: %w", err)
	case haveSegments:
		return fmt.Errorf("%w: segments in %s but no %s marker", ErrFormat, w.dir, markerName)
	}
	tmp := name + tmpSuffix
	f, err := w.fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	_, err = f.WriteAt([]byte(formatMarker), 0)
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close())
	if err == nil {
		err = w.fs.Rename(tmp, name)
	}
	if err != nil {
		return fmt.Errorf("wal: open: write %s: %w", name, err)
	}
	return nil
}

func readFile(fs diskio.FS, name string) ([]byte, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if n, err := f.ReadAt(data, 0); err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		return nil, err
	}
	return data, nil
}

// replaySegment verifies and applies one segment; newest: torn tails are
// truncated instead of refused.
func (w *WAL) replaySegment(num uint64, newest bool) error {
	name := w.segPath(num)
	data, verified, err := w.readSegment(name)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	end, scanErr := w.scan(data, verified, num)
	if scanErr != nil {
		if !newest || !errors.Is(scanErr, errBadRecord) {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, scanErr)
		}
		if later := validBatchAfter(data, end+1, w.seq); later >= 0 {
			return fmt.Errorf("%w: %s: %v, and a valid batch follows at offset %d", ErrCorrupt, name, scanErr, later)
		}
		if errors.Is(scanErr, errStale) {
			w.log.Info("WAL: cutting a reused segment's old bytes after its last batch",
				"segment", name, "offset", end, "dropped_bytes", int64(len(data))-end)
		} else {
			w.log.Warn("WAL: truncating a torn tail (a write cut by a crash, or a reused segment's old bytes; never acknowledged)",
				"segment", name, "offset", end, "dropped_bytes", int64(len(data))-end, "cause", scanErr)
		}
	}
	if !newest {
		return w.openSealed(num, name)
	}
	// The newest segment: cut a torn tail, and fsync what a crash may have
	// left unsynced, before anything is written after it.
	f, err := w.fs.OpenRW(name)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	if end < int64(len(data)) {
		err = f.Truncate(end)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("wal: open: %s: %w", name, err)
	}
	w.segs[num] = &segment{num: num, f: f, name: name}
	return nil
}

func (w *WAL) openSealed(num uint64, name string) error {
	f, err := w.fs.Open(name)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	w.segs[num] = &segment{num: num, f: f, name: name}
	return nil
}

// readSegment reads a whole segment. If a batch fails verification, the
// file is read again (up to ReadRetries times) before the failure is
// believed: a flip on the way from the disk (bus, memory, a controller)
// is not the data on the disk, and taken as a torn tail it would drop
// records this node acknowledged. The first read in which every batch
// verifies is used, else the one that verified furthest; it also returns
// where the verified batches end.
func (w *WAL) readSegment(name string) ([]byte, int64, error) {
	var best []byte
	bestEnd := int64(-1)
	for attempt := 0; ; attempt++ {
		data, err := readFile(w.fs, name)
		if err != nil {
			return nil, 0, err
		}
		end := verifiedEnd(data)
		if end == int64(len(data)) {
			if attempt > 0 {
				w.log.Warn("WAL: a segment read failed verification and a re-read passed (transient read corruption)",
					"segment", name, "reads", attempt+1)
			}
			return data, end, nil
		}
		if end > bestEnd {
			best, bestEnd = data, end
		}
		if attempt == ReadRetries {
			return best, bestEnd, nil
		}
	}
}

// verifiedEnd returns where the batches of data that verify, one after
// the other from the start, end.
func verifiedEnd(data []byte) int64 {
	pos := 0
	for pos < len(data) {
		_, _, n, err := parseBatch(data[pos:])
		if err != nil {
			break
		}
		pos += n
	}
	return int64(pos)
}

// scan applies the batches of data (segment num) and returns where the
// valid batches end. An error wrapping errBadRecord at end is a batch that
// does not verify (a torn tail if nothing valid follows); other errors are
// corruption inside a verified batch.
func (w *WAL) scan(data []byte, verified int64, num uint64) (int64, error) {
	pos := 0
	for pos < len(data) {
		// Batches below verified passed their CRC in readSegment.
		seq, body, n, err := parseBatchCRC(data[pos:], int64(pos) >= verified)
		if err != nil {
			return int64(pos), fmt.Errorf("batch at offset %d: %w", pos, err)
		}
		if seq < w.seq {
			// An older batch: a reused segment's old bytes (the newest
			// segment's end) or, in a sealed segment, corruption.
			return int64(pos), fmt.Errorf("batch at offset %d: sequence %d after %d: %w", pos, seq, w.seq-1, errStale)
		}
		if pos == 0 && (len(body) < recHeaderBytes || recType(body[8]) != recCheckpoint) {
			return int64(pos), fmt.Errorf("segment does not open with a checkpoint")
		}
		if err := applyBody(w.st, body, num, int64(pos+batchHeaderBytes), true); err != nil {
			return int64(pos), fmt.Errorf("batch at offset %d: %s", pos, err.Error())
		}
		w.seq = seq + 1
		pos += n
	}
	return int64(pos), nil
}

// validBatchAfter returns the offset of the first batch at or after from
// that verifies and is not older than sequence minSeq (older ones are a
// reused segment's old bytes), or -1.
func validBatchAfter(data []byte, from int64, minSeq uint64) int64 {
	var magic [4]byte
	binary.LittleEndian.PutUint32(magic[:], batchMagic)
	for i := from; i+batchHeaderBytes <= int64(len(data)); i++ {
		j := bytes.Index(data[i:], magic[:])
		if j < 0 {
			return -1
		}
		i += int64(j)
		if seq, _, _, err := parseBatch(data[i:]); err == nil && seq >= minSeq {
			return i
		}
	}
	return -1
}
