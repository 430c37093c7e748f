package sim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const batchHeaderBytes = 61

// encodeBatch builds an uncompressed Kafka v2 record batch of the given
// keyed values; pid >= 0 makes it idempotent (producer id, epoch, baseSeq).
func encodeBatch(pid int64, epoch int16, baseSeq int32, keys, values [][]byte, tsMs int64) []byte {
	var recs []byte
	for i := range values {
		var r []byte
		r = append(r, 0)
		r = binary.AppendVarint(r, 0)
		r = binary.AppendVarint(r, int64(i))
		if keys[i] == nil {
			r = binary.AppendVarint(r, -1)
		} else {
			r = binary.AppendVarint(r, int64(len(keys[i])))
			r = append(r, keys[i]...)
		}
		r = binary.AppendVarint(r, int64(len(values[i])))
		r = append(r, values[i]...)
		r = binary.AppendVarint(r, 0)
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := make([]byte, batchHeaderBytes, batchHeaderBytes+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint32(b[23:], uint32(len(values)-1))
	be.PutUint64(b[27:], uint64(tsMs))
	be.PutUint64(b[35:], uint64(tsMs))
	if pid < 0 {
		epoch, baseSeq = -1, -1
	}
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], uint32(baseSeq))
	be.PutUint32(b[57:], uint32(len(values)))
	b = append(b, recs...)
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// fetchedRecord is one record of a fetched batch.
type fetchedRecord struct {
	offset int64
	value  string
	// control: a transaction marker's record (value is its raw bytes);
	// not a workload value.
	control bool
}

var errBadBatch = errors.New("sim: undecodable fetched batch")

// decodeBatches parses fetched v2 batches (uncompressed, CRC checked).
func decodeBatches(b []byte) ([]fetchedRecord, error) {
	var out []fetchedRecord
	be := binary.BigEndian
	for len(b) > 0 {
		if len(b) < batchHeaderBytes {
			return out, fmt.Errorf("%w: %d trailing bytes", errBadBatch, len(b))
		}
		size := int(be.Uint32(b[8:])) + 12
		if size < batchHeaderBytes || size > len(b) {
			return out, fmt.Errorf("%w: batch length %d of %d", errBadBatch, size, len(b))
		}
		batch := b[:size]
		b = b[size:]
		if crc32.Checksum(batch[21:], castagnoli) != be.Uint32(batch[17:]) {
			return out, fmt.Errorf("%w: CRC mismatch", errBadBatch)
		}
		if attrs := be.Uint16(batch[21:]); attrs&0x7 != 0 {
			return out, fmt.Errorf("%w: compressed batch (attrs %#x)", errBadBatch, attrs)
		}
		base := int64(be.Uint64(batch[0:]))
		control := be.Uint16(batch[21:])&0x20 != 0
		n := int(be.Uint32(batch[57:]))
		recs := batch[batchHeaderBytes:]
		for i := 0; i < n; i++ {
			l, k := binary.Varint(recs)
			if k <= 0 || l < 0 || int64(len(recs)-k) < l {
				return out, fmt.Errorf("%w: record %d length", errBadBatch, i)
			}
			rec := recs[k : k+int(l)]
			recs = recs[k+int(l):]
			r, err := parseRecord(rec)
			if err != nil {
				return out, err
			}
			r.offset += base
			r.control = control
			out = append(out, r)
		}
	}
	return out, nil
}

func parseRecord(rec []byte) (fetchedRecord, error) {
	var r fetchedRecord
	if len(rec) < 1 {
		return r, errBadBatch
	}
	rec = rec[1:] // attributes
	next := func() (int64, bool) {
		v, k := binary.Varint(rec)
		if k <= 0 {
			return 0, false
		}
		rec = rec[k:]
		return v, true
	}
	if _, ok := next(); !ok { // timestamp delta
		return r, errBadBatch
	}
	od, ok := next()
	if !ok {
		return r, errBadBatch
	}
	r.offset = od
	kl, ok := next()
	if !ok || kl > int64(len(rec)) {
		return r, errBadBatch
	}
	if kl > 0 {
		rec = rec[kl:]
	}
	vl, ok := next()
	if !ok || vl > int64(len(rec)) {
		return r, errBadBatch
	}
	if vl > 0 {
		r.value = string(rec[:vl])
	}
	return r, nil
}
