package plog

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/pingcap/failpoint"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/diskio"
)

// Ticket identifies a completed write for WaitDurable. Tickets increase with
// every Append of one open Log.
type Ticket uint64

// AppendResult reports the offsets assigned to an Append.
type AppendResult struct {
	BaseOffset int64 // offset of the first record of the first batch
	LastOffset int64 // offset of the last record of the last batch
	Ticket     Ticket
}

// point is a position in the write stream: everything written by Append
// number seq, with the log then ending at next and the last Raft index raft.
type point struct {
	seq  uint64
	next int64
	raft uint64
}

// Log is one partition's log. See doc.go for the concurrency contract.
type Log struct {
	opts   Options
	fs     diskio.FS
	dir    string
	clk    clock.Clock
	logger *slog.Logger

	// wlock serialises writers (Append, roll, truncation, deletion,
	// retention, Close). It is a channel, not a sync.Mutex, so that a
	// goroutine waiting for it is durably blocked under testing/synctest
	// while the holder does I/O.
	wlock chan struct{}

	mu sync.Mutex // guards the fields below; never held across I/O or waits
	// segs is sorted by base; the last is the active segment.
	// Invariant: len(segs) >= 1 while open; segs[i].next == segs[i+1].base.
	segs     []*segment
	start    int64        // log start offset. Invariant: segs[0].base <= start <= next
	next     int64        // log end offset (next offset to assign)
	epochs   []epochEntry // Invariant: epoch and start strictly increasing, start < next
	gen      uint64       // bumped by every truncation or segment deletion (Read retries)
	closed   bool
	written  point // last completed write
	durable  point // last write covered by a successful fsync. Invariant: durable.seq <= written.seq
	syncing  bool  // a group-commit fsync is in flight
	syncDone chan struct{}
	failErr  error // first fsync (or unrecoverable write) error; the log is failed once set
	ckpt     checkpoint
	// Segment roll limits: opts' values until SetSegmentLimits changes them
	// (a topic's segment.bytes / segment.ms altered while the log is open).
	segmentBytesMax int64
	segmentAgeMax   time.Duration
}

func (l *Log) lockW()   { l.wlock <- struct{}{} }
func (l *Log) unlockW() { <-l.wlock }

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// StartOffset is the log start offset (first readable offset).
func (l *Log) StartOffset() int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.start }

// NextOffset is the log end offset: the offset the next record will get.
func (l *Log) NextOffset() int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.next }

// DurableNextOffset is the log end offset as of the last successful fsync.
func (l *Log) DurableNextOffset() int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.durable.next }

// LastDurableRaftIndex is the Raft index carried by the last durable batch
// (0 if none). After Open it is the last Raft index found on disk.
func (l *Log) LastDurableRaftIndex() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable.raft
}

func (l *Log) checkUsableLocked() error {
	if l.closed {
		return ErrClosed
	}
	if l.failErr != nil {
		return fmt.Errorf("%w: %w", ErrLogFailed, l.failErr)
	}
	return nil
}

// Append validates batches (one or more concatenated v2 record batches),
// assigns them offsets from NextOffset, stamps each with baseOffset and
// leaderEpoch, and writes them tagged with raftIndex. Nothing is written
// unless every batch is valid. The data is readable at once but durable only
// after WaitDurable(result.Ticket) returns nil. raftIndex and leaderEpoch
// must not decrease.
func (l *Log) Append(batches []byte, raftIndex uint64, leaderEpoch int32) (AppendResult, error) {
	return l.append(batches, raftIndex, leaderEpoch, true)
}

// AppendCRCChecked is Append for batches whose CRC-32C the caller has just
// verified (ValidateBatches on these very bytes): everything else is
// checked again (framing, sizes, magic, counts), the CRC, which costs a
// pass over every byte, is not.
func (l *Log) AppendCRCChecked(batches []byte, raftIndex uint64, leaderEpoch int32) (AppendResult, error) {
	return l.append(batches, raftIndex, leaderEpoch, false)
}

func (l *Log) append(batches []byte, raftIndex uint64, leaderEpoch int32, checkCRC bool) (AppendResult, error) {
	n, err := validateBatches(batches, l.opts.BatchBytesMax, checkCRC)
	if err != nil {
		return AppendResult{}, err
	}
	if leaderEpoch < 0 {
		return AppendResult{}, fmt.Errorf("%w: leader epoch %d", ErrInvalidArgument, leaderEpoch)
	}
	l.lockW()
	defer l.unlockW()
	l.mu.Lock()
	err = l.checkUsableLocked()
	lastRaft, lastEpoch := l.written.raft, int32(-1)
	if len(l.epochs) > 0 {
		lastEpoch = l.epochs[len(l.epochs)-1].epoch
	}
	l.mu.Unlock()
	switch {
	case err != nil:
		return AppendResult{}, err
	case raftIndex < lastRaft:
		return AppendResult{}, fmt.Errorf("%w: raft index %d < last %d", ErrInvalidArgument, raftIndex, lastRaft)
	case leaderEpoch < lastEpoch:
		return AppendResult{}, fmt.Errorf("%w: leader epoch %d < last %d", ErrInvalidArgument, leaderEpoch, lastEpoch)
	}
	frameBytes := int64(len(batches) + n*FrameHeaderBytes)
	if err := l.maybeRollW(frameBytes); err != nil {
		return AppendResult{}, err
	}
	return l.writeW(batches, n, frameBytes, raftIndex, leaderEpoch)
}

// writeW frames and writes validated batches. Caller holds wlock.
func (l *Log) writeW(batches []byte, n int, frameBytes int64, raftIndex uint64, leaderEpoch int32) (AppendResult, error) {
	l.mu.Lock()
	seg, base := l.active(), l.next
	l.mu.Unlock()
	buf := getFrameBuf(int(frameBytes))
	defer putFrameBuf(buf)
	infos := make([]batchInfo, 0, n)
	next, w := base, 0
	for r := 0; r < len(batches); {
		bi, _ := parseBatchHeader(batches[r:])
		b := buf[w+FrameHeaderBytes : w+FrameHeaderBytes+bi.size]
		copy(b, batches[r:r+bi.size])
		binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(next))
		binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(leaderEpoch))
		putFrameHeader(buf[w:], frameHeader{batchLen: uint32(bi.size), raftIndex: raftIndex, writeOffset: uint32(w)}, b)
		bi.baseOffset, bi.leaderEpoch = next, leaderEpoch
		infos = append(infos, bi)
		next = bi.lastOffset() + 1
		r += bi.size
		w += FrameHeaderBytes + bi.size
	}
	if w != len(buf) {
		panic(fmt.Sprintf("plog: framed %d bytes of a %d-byte frame buffer (%d batches)", w, len(buf), n))
	}
	var err error
	failpoint.Inject("writeError", func() { err = errFailpoint })
	if err == nil {
		_, err = seg.f.WriteAt(buf, seg.size)
	}
	if err != nil {
		return AppendResult{}, l.undoWriteW(seg, err)
	}
	l.startWritebackW(seg, seg.size+int64(len(buf)))
	l.mu.Lock()
	defer l.mu.Unlock()
	pos := seg.size
	for _, bi := range infos {
		seg.addBatch(pos, bi, raftIndex, int64(FrameHeaderBytes+bi.size), l.opts.IndexIntervalBytes)
		pos += int64(FrameHeaderBytes + bi.size)
	}
	if len(l.epochs) == 0 || leaderEpoch > l.epochs[len(l.epochs)-1].epoch {
		l.epochs = append(l.epochs, epochEntry{epoch: leaderEpoch, start: base})
		if len(l.epochs) > EpochEntriesMax {
			l.epochs = l.epochs[len(l.epochs)-EpochEntriesMax:]
		}
	}
	l.next = next
	l.written = point{seq: l.written.seq + 1, next: next, raft: raftIndex}
	return AppendResult{BaseOffset: base, LastOffset: next - 1, Ticket: Ticket(l.written.seq)}, nil
}

// startWritebackW starts the write-out of seg's bytes up to end once
// Options.WritebackBytes of them accumulated since the last hint. Caller
// holds wlock.
func (l *Log) startWritebackW(seg *segment, end int64) {
	if l.opts.WritebackBytes < 0 {
		return
	}
	from := min(seg.writebackFrom, seg.size) // a cut (undo, truncation) moved the end back
	if end-from >= l.opts.WritebackBytes {
		seg.f.StartWriteback(from, end-from)
		from = end
	}
	seg.writebackFrom = from
}

// frameBufPool holds the buffers writeW frames batches in (as *[]byte).
// A buffer is used by one writeW call and returned when it ends: WriteAt
// copies the bytes out (into the page cache, or Sim's file), and nothing
// keeps a slice of it. Pooled per process, not per Log, so that a node
// hosting thousands of partitions does not keep a buffer for each.
var frameBufPool sync.Pool

// frameBufKeepBytesMax: larger frame buffers are left to the GC.
const frameBufKeepBytesMax = 8 << 20

// getFrameBuf returns a buffer of n bytes whose content is stale: writeW
// overwrites every byte (each frame's header and batch).
func getFrameBuf(n int) []byte {
	if b, ok := frameBufPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

func putFrameBuf(b []byte) {
	if cap(b) > frameBufKeepBytesMax {
		return
	}
	b = b[:0]
	frameBufPool.Put(&b)
}

// undoWriteW cuts a failed write off the active segment so that no part of it
// can be read or recovered; if that fails too the log is failed.
func (l *Log) undoWriteW(seg *segment, cause error) error {
	if terr := seg.f.Truncate(seg.size); terr != nil {
		l.fail(fmt.Errorf("write: %w; undo: %w", cause, terr))
		return fmt.Errorf("%w: %w", ErrLogFailed, cause)
	}
	return fmt.Errorf("plog: append to %s: %w", seg.path, cause)
}

func (l *Log) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr == nil {
		l.failErr = err
		l.logger.Error("plog: log failed; appends refused until reopen", "dir", l.dir, "err", err)
	}
}

// AppendDurable is Append followed by WaitDurable.
func (l *Log) AppendDurable(ctx context.Context, batches []byte, raftIndex uint64, leaderEpoch int32) (AppendResult, error) {
	r, err := l.Append(batches, raftIndex, leaderEpoch)
	if err != nil {
		return r, err
	}
	return r, l.WaitDurable(ctx, r.Ticket)
}

// Sync makes every write completed before the call durable.
func (l *Log) Sync(ctx context.Context) error {
	l.mu.Lock()
	t := Ticket(l.written.seq)
	l.mu.Unlock()
	return l.WaitDurable(ctx, t)
}

// WaitDurable returns nil once the write with ticket t is covered by a
// successful fsync. Many waiters share one fsync: the first waiter to find no
// fsync in flight syncs everything written so far; the others wait for it
// and, if it did not cover them, for the next. A failed fsync fails the log:
// every waiter it covered, and every later call, gets ErrLogFailed.
func (l *Log) WaitDurable(ctx context.Context, t Ticket) error {
	for {
		l.mu.Lock()
		if l.failErr != nil {
			err := l.failErr
			l.mu.Unlock()
			return fmt.Errorf("%w: %w", ErrLogFailed, err)
		}
		if uint64(t) <= l.durable.seq {
			l.mu.Unlock()
			return nil
		}
		if l.closed {
			l.mu.Unlock()
			return ErrClosed
		}
		if uint64(t) > l.written.seq {
			l.mu.Unlock()
			return fmt.Errorf("%w: ticket %d never issued", ErrInvalidArgument, t)
		}
		if l.syncing {
			ch := l.syncDone
			l.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		l.leadSyncLocked()
	}
}

// leadSyncLocked runs one group-commit fsync of the active segment. Entered
// with mu held; returns with it released. Writes to earlier segments were
// synced when they were sealed (roll syncs through this same path).
func (l *Log) leadSyncLocked() {
	l.syncing = true
	done := make(chan struct{})
	l.syncDone = done
	target, f := l.written, l.active().f
	l.mu.Unlock()
	var err error
	failpoint.Inject("syncError", func() { err = errFailpoint })
	if err == nil {
		err = f.Sync()
	}
	failpoint.Inject("afterSync", func() {})
	l.mu.Lock()
	l.syncing = false
	if err != nil {
		if l.failErr == nil {
			l.failErr = fmt.Errorf("fsync %s: %w", f.Name(), err)
			l.logger.Error("plog: fsync failed; log failed until reopen", "dir", l.dir, "err", err)
		}
	} else if target.seq > l.durable.seq {
		l.durable = target
	}
	close(done)
	l.mu.Unlock()
}

// syncAllW makes everything written durable. Caller holds wlock.
func (l *Log) syncAllW() error {
	l.mu.Lock()
	t := Ticket(l.written.seq)
	l.mu.Unlock()
	return l.WaitDurable(context.Background(), t)
}

// Close makes everything written durable, writes the recovery checkpoint and
// releases the files. A failed log is closed without syncing.
func (l *Log) Close() error {
	l.lockW()
	defer l.unlockW()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	failed := l.failErr != nil
	l.mu.Unlock()
	var err error
	if !failed {
		err = l.writeCheckpointW()
	}
	l.mu.Lock()
	l.closed = true
	segs := l.segs
	l.mu.Unlock()
	for _, s := range segs {
		if cerr := s.f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// findSegment returns the index of the segment holding offset. Caller holds mu.
func (l *Log) findSegmentLocked(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return max(i-1, 0)
}
