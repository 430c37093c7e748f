package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path"

	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

// Producer checkpoint (producers.state, big-endian, written atomically by
// tmp + Sync + Rename + SyncDir). Frozen.
const (
	CheckpointMagic uint32 = 0x43505053 // "CPPS"
	// CheckpointVersion 2 adds the transaction state after the producer
	// table; version 1 (no transactions then) is still read, as empty.
	// Version 3 adds the producers' decisions after it (producers.go);
	// version 2 is still read, with none.
	CheckpointVersion   uint16 = 3
	checkpointVersionV2 uint16 = 2
	checkpointVersionV1 uint16 = 1
	checkpointHeader           = 32
	// CheckpointBytesMax bounds the file (ProducersMax full producers, a
	// full transaction state).
	CheckpointBytesMax = checkpointHeader + 4 + ProducersMax*(producerFixedBytes+BatchesPerProducerMax*batchMetaBytes) + txnStateBytesMax + 4 + ProducersMax*decisionEntryBytes + 4
	// scanChunkBytes is the read size of the producer-state scan on Open.
	scanChunkBytes = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// writeCheckpoint persists the producer table with the applied index and
// the offset it covers. The caller has synced the log first, so the
// checkpoint only describes durable data.
func (s *stateMachine) writeCheckpoint() error {
	return writeCheckpointIn(s.opts.FS, s.dir, s.applied, s.log.NextOffset(), s.lastEpoch, s.producers, s.txns)
}

func writeCheckpointIn(fs diskio.FS, dir string, applied uint64, covered int64, lastEpoch int32, t *producerTable, x *txnState) error {
	b := make([]byte, checkpointHeader, 4096)
	binary.BigEndian.PutUint32(b, CheckpointMagic)
	binary.BigEndian.PutUint16(b[4:], CheckpointVersion)
	binary.BigEndian.PutUint64(b[8:], applied)
	binary.BigEndian.PutUint64(b[16:], uint64(covered))
	binary.BigEndian.PutUint32(b[24:], uint32(lastEpoch))
	b = t.appendTo(b)
	b = x.appendTo(b)
	b = t.appendDecisions(b)
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return writeFileAtomic(fs, dir, checkpointName, checkpointTmpName, b)
}

func writeFileAtomic(fs diskio.FS, dir, name, tmpName string, b []byte) error {
	tmp := path.Join(dir, tmpName)
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = f.WriteAt(b, 0); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := fs.Rename(tmp, path.Join(dir, name)); err != nil {
		return err
	}
	return fs.SyncDir(dir)
}

type checkpoint struct {
	applied   uint64
	covered   int64
	lastEpoch int32
	producers *producerTable
	txns      *txnState
}

// readCheckpoint returns (nil, nil) if there is none.
func readCheckpoint(fs diskio.FS, dir string) (*checkpoint, error) {
	f, err := fs.Open(path.Join(dir, checkpointName))
	if errors.Is(err, diskio.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size < checkpointHeader+8 || size > CheckpointBytesMax {
		return nil, fmt.Errorf("%w: checkpoint of %d bytes", errCorruptState, size)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); n != len(b) && err != nil && err != io.EOF {
		return nil, err
	} else if n != len(b) {
		return nil, fmt.Errorf("%w: checkpoint short read", errCorruptState)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	version := binary.BigEndian.Uint16(b[4:])
	if crc32.Checksum(body, castagnoli) != sum || binary.BigEndian.Uint32(b) != CheckpointMagic ||
		version != CheckpointVersion && version != checkpointVersionV2 && version != checkpointVersionV1 {
		return nil, fmt.Errorf("%w: checkpoint header or CRC", errCorruptState)
	}
	t, n, err := decodeProducerTable(body[checkpointHeader:], ProducersMax)
	if err != nil {
		return nil, err
	}
	n += checkpointHeader
	x := newTxnState()
	if version >= checkpointVersionV2 {
		var m int
		if x, m, err = decodeTxnState(body[n:]); err != nil {
			return nil, err
		}
		n += m
	}
	if version >= CheckpointVersion {
		m, err := t.decodeDecisions(body[n:])
		if err != nil {
			return nil, err
		}
		n += m
	}
	if n != len(body) {
		return nil, fmt.Errorf("%w: checkpoint trailing bytes", errCorruptState)
	}
	return &checkpoint{
		applied:   binary.BigEndian.Uint64(b[8:]),
		covered:   int64(binary.BigEndian.Uint64(b[16:])),
		lastEpoch: int32(binary.BigEndian.Uint32(b[24:])),
		producers: t,
		txns:      x,
	}, nil
}

// loadProducers rebuilds the producer table and the transaction state: the checkpoint, then the batch
// headers of the log after the offset it covers. A missing, unreadable or
// inconsistent checkpoint means a scan from the log start (logged).
// The returned checkpoint is zero (lastEpoch -1) if none was usable.
func (s *stateMachine) loadProducers(l *plog.Log) (*producerTable, checkpoint, error) {
	ck, err := readCheckpoint(s.opts.FS, s.dir)
	if err != nil {
		s.logger.Warn("producer checkpoint unusable: rebuilding from the log", "err", err)
		ck = nil
	}
	if ck != nil && ck.covered > l.NextOffset() {
		s.logger.Warn("producer checkpoint ahead of the log: rebuilding from the log",
			"covered", ck.covered, "logEnd", l.NextOffset())
		ck = nil
	}
	if ck != nil && ck.covered < l.StartOffset() {
		// Written before delete-records checkpointed first: the batches
		// of [covered, log start) are gone with their sequences.
		s.logger.Warn("producer checkpoint older than the log start: sequences of deleted batches are lost",
			"covered", ck.covered, "logStart", l.StartOffset())
	}
	used := checkpoint{lastEpoch: -1, producers: newProducerTable(ProducersMax), txns: newTxnState()}
	if ck != nil {
		used = *ck
	}
	if err := scanProducers(l, used.producers, used.txns, max(used.covered, l.StartOffset()), used.covered); err != nil {
		return nil, checkpoint{}, err
	}
	return used.producers, used, nil
}

// scanProducers records the idempotent and transactional batches (and
// markers) of [from, log end) in t and x, reading bounded chunks and
// parsing only batch headers (and a marker's record). Batches starting
// below covered are already in t and x.
func scanProducers(l *plog.Log, t *producerTable, x *txnState, from, covered int64) error {
	end := l.NextOffset()
	var hdrs []batchHeader
	for off := from; off < end; {
		b, err := l.Read(off, scanChunkBytes, end)
		if err != nil {
			return fmt.Errorf("partition: producer scan at %d: %w", off, err)
		}
		if hdrs, err = parseBatchHeaders(b, hdrs[:0]); err != nil || len(hdrs) == 0 {
			return fmt.Errorf("partition: producer scan at %d: %d batches: %v", off, len(hdrs), err)
		}
		for _, h := range hdrs {
			last := h.baseOffset + int64(h.lastOffsetDelta)
			if h.producerID >= 0 && last >= off && h.baseOffset >= covered {
				observeBatch(t, x, h)
			}
			off = last + 1
		}
	}
	return nil
}
