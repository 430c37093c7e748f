package partition

import (
	"cmp"
	"container/list"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Idempotence limits.
const (
	// BatchesPerProducerMax is how many recent batches per producer are
	// remembered for duplicate detection (Kafka's 5: a producer has at most
	// 5 requests in flight per partition).
	BatchesPerProducerMax = 5
	// ProducersMax caps the producer ids tracked per partition; beyond it the
	// producer that appended least recently is forgotten (Kafka expires
	// producers by time instead; a forgotten producer is treated as new).
	ProducersMax = 10_000
	// NoSequence and NoProducerID are Kafka's "none" values.
	NoSequence   int32 = -1
	NoProducerID int64 = -1
)

// batchMeta identifies one appended idempotent batch.
type batchMeta struct {
	firstSeq, lastSeq      int32
	baseOffset, lastOffset int64
}

// producer is one idempotent producer's state.
// Invariant: len(batches) <= BatchesPerProducerMax, oldest first, all of
// epoch; lastTimestampMs is the maxTimestamp of the newest batch.
type producer struct {
	id              int64
	epoch           int16
	lastTimestampMs int64
	batches         []batchMeta
	// decision is the highest transaction-coordinator decision (the
	// controller log index of an EndTxn decision, Marker.Decision) whose
	// marker this partition holds for the producer; 0: none. A marker of
	// a decision at or below it is a duplicate (see applyMarker).
	decision uint64
	elem     *list.Element // in producerTable.lru
}

func (p *producer) lastSeq() int32 {
	if len(p.batches) == 0 {
		return NoSequence
	}
	return p.batches[len(p.batches)-1].lastSeq
}

// producerTable is a replica's idempotent-producer state. It is a function
// of the log's contents (batches in offset order) and nothing else: LRU
// order is by append, never by lookups, so rebuilding from the log gives
// the same table as live applies did.
// Invariant: len(byID) == lru.Len() <= limit.
type producerTable struct {
	limit int
	byID  map[int64]*producer
	lru   *list.List // of *producer, least recently appended first
}

func newProducerTable(limit int) *producerTable {
	return &producerTable{limit: limit, byID: make(map[int64]*producer), lru: list.New()}
}

// touch returns pid's producer, most recently used now; an unknown one is
// added at epoch with no batches, evicting the least recently used beyond
// the limit.
func (t *producerTable) touch(pid int64, epoch int16) *producer {
	p, ok := t.byID[pid]
	if ok {
		t.lru.MoveToBack(p.elem)
		return p
	}
	p = &producer{id: pid, epoch: epoch}
	p.elem = t.lru.PushBack(p)
	t.byID[pid] = p
	for t.lru.Len() > t.limit {
		old := t.lru.Remove(t.lru.Front()).(*producer)
		delete(t.byID, old.id)
	}
	return p
}

// record registers an appended batch (after a successful check).
func (t *producerTable) record(pid int64, epoch int16, m batchMeta, maxTsMs int64) {
	p := t.touch(pid, epoch)
	if epoch != p.epoch {
		p.epoch, p.batches = epoch, p.batches[:0]
	}
	if len(p.batches) == BatchesPerProducerMax {
		copy(p.batches, p.batches[1:])
		p.batches = p.batches[:len(p.batches)-1]
	}
	p.batches = append(p.batches, m)
	p.lastTimestampMs = maxTsMs
}

// marker registers a transaction marker of pid written at epoch: a newer
// epoch replaces the producer's (its batches are forgotten, so the next
// batch of that epoch starts at sequence 0); an unknown producer is
// added with no batches, so its older epochs are fenced here too.
func (t *producerTable) marker(pid int64, epoch int16, decision uint64, tsMs int64) {
	p := t.touch(pid, epoch)
	if epoch > p.epoch {
		p.epoch, p.batches = epoch, p.batches[:0]
	}
	p.decision = max(p.decision, decision)
	p.lastTimestampMs = tsMs
}

// observeBatch is what appending the batch h does to the producer table
// and the transaction state (apply's effect, for the rebuild on open).
func observeBatch(t *producerTable, x *txnState, h batchHeader) {
	last := h.baseOffset + int64(h.lastOffsetDelta)
	switch {
	case h.producerID < 0:
	case h.control():
		t.marker(h.producerID, h.producerEpoch, h.ctrlDecision, h.maxTimestampMs)
		x.observeMarker(h.producerID, h.ctrlType, h.baseOffset)
	default:
		t.record(h.producerID, h.producerEpoch, batchMeta{
			firstSeq: h.baseSequence, lastSeq: nextSeq(h.baseSequence, h.lastOffsetDelta),
			baseOffset: h.baseOffset, lastOffset: last,
		}, h.maxTimestampMs)
		if h.transactional() {
			x.observeData(h.producerID, h.baseOffset)
		}
	}
}

func (t *producerTable) states(x *txnState) []ProducerState {
	out := make([]ProducerState, 0, len(t.byID))
	for e := t.lru.Front(); e != nil; e = e.Next() {
		p := e.Value.(*producer)
		st := ProducerState{
			ProducerID: p.id, ProducerEpoch: p.epoch, LastSequence: p.lastSeq(),
			LastTimestampMs: p.lastTimestampMs, CoordinatorEpoch: -1, CurrentTxnStartMs: -1,
			CurrentTxnStartOffset: -1,
		}
		if first, ok := x.open[p.id]; ok {
			st.CurrentTxnStartOffset = first
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ProducerState) int { return cmp.Compare(a.ProducerID, b.ProducerID) })
	return out
}

// Producer-table encoding (checkpoint file and snapshots), big-endian, in
// LRU order (least recently appended first) so decoding rebuilds the order:
//
//	count uint32
//	count x ( pid int64 | epoch int16 | lastTimestampMs int64 | n uint8 |
//	          n x (firstSeq int32 | lastSeq int32 | baseOffset int64 | lastOffset int64) )
const (
	producerFixedBytes = 8 + 2 + 8 + 1
	batchMetaBytes     = 4 + 4 + 8 + 8
)

func (t *producerTable) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(t.lru.Len()))
	for e := t.lru.Front(); e != nil; e = e.Next() {
		p := e.Value.(*producer)
		b = binary.BigEndian.AppendUint64(b, uint64(p.id))
		b = binary.BigEndian.AppendUint16(b, uint16(p.epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(p.lastTimestampMs))
		b = append(b, uint8(len(p.batches)))
		for _, m := range p.batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.baseOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.lastOffset))
		}
	}
	return b
}

// decodeProducerTable is the inverse of appendTo; it checks every length
// and never panics on bad bytes. It returns the bytes it consumed.
func decodeProducerTable(b []byte, limit int) (*producerTable, int, error) {
	t := newProducerTable(limit)
	if len(b) < 4 {
		return nil, 0, fmt.Errorf("%w: producer table of %d bytes", errCorruptState, len(b))
	}
	n, pos := binary.BigEndian.Uint32(b), 4
	if int64(n) > int64(limit) {
		return nil, 0, fmt.Errorf("%w: %d producers > %d", errCorruptState, n, limit)
	}
	for range n {
		if len(b)-pos < producerFixedBytes {
			return nil, 0, fmt.Errorf("%w: producer table truncated", errCorruptState)
		}
		p := &producer{
			id:              int64(binary.BigEndian.Uint64(b[pos:])),
			epoch:           int16(binary.BigEndian.Uint16(b[pos+8:])),
			lastTimestampMs: int64(binary.BigEndian.Uint64(b[pos+10:])),
		}
		k := int(b[pos+18])
		pos += producerFixedBytes
		if k > BatchesPerProducerMax || len(b)-pos < k*batchMetaBytes {
			return nil, 0, fmt.Errorf("%w: producer %d: %d batches", errCorruptState, p.id, k)
		}
		if _, dup := t.byID[p.id]; dup || p.id < 0 {
			return nil, 0, fmt.Errorf("%w: producer id %d", errCorruptState, p.id)
		}
		for range k {
			p.batches = append(p.batches, batchMeta{
				firstSeq:   int32(binary.BigEndian.Uint32(b[pos:])),
				lastSeq:    int32(binary.BigEndian.Uint32(b[pos+4:])),
				baseOffset: int64(binary.BigEndian.Uint64(b[pos+8:])),
				lastOffset: int64(binary.BigEndian.Uint64(b[pos+16:])),
			})
			pos += batchMetaBytes
		}
		p.elem = t.lru.PushBack(p)
		t.byID[p.id] = p
	}
	return t, pos, nil
}

// Decisions section (checkpoint and snapshot version 3, after the
// transaction state), big-endian: the producers with a decision, in LRU
// order:
//
//	count uint32 | count x ( pid int64 | decision uint64 )
const decisionEntryBytes = 8 + 8

func (t *producerTable) appendDecisions(b []byte) []byte {
	at := len(b)
	b = binary.BigEndian.AppendUint32(b, 0)
	n := uint32(0)
	for e := t.lru.Front(); e != nil; e = e.Next() {
		if p := e.Value.(*producer); p.decision > 0 {
			b = binary.BigEndian.AppendUint64(b, uint64(p.id))
			b = binary.BigEndian.AppendUint64(b, p.decision)
			n++
		}
	}
	binary.BigEndian.PutUint32(b[at:], n)
	return b
}

// decodeDecisions reads a decisions section into t, whose producers it
// must name; it returns the bytes it consumed and never panics.
func (t *producerTable) decodeDecisions(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, fmt.Errorf("%w: decisions of %d bytes", errCorruptState, len(b))
	}
	n := int64(binary.BigEndian.Uint32(b))
	if n > int64(len(t.byID)) || int64(len(b)-4) < n*decisionEntryBytes {
		return 0, fmt.Errorf("%w: %d decisions for %d producers in %d bytes", errCorruptState, n, len(t.byID), len(b))
	}
	pos := 4
	for range n {
		pid := int64(binary.BigEndian.Uint64(b[pos:]))
		p := t.byID[pid]
		if p == nil {
			return 0, fmt.Errorf("%w: decision for unknown producer %d", errCorruptState, pid)
		}
		p.decision = binary.BigEndian.Uint64(b[pos+8:])
		pos += decisionEntryBytes
	}
	return pos, nil
}

// nextSeq is Kafka's DefaultRecordBatch.incrementSequence: sequences wrap
// from math.MaxInt32 to 0.
func nextSeq(seq, increment int32) int32 {
	if seq > math.MaxInt32-increment {
		return increment - (math.MaxInt32 - seq) - 1
	}
	return seq + increment
}

// inSequence is Kafka's ProducerStateManager.inSequence.
func inSequence(lastSeq, seq int32) bool {
	return int64(seq) == int64(lastSeq)+1 || (seq == 0 && lastSeq == math.MaxInt32)
}
