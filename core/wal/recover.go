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
	w.openBuf = nil
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

// replaySegment verifies and applies one segment, batch by batch (see
// scanSegment); newest: torn tails are truncated instead of refused. The
// file is opened once (read-write for the newest) and kept as the
// segment's handle.
func (w *WAL) replaySegment(num uint64, newest bool) error {
	name := w.segPath(num)
	open := w.fs.Open
	if newest {
		open = w.fs.OpenRW
	}
	f, err := open(name)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	if err := w.replayFile(f, name, num, newest); err != nil {
		f.Close()
		return err
	}
	w.segs[num] = &segment{num: num, f: f, name: name}
	return nil
}

func (w *WAL) replayFile(f diskio.File, name string, num uint64, newest bool) error {
	end, size, scanErr, err := w.scanSegment(f, name, num)
	if err != nil {
		return fmt.Errorf("wal: open: %w", err)
	}
	if scanErr != nil {
		if !newest || !errors.Is(scanErr, errBadRecord) {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, scanErr)
		}
		later, err := w.validBatchIn(f, name, end+1, size)
		if err != nil {
			return fmt.Errorf("wal: open: %w", err)
		}
		if later >= 0 {
			return fmt.Errorf("%w: %s: %v, and a valid batch follows at offset %d", ErrCorrupt, name, scanErr, later)
		}
		if errors.Is(scanErr, errStale) {
			w.log.Info("WAL: cutting a reused segment's old bytes after its last batch",
				"segment", name, "offset", end, "dropped_bytes", size-end)
		} else {
			w.log.Warn("WAL: truncating a torn tail (a write cut by a crash, or a reused segment's old bytes; never acknowledged)",
				"segment", name, "offset", end, "dropped_bytes", size-end, "cause", scanErr)
		}
	}
	if !newest {
		return nil
	}
	// The newest segment: cut a torn tail, and fsync what a crash may have
	// left unsynced, before anything is written after it.
	if end < size {
		err = f.Truncate(end)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return fmt.Errorf("wal: open: %s: %w", name, err)
	}
	return nil
}

// scanSegment applies the batches of segment num (file f, named name) in
// order and returns where the valid ones end, the file's size and, when
// they end before it, why (scanErr): an error wrapping errBadRecord is a
// batch that does not verify (a torn tail if nothing valid follows) or an
// older one (errStale); others are corruption inside a verified batch.
// err is an I/O error. Each batch is read on its own into one buffer
// reused from batch to batch and segment to segment (nothing the replay
// keeps points into it): on these VMs memory costs 3-10 ms per MB the
// first time it is touched, and a fresh buffer per segment was most of a
// start's time.
func (w *WAL) scanSegment(f diskio.File, name string, num uint64) (end, size int64, scanErr, err error) {
	if size, err = f.Size(); err != nil {
		return 0, 0, nil, err
	}
	pos := int64(0)
	for pos < size {
		seq, body, n, bad, err := w.readBatch(f, name, pos, size)
		switch {
		case err != nil:
			return pos, size, nil, err
		case bad != nil:
			return pos, size, fmt.Errorf("batch at offset %d: %w", pos, bad), nil
		case seq < w.seq:
			// An older batch: a reused segment's old bytes (the newest
			// segment's end) or, in a sealed segment, corruption.
			return pos, size, fmt.Errorf("batch at offset %d: sequence %d after %d: %w", pos, seq, w.seq-1, errStale), nil
		case pos == 0 && (len(body) < recHeaderBytes || recType(body[8]) != recCheckpoint):
			return pos, size, fmt.Errorf("segment does not open with a checkpoint"), nil
		}
		if err := applyBody(w.st, body, num, pos+batchHeaderBytes, true); err != nil {
			return pos, size, fmt.Errorf("batch at offset %d: %s", pos, err.Error()), nil
		}
		w.seq = seq + 1
		pos += n
	}
	return pos, size, nil, nil
}

// readBatch reads the batch at pos of f (size bytes long) into w.openBuf
// and verifies it (framing, CRC). One that fails is read again, up to
// ReadRetries times, before the failure is believed (bad, wrapping
// errBadRecord): a flip on the way from the disk (bus, memory, a
// controller) is not the data on the disk, and taken as a torn tail it
// would drop records this node acknowledged. body is valid until the next
// read; err is an I/O error.
func (w *WAL) readBatch(f diskio.File, name string, pos, size int64) (seq uint64, body []byte, n int64, bad, err error) {
	for attempt := 0; ; attempt++ {
		total := int64(batchHeaderBytes)
		if size-pos < total {
			// A short header is the file's end, not a read: no re-read.
			return 0, nil, 0, fmt.Errorf("%w: %d bytes, short batch header", errBadRecord, size-pos), nil
		}
		w.openBuf = growDiscard(w.openBuf, batchHeaderBytes)
		if err := readAtFull(f, w.openBuf, pos); err != nil {
			return 0, nil, 0, nil, fmt.Errorf("read %s at offset %d: %w", name, pos, err)
		}
		if binary.LittleEndian.Uint32(w.openBuf) == batchMagic {
			total += int64(binary.LittleEndian.Uint32(w.openBuf[8:]))
		}
		if total <= size-pos {
			w.openBuf = growDiscard(w.openBuf, int(total))
			if err := readAtFull(f, w.openBuf, pos); err != nil {
				return 0, nil, 0, nil, fmt.Errorf("read %s at offset %d: %w", name, pos, err)
			}
		}
		// parseBatch refuses a bad magic or a length past the file's end
		// (what was read is then the header alone).
		var nn int
		seq, body, nn, bad = parseBatch(w.openBuf)
		if bad == nil {
			if attempt > 0 {
				w.log.Warn("WAL: a batch read failed verification and a re-read passed (transient read corruption)",
					"segment", name, "offset", pos, "reads", attempt+1)
			}
			return seq, body, int64(nn), nil, nil
		}
		if attempt == ReadRetries {
			return 0, nil, 0, bad, nil
		}
	}
}

// growDiscard returns buf resized to n bytes, its contents undefined. A
// larger buffer is allocated fresh, not grown: growing (append,
// slices.Grow) copies the old contents and zeroes what it adds, and on
// these VMs memory costs 3-10 ms per MB the first time it is touched,
// so growing the buffer to a 16 MiB batch touched about three times that
// (measured: 290 of a 393 ms open of a 200 MB WAL in growslice's
// memmove and memclr). Go hands out a large allocation of pages fresh
// from the OS without clearing them, so the read into it is the only
// touch.
func growDiscard(buf []byte, n int) []byte {
	if cap(buf) >= n {
		return buf[:n]
	}
	return make([]byte, n, max(n, 2*cap(buf)))
}

// readAtFull reads len(buf) bytes at off.
func readAtFull(f diskio.File, buf []byte, off int64) error {
	if n, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return err
	}
	return nil
}

// validBatchIn returns the offset of the first batch of file f, between
// from and size, that verifies and is not older than the last one applied
// (validBatchAfter), or -1. It reads that part of the file whole: only a
// newest segment that ends in a bad batch gets here.
func (w *WAL) validBatchIn(f diskio.File, name string, from, size int64) (int64, error) {
	if from >= size {
		return -1, nil
	}
	rest := make([]byte, size-from)
	if err := readAtFull(f, rest, from); err != nil {
		return 0, fmt.Errorf("read %s at offset %d: %w", name, from, err)
	}
	if later := validBatchAfter(rest, 0, w.seq); later >= 0 {
		return from + later, nil
	}
	return -1, nil
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
