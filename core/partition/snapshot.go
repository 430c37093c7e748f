package partition

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"path"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/pingcap/failpoint"

	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

// Snapshot stream (big-endian; frozen, see doc.go):
//
//	header: magic "CPSN" uint32 | version uint16 | reserved uint16 |
//	        appliedIndex uint64 | logStart int64 | highWatermark int64 |
//	        lastEpoch int32 (newest stamped epoch, -1: none) | reserved uint32
//	chunks: tagBatches uint8 | n uint32 | n bytes of whole v2 batches
//	        (base offsets and leader epochs as stamped in the log)
//	end:    tagEnd uint8 | producer table (producers.go) |
//	        v2: transaction state (txn.go) |
//	        v3: producers' decisions (producers.go) | crc32c uint32
//	        of every byte of the stream before it
//
// Version 1 streams (no transaction state: written before transactions
// existed) are still installed, with an empty transaction state; version
// 2 streams with no decisions.
const (
	SnapshotMagic     uint32 = 0x4350534e // "CPSN"
	SnapshotVersion   uint16 = 3
	snapshotVersionV2 uint16 = 2
	snapshotVersionV1 uint16 = 1
	snapshotHeader           = 40
	tagBatches        uint8  = 1
	tagEnd            uint8  = 2
	// SnapshotChunkBytes is the target size of one chunk of batches; a chunk
	// is larger only to hold one batch (at most plog.BatchBytesLimit).
	SnapshotChunkBytes = 1 << 20
	snapshotChunkMax   = plog.BatchBytesLimit + SnapshotChunkBytes
	// snapshotStartAttempts bounds retries when retention moves the log
	// start while a snapshot starts reading.
	snapshotStartAttempts = 4
)

// snapshotPoint is what PrepareSnapshot captures (under dragonboat's
// mutual exclusion with Update): the snapshot describes exactly this.
type snapshotPoint struct {
	log       *plog.Log // captured: SaveSnapshot must not read s.log concurrently with Update
	applied   uint64
	start, hw int64
	lastEpoch int32
	producers []byte // encoded table, then the encoded transaction state
}

func (s *stateMachine) PrepareSnapshot() (any, error) {
	if s.stopped != nil {
		return nil, sm.ErrSnapshotStopped
	}
	return &snapshotPoint{
		log:     s.log,
		applied: s.applied, start: s.log.StartOffset(), hw: s.log.NextOffset(), lastEpoch: s.lastEpoch,
		producers: s.producers.appendDecisions(s.txns.appendTo(s.producers.appendTo(nil))),
	}, nil
}

type crcWriter struct {
	w   io.Writer
	crc hash.Hash32
}

func (c *crcWriter) Write(p []byte) (int, error) {
	c.crc.Write(p)
	return c.w.Write(p)
}

// SaveSnapshot streams the log from the captured start to the captured high
// watermark in chunks, then the producer table. It runs concurrently with
// Update (which only appends beyond hw); if retention removes the start
// before the first read, it starts from the new log start.
func (s *stateMachine) SaveSnapshot(ctx any, w io.Writer, done <-chan struct{}) error {
	pt, ok := ctx.(*snapshotPoint)
	if !ok {
		return fmt.Errorf("partition: snapshot context %T", ctx)
	}
	l := pt.log
	start, first, err := firstChunk(l, pt.start, pt.hw)
	if err != nil {
		return s.readAborted(pt.start, err)
	}
	cw := &crcWriter{w: w, crc: crc32.New(castagnoli)}
	h := make([]byte, snapshotHeader)
	binary.BigEndian.PutUint32(h, SnapshotMagic)
	binary.BigEndian.PutUint16(h[4:], SnapshotVersion)
	binary.BigEndian.PutUint64(h[8:], pt.applied)
	binary.BigEndian.PutUint64(h[16:], uint64(start))
	binary.BigEndian.PutUint64(h[24:], uint64(pt.hw))
	binary.BigEndian.PutUint32(h[32:], uint32(pt.lastEpoch))
	if _, err := cw.Write(h); err != nil {
		return err
	}
	chunk := first
	for len(chunk) > 0 {
		select {
		case <-done:
			return sm.ErrSnapshotStopped
		default:
		}
		var tag [5]byte
		tag[0] = tagBatches
		binary.BigEndian.PutUint32(tag[1:], uint32(len(chunk)))
		if _, err := cw.Write(tag[:]); err != nil {
			return err
		}
		if _, err := cw.Write(chunk); err != nil {
			return err
		}
		failpoint.Inject("snapshotSaveError", func() { failpoint.Return(errFailpoint) })
		next, err := chunkEnd(chunk)
		if err != nil {
			return err
		}
		if next >= pt.hw {
			break
		}
		if chunk, err = l.Read(next, SnapshotChunkBytes, pt.hw); err != nil {
			return s.readAborted(next, err)
		}
	}
	end := append([]byte{tagEnd}, pt.producers...)
	if _, err := cw.Write(end); err != nil {
		return err
	}
	_, err = w.Write(binary.BigEndian.AppendUint32(nil, cw.crc.Sum32()))
	return err
}

// readAborted reports a failed log read during SaveSnapshot as
// sm.ErrSnapshotAborted: dragonboat then drops this snapshot, or this
// stream to a follower, and tries again later, where any other error
// stops the process. Nothing that failed its checksum is ever sent; a
// transient failure (a bit flipped on the way from the disk) reads clean
// on the retry, a persistent one keeps the snapshot from being made and is
// logged each time.
func (s *stateMachine) readAborted(at int64, err error) error {
	s.logger.Warn("partition snapshot aborted: log read failed (retried later)", "offset", at, "err", err)
	// One %w only: dragonboat matches with cockroachdb/errors.Is, which
	// does not follow multi-error wrapping (fmt.Errorf with two %w).
	return fmt.Errorf("%w: partition: snapshot read at %d: %v", sm.ErrSnapshotAborted, at, err)
}

// firstChunk reads the first chunk at start, moving to the log's new start
// if retention deleted it meanwhile (bounded retries).
func firstChunk(l *plog.Log, start, hw int64) (int64, []byte, error) {
	for range snapshotStartAttempts {
		if start >= hw {
			return hw, nil, nil
		}
		b, err := l.Read(start, SnapshotChunkBytes, hw)
		if !errors.Is(err, plog.ErrOffsetOutOfRange) {
			return start, b, err
		}
		start = max(start, l.StartOffset())
	}
	return 0, nil, fmt.Errorf("partition: snapshot: log start keeps moving (at %d)", start)
}

// chunkEnd is the offset after the last batch of chunk.
func chunkEnd(chunk []byte) (int64, error) {
	hdrs, err := parseBatchHeaders(chunk, nil)
	if err != nil || len(hdrs) == 0 {
		return 0, fmt.Errorf("%w: snapshot chunk: %v", errCorruptState, err)
	}
	h := hdrs[len(hdrs)-1]
	return h.baseOffset + int64(h.lastOffsetDelta) + 1, nil
}

// RecoverFromSnapshot replaces the local log with the snapshot's. The new
// state is built in a staging directory (recover/): a log starting at the
// snapshot's first batch (an empty segment file named by that offset, so
// plog's recovery starts the log there), the batches appended one run of
// equal leader epochs at a time (each keeps its offset and epoch), the log
// start applied, the table restored, the checksum verified, the log synced
// and a checkpoint written. Only then is it swapped in: the old checkpoint
// is removed first, then the old log, then the staged log and checkpoint
// are renamed into place. A crash at any point leaves either the old state
// (consistent with the index Open reports) or the new one (a missing
// checkpoint only means a rescan), never a partial log claiming the
// snapshot's index. Memory is bounded by one chunk.
func (s *stateMachine) RecoverFromSnapshot(r io.Reader, done <-chan struct{}) error {
	if s.stopped != nil {
		return sm.ErrSnapshotStopped
	}
	br := bufio.NewReaderSize(r, 64<<10)
	crc := crc32.New(castagnoli)
	tr := io.TeeReader(br, crc)
	h := make([]byte, snapshotHeader)
	if _, err := io.ReadFull(tr, h); err != nil {
		return fmt.Errorf("%w: snapshot header: %v", errCorruptState, err)
	}
	version := binary.BigEndian.Uint16(h[4:])
	if binary.BigEndian.Uint32(h) != SnapshotMagic || version != SnapshotVersion && version != snapshotVersionV2 && version != snapshotVersionV1 {
		return fmt.Errorf("%w: snapshot magic/version", errCorruptState)
	}
	applied := binary.BigEndian.Uint64(h[8:])
	start, hw := int64(binary.BigEndian.Uint64(h[16:])), int64(binary.BigEndian.Uint64(h[24:]))
	lastEpoch := int32(binary.BigEndian.Uint32(h[32:]))
	if start < 0 || hw < start {
		return fmt.Errorf("%w: snapshot start %d hw %d", errCorruptState, start, hw)
	}
	staging := path.Join(s.dir, stagingDirName)
	l, producers, err := s.restoreLog(tr, done, applied, start, hw)
	txns := newTxnState()
	if err == nil && version >= snapshotVersionV2 {
		txns, err = readTxnState(tr)
	}
	if err == nil && version >= SnapshotVersion {
		err = readDecisions(tr, producers)
	}
	if err == nil {
		var sum [4]byte
		if _, rerr := io.ReadFull(br, sum[:]); rerr != nil || binary.BigEndian.Uint32(sum[:]) != crc.Sum32() {
			err = fmt.Errorf("%w: snapshot checksum", errCorruptState)
		}
	}
	failpoint.Inject("snapshotRecoverError", func() {
		if err == nil {
			err = errFailpoint
		}
	})
	if err == nil {
		lastEpoch = max(lastEpoch, lastEpochOf(l))
		if err = l.Sync(context.Background()); err == nil {
			err = writeCheckpointIn(s.opts.FS, staging, applied, l.NextOffset(), lastEpoch, producers, txns)
		}
	}
	if l != nil {
		if cerr := l.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	s.detachLog()
	if err := s.swapIn(staging); err != nil {
		return s.storageFailed(err, sm.ErrSnapshotStopped)
	}
	if l, err = plog.Open(s.logOptions()); err != nil {
		return s.storageFailed(err, sm.ErrSnapshotStopped)
	}
	s.log, s.producers, s.txns, s.applied, s.lastEpoch = l, producers, txns, applied, lastEpoch
	s.publish()
	s.logger.Info("partition replica recovered from snapshot", "applied", applied, "logStart", start, "hw", hw)
	return nil
}

// swapIn replaces the live log and checkpoint with the staged ones.
func (s *stateMachine) swapIn(staging string) error {
	fs := s.opts.FS
	steps := []func() error{
		func() error { return removeIfExists(fs, path.Join(s.dir, checkpointName)) },
		func() error { return fs.SyncDir(s.dir) },
		func() error { return fs.RemoveAll(path.Join(s.dir, logDirName)) },
		func() error { return fs.Rename(path.Join(staging, logDirName), path.Join(s.dir, logDirName)) },
		func() error { return fs.Rename(path.Join(staging, checkpointName), path.Join(s.dir, checkpointName)) },
		func() error { return fs.SyncDir(s.dir) },
		func() error { return fs.RemoveAll(staging) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("partition: shard %d: installing snapshot: %w", s.shardID, err)
		}
	}
	return nil
}

func removeIfExists(fs diskio.FS, name string) error {
	if err := fs.Remove(name); err != nil && !errors.Is(err, diskio.ErrNotExist) {
		return err
	}
	return nil
}

// detachLog hides the log from readers and closes it.
func (s *stateMachine) detachLog() {
	s.rep.mu.Lock()
	s.rep.log = nil
	s.rep.mu.Unlock()
	if s.log != nil {
		if err := s.log.Close(); err != nil {
			s.logger.Warn("closing log before snapshot recovery", "err", err)
		}
		s.log = nil
	}
}

func (s *stateMachine) restoreLog(r io.Reader, done <-chan struct{}, applied uint64, start, hw int64) (*plog.Log, *producerTable, error) {
	var l *plog.Log
	var tag [5]byte
	var hdrs []batchHeader
	buf := make([]byte, 0, SnapshotChunkBytes)
	for {
		select {
		case <-done:
			return l, nil, sm.ErrSnapshotStopped
		default:
		}
		if _, err := io.ReadFull(r, tag[:1]); err != nil {
			return l, nil, fmt.Errorf("%w: snapshot tag: %v", errCorruptState, err)
		}
		if tag[0] == tagEnd {
			break
		}
		if tag[0] != tagBatches {
			return l, nil, fmt.Errorf("%w: snapshot tag %d", errCorruptState, tag[0])
		}
		if _, err := io.ReadFull(r, tag[1:]); err != nil {
			return l, nil, fmt.Errorf("%w: snapshot chunk: %v", errCorruptState, err)
		}
		n := binary.BigEndian.Uint32(tag[1:])
		if n == 0 || n > snapshotChunkMax {
			return l, nil, fmt.Errorf("%w: snapshot chunk of %d bytes", errCorruptState, n)
		}
		buf = append(buf[:0], make([]byte, n)...)
		if _, err := io.ReadFull(r, buf); err != nil {
			return l, nil, fmt.Errorf("%w: snapshot chunk: %v", errCorruptState, err)
		}
		var err error
		if hdrs, err = parseBatchHeaders(buf, hdrs[:0]); err != nil || len(hdrs) == 0 {
			return l, nil, fmt.Errorf("%w: snapshot batches: %v", errCorruptState, err)
		}
		if l == nil {
			if l, err = s.freshLog(hdrs[0].baseOffset); err != nil {
				return nil, nil, err
			}
		}
		if err := appendByEpoch(l, buf, hdrs, applied); err != nil {
			return l, nil, err
		}
	}
	if l == nil {
		var err error
		if l, err = s.freshLog(hw); err != nil {
			return nil, nil, err
		}
	}
	if l.NextOffset() != hw {
		return l, nil, fmt.Errorf("%w: snapshot log ends at %d, want %d", errCorruptState, l.NextOffset(), hw)
	}
	if err := l.DeletePrefix(start); err != nil {
		return l, nil, err
	}
	rest, err := readProducerTable(r)
	return l, rest, err
}

// readProducerTable reads an encoded table from r without knowing its
// length up front: count first, then each producer (bounded by limits).
func readProducerTable(r io.Reader) (*producerTable, error) {
	var b []byte
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: snapshot producers: %v", errCorruptState, err)
	}
	b = append(b, hdr[:]...)
	n := binary.BigEndian.Uint32(hdr[:])
	if n > ProducersMax {
		return nil, fmt.Errorf("%w: snapshot: %d producers", errCorruptState, n)
	}
	for range n {
		fixed := make([]byte, producerFixedBytes)
		if _, err := io.ReadFull(r, fixed); err != nil {
			return nil, fmt.Errorf("%w: snapshot producers: %v", errCorruptState, err)
		}
		k := int(fixed[producerFixedBytes-1])
		if k > BatchesPerProducerMax {
			return nil, fmt.Errorf("%w: snapshot producer with %d batches", errCorruptState, k)
		}
		metas := make([]byte, k*batchMetaBytes)
		if _, err := io.ReadFull(r, metas); err != nil {
			return nil, fmt.Errorf("%w: snapshot producers: %v", errCorruptState, err)
		}
		b = append(append(b, fixed...), metas...)
	}
	t, _, err := decodeProducerTable(b, ProducersMax)
	return t, err
}

// readTxnState reads an encoded transaction state from r (counts first,
// each bounded).
func readTxnState(r io.Reader) (*txnState, error) {
	var b []byte
	for _, entry := range []int64{openEntryBytes, abortedEntryBytes} {
		var hdr [4]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("%w: snapshot transactions: %v", errCorruptState, err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		if n > max(ProducersMax, AbortedTxnsMax) {
			return nil, fmt.Errorf("%w: snapshot: %d transactions", errCorruptState, n)
		}
		body := make([]byte, n*entry)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, fmt.Errorf("%w: snapshot transactions: %v", errCorruptState, err)
		}
		b = append(append(b, hdr[:]...), body...)
	}
	x, _, err := decodeTxnState(b)
	return x, err
}

// readDecisions reads a decisions section (producers.go) from r into t.
func readDecisions(r io.Reader, t *producerTable) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("%w: snapshot decisions: %v", errCorruptState, err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n > ProducersMax {
		return fmt.Errorf("%w: snapshot: %d decisions", errCorruptState, n)
	}
	b := make([]byte, 4+n*decisionEntryBytes)
	copy(b, hdr[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return fmt.Errorf("%w: snapshot decisions: %v", errCorruptState, err)
	}
	_, err := t.decodeDecisions(b)
	return err
}

// freshLog creates an empty staging log whose first offset is base: an
// empty segment file named by base offset, no checkpoint (plog's recovery
// then starts the log there), and opens it.
func (s *stateMachine) freshLog(base int64) (*plog.Log, error) {
	staging := path.Join(s.dir, stagingDirName)
	fs, dir := s.opts.FS, path.Join(staging, logDirName)
	if err := fs.RemoveAll(staging); err != nil {
		return nil, err
	}
	if err := fs.MkdirAll(dir); err != nil {
		return nil, err
	}
	f, err := fs.Create(path.Join(dir, fmt.Sprintf("%020d.log", base)))
	if err != nil {
		return nil, err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		return nil, err
	}
	l, err := plog.Open(s.logOptionsIn(staging))
	if err != nil {
		return nil, err
	}
	if l.NextOffset() != base {
		_ = l.Close()
		return nil, fmt.Errorf("partition: fresh log starts at %d, want %d", l.NextOffset(), base)
	}
	return l, nil
}

// appendByEpoch appends the batches of buf, one Append per run of equal
// leader epochs, checking each lands at its recorded offset.
func appendByEpoch(l *plog.Log, buf []byte, hdrs []batchHeader, raftIndex uint64) error {
	pos := 0
	for i := 0; i < len(hdrs); {
		j, n := i, 0
		for j < len(hdrs) && hdrs[j].leaderEpoch == hdrs[i].leaderEpoch {
			n += hdrs[j].bytes
			j++
		}
		if l.NextOffset() != hdrs[i].baseOffset {
			return fmt.Errorf("%w: snapshot batch at %d, log end %d", errCorruptState, hdrs[i].baseOffset, l.NextOffset())
		}
		if _, err := l.Append(buf[pos:pos+n], raftIndex, hdrs[i].leaderEpoch); err != nil {
			return fmt.Errorf("partition: snapshot append at %d: %w", hdrs[i].baseOffset, err)
		}
		pos += n
		i = j
	}
	return nil
}
