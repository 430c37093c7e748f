package plog

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"hash/crc32"
)

// testBatch describes a v2 record batch to encode.
type testBatch struct {
	records   int
	valueSize int
	baseTsMs  int64
	tsStepMs  int64 // timestamp delta between records
	gzip      bool
	seed      byte
}

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// encode builds a real Kafka v2 record batch (base offset 0, epoch -1) with a
// valid CRC-32C. With gzip the records section is compressed, as a producer would.
func (tb testBatch) encode() []byte {
	var recs []byte
	for i := 0; i < tb.records; i++ {
		var r []byte
		r = append(r, 0) // attributes
		r = appendVarint(r, int64(i)*tb.tsStepMs)
		r = appendVarint(r, int64(i))
		r = appendVarint(r, -1) // null key
		r = appendVarint(r, int64(tb.valueSize))
		for j := 0; j < tb.valueSize; j++ {
			r = append(r, tb.seed+byte(i+j))
		}
		r = appendVarint(r, 0) // headers
		recs = appendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	var attrs int16
	if tb.gzip {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(recs)
		w.Close()
		recs = buf.Bytes()
		attrs = 1
	}
	b := make([]byte, batchHeaderBytes, batchHeaderBytes+len(recs))
	be := binary.BigEndian
	be.PutUint64(b[offBaseOffset:], 0)
	be.PutUint32(b[offLeaderEpoch:], 0xffffffff)
	b[offMagic] = 2
	be.PutUint16(b[offAttributes:], uint16(attrs))
	be.PutUint32(b[offLastOffsetDelta:], uint32(tb.records-1))
	be.PutUint64(b[offBaseTimestamp:], uint64(tb.baseTsMs))
	be.PutUint64(b[offMaxTimestamp:], uint64(tb.baseTsMs+int64(tb.records-1)*tb.tsStepMs))
	be.PutUint64(b[43:], 0xffffffffffffffff) // producerId -1
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[offRecordCount:], uint32(tb.records))
	b = append(b, recs...)
	be.PutUint32(b[offBatchLength:], uint32(len(b)-batchLengthPrefix))
	fixCRC(b)
	return b
}

func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

func mkBatch(records, valueSize int, tsMs int64) []byte {
	return testBatch{records: records, valueSize: valueSize, baseTsMs: tsMs, tsStepMs: 1}.encode()
}

// splitBatches splits concatenated batches.
func splitBatches(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := int(binary.BigEndian.Uint32(b[offBatchLength:])) + batchLengthPrefix
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// sameBatchModuloHeader reports whether got equals want except for the base
// offset and leader epoch the log stamps.
func sameBatchModuloHeader(got, want []byte) bool {
	return len(got) == len(want) && bytes.Equal(got[offMagic:], want[offMagic:]) &&
		bytes.Equal(got[offBatchLength:offLeaderEpoch], want[offBatchLength:offLeaderEpoch])
}
