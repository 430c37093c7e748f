package partition

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
)

// Transactions on one partition (Kafka's ProducerStateManager and
// TransactionIndex, reduced to what a partition must know).
//
// A transactional batch (attributes bit 0x10) of producer P opens P's
// transaction here if none is open: its base offset becomes the
// transaction's first offset. A marker (control batch, bits 0x10|0x20,
// written only by applying a KindMarker command) closes it; an ABORT
// marker records (P, first offset, marker offset) in the aborted index.
// The last stable offset is the smallest first offset of the open
// transactions, else the high watermark.
//
// All of it is a function of the log's batches in offset order, like the
// producer table: a rescan after the checkpoint rebuilds exactly what live
// applies built (scanProducers goes through observeBatch for both).

// Limits of the transaction state.
const (
	// AbortedTxnsMax bounds the aborted-transaction index. Entries whose
	// marker is below the log start are dropped as the start moves; beyond
	// the bound the oldest entry is dropped (its aborted records would then
	// show to read_committed consumers: logged, and far beyond any
	// realistic rate of aborts within a partition's retention).
	AbortedTxnsMax = 100_000

	batchAttrTransactional = 0x10
	batchAttrControl       = 0x20

	// Control record types (key: version int16 = 0, type int16).
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

// AbortedTxn is one aborted transaction of a partition: the records of
// ProducerID in [FirstOffset, LastOffset) are aborted; LastOffset is the
// abort marker's offset.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// txnState is a replica's transaction state; mutated only by apply (under
// Replica.mu) and by the rebuild on open.
// Invariant: every aborted entry has FirstOffset <= LastOffset; aborted is
// sorted by LastOffset, len(aborted) <= AbortedTxnsMax; len(open) <=
// ProducersMax.
type txnState struct {
	open    map[int64]int64 // producer id -> first offset of its open transaction
	aborted []AbortedTxn
}

func newTxnState() *txnState { return &txnState{open: map[int64]int64{}} }

// lso is the last stable offset given the high watermark.
func (t *txnState) lso(hw int64) int64 {
	out := hw
	for _, first := range t.open { // min: order does not matter
		out = min(out, first)
	}
	return out
}

// observeData records a transactional data batch of pid at baseOffset.
func (t *txnState) observeData(pid, baseOffset int64) {
	if _, ok := t.open[pid]; !ok && len(t.open) < ProducersMax {
		t.open[pid] = baseOffset
	}
}

// observeMarker closes pid's open transaction with a marker at offset.
func (t *txnState) observeMarker(pid int64, typ int16, offset int64) {
	first, ok := t.open[pid]
	if !ok {
		return
	}
	delete(t.open, pid)
	if typ != ControlAbort {
		return
	}
	if len(t.aborted) == AbortedTxnsMax {
		t.aborted = slices.Delete(t.aborted, 0, 1)
	}
	t.aborted = append(t.aborted, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: offset})
}

// prune drops aborted entries wholly below the log start.
func (t *txnState) prune(start int64) {
	i := sort.Search(len(t.aborted), func(i int) bool { return t.aborted[i].LastOffset >= start })
	if i > 0 {
		t.aborted = slices.Delete(t.aborted, 0, i)
	}
}

// abortedIn returns the aborted transactions that overlap [from, upper):
// marker at or after from, first offset below upper.
func (t *txnState) abortedIn(from, upper int64) []AbortedTxn {
	i := sort.Search(len(t.aborted), func(i int) bool { return t.aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range t.aborted[i:] {
		if a.FirstOffset < upper {
			out = append(out, a)
		}
	}
	return out
}

// Encoding (checkpoint v2 and snapshot v2, after the producer table):
//
//	openCount uint32 | openCount x (pid int64 | firstOffset int64), by pid
//	abortedCount uint32 | abortedCount x (pid int64 | first int64 | last int64)
const (
	openEntryBytes    = 16
	abortedEntryBytes = 24
)

func (t *txnState) appendTo(b []byte) []byte {
	pids := make([]int64, 0, len(t.open))
	for pid := range t.open {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	b = binary.BigEndian.AppendUint32(b, uint32(len(pids)))
	for _, pid := range pids {
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint64(b, uint64(t.open[pid]))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(t.aborted)))
	for _, a := range t.aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	return b
}

// decodeTxnState is the inverse of appendTo; it never panics and returns
// the bytes consumed.
func decodeTxnState(b []byte) (*txnState, int, error) {
	t := newTxnState()
	if len(b) < 4 {
		return nil, 0, fmt.Errorf("%w: txn state of %d bytes", errCorruptState, len(b))
	}
	n, pos := int64(binary.BigEndian.Uint32(b)), 4
	if n > ProducersMax || int64(len(b)-pos) < n*openEntryBytes+4 {
		return nil, 0, fmt.Errorf("%w: %d open transactions", errCorruptState, n)
	}
	for range n {
		pid, first := int64(binary.BigEndian.Uint64(b[pos:])), int64(binary.BigEndian.Uint64(b[pos+8:]))
		if _, dup := t.open[pid]; dup || pid < 0 || first < 0 {
			return nil, 0, fmt.Errorf("%w: open transaction %d at %d", errCorruptState, pid, first)
		}
		t.open[pid] = first
		pos += openEntryBytes
	}
	n = int64(binary.BigEndian.Uint32(b[pos:]))
	pos += 4
	if n > AbortedTxnsMax || int64(len(b)-pos) < n*abortedEntryBytes {
		return nil, 0, fmt.Errorf("%w: %d aborted transactions", errCorruptState, n)
	}
	for range n {
		a := AbortedTxn{
			ProducerID:  int64(binary.BigEndian.Uint64(b[pos:])),
			FirstOffset: int64(binary.BigEndian.Uint64(b[pos+8:])),
			LastOffset:  int64(binary.BigEndian.Uint64(b[pos+16:])),
		}
		if a.FirstOffset > a.LastOffset || len(t.aborted) > 0 && t.aborted[len(t.aborted)-1].LastOffset > a.LastOffset {
			return nil, 0, fmt.Errorf("%w: aborted transaction %+v", errCorruptState, a)
		}
		t.aborted = append(t.aborted, a)
		pos += abortedEntryBytes
	}
	return t, pos, nil
}

// txnStateBytesMax bounds an encoded txnState.
const txnStateBytesMax = 4 + ProducersMax*openEntryBytes + 4 + AbortedTxnsMax*abortedEntryBytes

// Control batch layout (Kafka's EndTransactionMarker): one record, key
// {version int16 = 0, type int16}, value {version int16 = 0,
// coordinatorEpoch int32}, no headers. A marker the transaction
// coordinator wrote (Marker.Decision > 0) appends decision int64 to the
// value (14 bytes): the controller log index of the decision it carries,
// so a replica rebuilding its producer table from the log knows which
// decisions it already holds (producer.decision). Kafka's readers parse
// the value's version and coordinator epoch and ignore what follows;
// clients read only the key.
const (
	controlRecordBytes         = 16 // attrs, tsDelta, offDelta, keyLen, key(4), valLen, value(6), headers
	controlRecordDecisionBytes = controlRecordBytes + 8
)

// buildControlBatch returns a whole v2 control batch (base offset and
// leader epoch 0: the log stamps them); decision 0 leaves it out.
func buildControlBatch(pid int64, epoch int16, typ int16, coordinatorEpoch int32, decision uint64, tsMs int64) []byte {
	recBytes := controlRecordBytes
	if decision > 0 {
		recBytes = controlRecordDecisionBytes
	}
	size := batchHeaderBytes + 1 + recBytes
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b[8:], uint32(size-12))
	b[16] = 2 // magic
	binary.BigEndian.PutUint16(b[offAttributes:], batchAttrTransactional|batchAttrControl)
	// lastOffsetDelta 0 at 23
	binary.BigEndian.PutUint64(b[27:], uint64(tsMs))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(tsMs))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(epoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xffffffff)
	binary.BigEndian.PutUint32(b[57:], 1) // records
	r := b[batchHeaderBytes:]
	r[0] = byte(2 * recBytes) // varint length (zigzag; < 64)
	// attrs 0, timestampDelta 0, offsetDelta 0
	r[4] = 2 * 4 // key length 4
	binary.BigEndian.PutUint16(r[5:], 0)
	binary.BigEndian.PutUint16(r[7:], uint16(typ))
	r[9] = byte(2 * (recBytes - 10)) // value length 6 or 14
	binary.BigEndian.PutUint16(r[10:], 0)
	binary.BigEndian.PutUint32(r[12:], uint32(coordinatorEpoch))
	if decision > 0 {
		binary.BigEndian.PutUint64(r[16:], decision)
	}
	// headers count 0 after the value
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// controlDecision reads the decision index a marker batch carries (see
// buildControlBatch), or 0 if it carries none or is not laid out so.
func controlDecision(batch []byte) uint64 {
	if len(batch) < batchHeaderBytes+1+controlRecordDecisionBytes {
		return 0
	}
	r := batch[batchHeaderBytes:]
	if r[0] != 2*controlRecordDecisionBytes || r[4] != 2*4 || r[9] != 2*14 {
		return 0
	}
	return binary.BigEndian.Uint64(r[16:])
}

// controlType reads the marker type of a control batch (whole batch bytes),
// or -1 if the record is not a marker this package understands.
func controlType(batch []byte) int16 {
	if len(batch) < batchHeaderBytes+10 {
		return -1
	}
	r := batch[batchHeaderBytes:]
	// A marker record as Kafka writes it: every varint before the key fits
	// one byte; anything else is not read as a marker.
	if r[0]&0x80 != 0 || r[2]&0x80 != 0 || r[3]&0x80 != 0 || r[4] != 2*4 {
		return -1
	}
	return int16(binary.BigEndian.Uint16(r[7:]))
}
