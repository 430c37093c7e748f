package partition

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Batch header fields the state machine reads (Kafka record batch v2).
const (
	batchHeaderBytes        = 61
	offLastOffsetDelta      = 23
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offPartitionLeaderEpoch = 12
)

// batchHeader is what idempotence needs from one batch.
type batchHeader struct {
	baseOffset      int64
	bytes           int // whole batch: batchLength + 12
	lastOffsetDelta int32
	maxTimestampMs  int64
	producerID      int64
	producerEpoch   int16
	baseSequence    int32
	leaderEpoch     int32
	attributes      int16
	ctrlType        int16  // marker type of a control batch, else -1
	ctrlDecision    uint64 // decision index a marker carries, else 0
}

func (h batchHeader) transactional() bool { return h.attributes&batchAttrTransactional != 0 }
func (h batchHeader) control() bool       { return h.attributes&batchAttrControl != 0 }

// parseBatchHeaders splits concatenated v2 batches (already validated by
// plog.ValidateBatches, but checked again: never panics) into headers.
func parseBatchHeaders(buf []byte, dst []batchHeader) ([]batchHeader, error) {
	for len(buf) > 0 {
		if len(buf) < batchHeaderBytes {
			return dst, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(buf))
		}
		n := int64(binary.BigEndian.Uint32(buf[8:])) + 12
		if n < batchHeaderBytes || n > int64(len(buf)) {
			return dst, fmt.Errorf("%w: batch length %d of %d", ErrBadCommand, n, len(buf))
		}
		dst = append(dst, batchHeader{
			baseOffset:      int64(binary.BigEndian.Uint64(buf)),
			bytes:           int(n),
			lastOffsetDelta: int32(binary.BigEndian.Uint32(buf[offLastOffsetDelta:])),
			maxTimestampMs:  int64(binary.BigEndian.Uint64(buf[offMaxTimestamp:])),
			producerID:      int64(binary.BigEndian.Uint64(buf[offProducerID:])),
			producerEpoch:   int16(binary.BigEndian.Uint16(buf[offProducerEpoch:])),
			baseSequence:    int32(binary.BigEndian.Uint32(buf[offBaseSequence:])),
			leaderEpoch:     int32(binary.BigEndian.Uint32(buf[offPartitionLeaderEpoch:])),
			attributes:      int16(binary.BigEndian.Uint16(buf[offAttributes:])),
			ctrlType:        -1,
		})
		if h := &dst[len(dst)-1]; h.control() {
			h.ctrlType = controlType(buf[:n])
			h.ctrlDecision = controlDecision(buf[:n])
		}
		buf = buf[n:]
	}
	return dst, nil
}

// pendingBatch is an idempotent batch that will be recorded if the append
// succeeds.
type pendingBatch struct {
	pid     int64
	epoch   int16
	meta    batchMeta
	maxTsMs int64
	txn     bool // transactional: opens the producer's transaction if none is
}

// working is one producer's state while a request is checked batch by
// batch (later batches of a request see the earlier ones).
type working struct {
	known   bool
	epoch   int16
	lastSeq int32
}

// checkOutcome is the verdict on one Produce.
type checkOutcome struct {
	errorCode int16
	duplicate bool
	dupBase   int64
	dupLast   int64
	pending   []pendingBatch
}

// checkIdempotence applies Kafka 3.x's ProducerStateManager rules to every
// batch of a request in order, against table, as if the request were
// appended at nextOffset. It changes nothing. See doc.go for the rules.
func checkIdempotence(t *producerTable, hdrs []batchHeader, nextOffset int64) checkOutcome {
	var out checkOutcome
	var ws map[int64]*working // small: producers of this request
	dups := 0
	next := nextOffset
	for i, h := range hdrs {
		base, last := next, next+int64(h.lastOffsetDelta)
		next = last + 1
		if h.control() || h.transactional() && h.producerID < 0 {
			// Markers come only from KindMarker entries; a transaction
			// needs a producer id.
			return checkOutcome{errorCode: kerr.InvalidRecord.Code}
		}
		if h.producerID < 0 {
			continue
		}
		if h.producerEpoch < 0 || h.baseSequence < 0 {
			return checkOutcome{errorCode: kerr.InvalidRecord.Code}
		}
		lastSeq := nextSeq(h.baseSequence, h.lastOffsetDelta)
		p := t.byID[h.producerID]
		if p != nil && p.epoch == h.producerEpoch {
			if m, ok := findDuplicate(p, h.baseSequence, lastSeq); ok {
				if dups == 0 {
					out.dupBase = m.baseOffset
				}
				if dups != i {
					// A duplicate after a new batch of the same request.
					return checkOutcome{errorCode: kerr.OutOfOrderSequenceNumber.Code}
				}
				dups++
				out.dupLast = m.lastOffset
				continue
			}
		}
		if ws == nil {
			ws = make(map[int64]*working, 1)
		}
		w := ws[h.producerID]
		if w == nil {
			w = &working{}
			if p != nil {
				w.known, w.epoch, w.lastSeq = true, p.epoch, p.lastSeq()
			}
			ws[h.producerID] = w
		}
		if code := checkSequence(w, h.producerEpoch, h.baseSequence); code != 0 {
			return checkOutcome{errorCode: code}
		}
		w.known, w.epoch, w.lastSeq = true, h.producerEpoch, lastSeq
		out.pending = append(out.pending, pendingBatch{
			pid: h.producerID, epoch: h.producerEpoch, maxTsMs: h.maxTimestampMs, txn: h.transactional(),
			meta: batchMeta{firstSeq: h.baseSequence, lastSeq: lastSeq, baseOffset: base, lastOffset: last},
		})
	}
	switch {
	case dups == len(hdrs):
		out.duplicate = true
	case dups > 0:
		// Some batches were appended before and some are new: clients never
		// send this; refuse rather than append half.
		return checkOutcome{errorCode: kerr.OutOfOrderSequenceNumber.Code}
	}
	return out
}

func findDuplicate(p *producer, firstSeq, lastSeq int32) (batchMeta, bool) {
	for _, m := range p.batches {
		if m.firstSeq == firstSeq && m.lastSeq == lastSeq {
			return m, true
		}
	}
	return batchMeta{}, false
}

// checkSequence is Kafka's ProducerAppendInfo.checkProducerEpoch followed by
// checkSequence.
func checkSequence(w *working, epoch int16, firstSeq int32) int16 {
	switch {
	case !w.known:
		// Unknown producer (new, evicted, or its state was lost): any
		// sequence is accepted, as Kafka >= 2.5 does (KIP-360).
		return 0
	case epoch < w.epoch:
		// Kafka >= 2.7 answers INVALID_PRODUCER_EPOCH here (PRODUCER_FENCED
		// is for the transaction coordinator).
		return kerr.InvalidProducerEpoch.Code
	case epoch > w.epoch:
		if firstSeq != 0 {
			return kerr.OutOfOrderSequenceNumber.Code
		}
		return 0
	case !inSequence(w.lastSeq, firstSeq):
		return kerr.OutOfOrderSequenceNumber.Code
	}
	return 0
}
