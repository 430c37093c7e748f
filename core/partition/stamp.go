package partition

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/chronik-go/chronik/core/plog"
)

// Record batch v2 fields StampLogAppendTime rewrites.
const (
	offBatchCRC          = 17
	offAttributes        = 21
	attrLogAppendTime    = 0x08 // timestamp type bit of the int16 attributes
	batchLengthPrefixLen = 12   // baseOffset int64 + batchLength int32
)

// StampLogAppendTime rewrites every v2 batch of batches (concatenated) in
// place as Kafka's broker does for message.timestamp.type=LogAppendTime
// (DefaultRecordBatch.setMaxTimestamp(LOG_APPEND_TIME, tsMs)): the
// timestamp-type bit (0x08) of the attributes is set, MaxTimestamp becomes
// tsMs, and the batch CRC-32C (Castagnoli, over attributes..end, stored
// big-endian at offset 17) is recomputed. Records and their deltas are not
// touched: consumers take a LogAppendTime record's timestamp from the
// batch's MaxTimestamp (franz-go kgo does; so does the Java client).
//
// The partition leader calls it once before proposing, so the Raft log
// carries the final bytes and every replica stores the same ones (and the
// time index indexes the append time). The existing CRCs are verified
// first (plog.ValidateBatches): recomputing the CRC of a corrupted batch
// would launder the corruption. Errors are plog's validation sentinels
// (ErrCorruptBatch, ErrInvalidRecord, ErrBatchTooLarge); on error nothing
// is changed.
func StampLogAppendTime(batches []byte, tsMs int64) error {
	if _, err := plog.ValidateBatches(batches, plog.BatchBytesLimit); err != nil {
		return fmt.Errorf("partition: stamp log append time: %w", err)
	}
	for b := batches; len(b) > 0; {
		n := int(binary.BigEndian.Uint32(b[8:])) + batchLengthPrefixLen // validated above
		batch := b[:n]
		attrs := binary.BigEndian.Uint16(batch[offAttributes:])
		binary.BigEndian.PutUint16(batch[offAttributes:], attrs|attrLogAppendTime)
		binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(tsMs))
		binary.BigEndian.PutUint32(batch[offBatchCRC:], crc32.Checksum(batch[offAttributes:], castagnoli))
		b = b[n:]
	}
	return nil
}
