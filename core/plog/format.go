package plog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Kafka record batch v2 header (all big-endian). Frozen by the Kafka protocol.
const (
	batchHeaderBytes      = 61 // baseOffset .. recordCount
	batchLengthPrefix     = 12 // baseOffset + batchLength: batchLength counts the bytes after them
	batchMagicV2          = 2
	offBaseOffset         = 0
	offBatchLength        = 8
	offLeaderEpoch        = 12
	offMagic              = 16
	offCRC                = 17
	offAttributes         = 21 // first byte covered by the batch CRC
	offLastOffsetDelta    = 23
	offBaseTimestamp      = 27
	offMaxTimestamp       = 35
	offRecordCount        = 57
	batchBytesMin         = batchHeaderBytes
	batchPrefixCRCdBytes  = offAttributes // bytes of the batch covered by the frame header CRC
	batchAttrCompressMask = 0x07
)

// Frame header: precedes every batch in a segment file (see doc.go).
const (
	FrameHeaderBytes        = 24
	FrameMagic       uint32 = 0x43484b31 // "CHK1"
	frOffMagic              = 0
	frOffBatchLen           = 4
	frOffRaftIndex          = 8
	frOffWriteOffset        = 16
	frOffHeaderCRC          = 20
)

// Index file entries (see doc.go).
const (
	IndexEntryBytes     = 8  // relOffset uint32, position uint32
	TimeIndexEntryBytes = 12 // timestamp int64, relOffset uint32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchInfo is what the log reads from a v2 batch header; records are never
// decoded.
type batchInfo struct {
	baseOffset      int64
	size            int // whole batch, bytes (batchLength + 12)
	leaderEpoch     int32
	lastOffsetDelta int32
	maxTimestamp    int64
	recordCount     int32
}

func (b batchInfo) lastOffset() int64 { return b.baseOffset + int64(b.lastOffsetDelta) }

// parseBatchHeader decodes the fixed header of the batch at the start of buf
// and checks that its length fits in buf. It does not check the CRC.
func parseBatchHeader(buf []byte) (batchInfo, error) {
	if len(buf) < batchHeaderBytes {
		return batchInfo{}, fmt.Errorf("%w: %d bytes, shorter than a batch header (%d)", ErrCorruptBatch, len(buf), batchHeaderBytes)
	}
	batchLength := int32(binary.BigEndian.Uint32(buf[offBatchLength:]))
	size := int64(batchLength) + batchLengthPrefix
	if size < batchBytesMin || size > int64(len(buf)) {
		return batchInfo{}, fmt.Errorf("%w: batchLength %d inconsistent with %d bytes available", ErrCorruptBatch, batchLength, len(buf))
	}
	bi := decodeBatchHeader(buf)
	bi.size = int(size)
	return bi, nil
}

// decodeBatchHeader decodes the fixed fields of a batch header (buf holds at
// least batchHeaderBytes); size is left to the caller.
func decodeBatchHeader(buf []byte) batchInfo {
	return batchInfo{
		baseOffset:      int64(binary.BigEndian.Uint64(buf[offBaseOffset:])),
		leaderEpoch:     int32(binary.BigEndian.Uint32(buf[offLeaderEpoch:])),
		lastOffsetDelta: int32(binary.BigEndian.Uint32(buf[offLastOffsetDelta:])),
		maxTimestamp:    int64(binary.BigEndian.Uint64(buf[offMaxTimestamp:])),
		recordCount:     int32(binary.BigEndian.Uint32(buf[offRecordCount:])),
	}
}

// batchCRCValid reports whether the batch's stored CRC-32C matches its bytes.
func batchCRCValid(batch []byte) bool {
	return binary.BigEndian.Uint32(batch[offCRC:]) == crc32.Checksum(batch[offAttributes:], castagnoli)
}

// validateOne checks the batch at the start of buf and returns its header.
// Order follows Kafka: framing, size, magic, CRC, counts.
func validateOne(buf []byte, batchBytesMax int, checkCRC bool) (batchInfo, error) {
	if len(buf) < batchLengthPrefix {
		return batchInfo{}, fmt.Errorf("%w: %d trailing bytes", ErrCorruptBatch, len(buf))
	}
	batchLength := int32(binary.BigEndian.Uint32(buf[offBatchLength:]))
	if size := int64(batchLength) + batchLengthPrefix; batchLength >= 0 && size > int64(batchBytesMax) {
		return batchInfo{}, fmt.Errorf("%w: batch of %d bytes, max %d", ErrBatchTooLarge, size, batchBytesMax)
	}
	bi, err := parseBatchHeader(buf)
	if err != nil {
		return bi, err
	}
	if m := int8(buf[offMagic]); m != batchMagicV2 {
		return bi, fmt.Errorf("%w: magic %d, want %d", ErrInvalidRecord, m, batchMagicV2)
	}
	if checkCRC && !batchCRCValid(buf[:bi.size]) {
		return bi, fmt.Errorf("%w: CRC-32C mismatch", ErrCorruptBatch)
	}
	if bi.recordCount <= 0 || int64(bi.recordCount) != int64(bi.lastOffsetDelta)+1 {
		return bi, fmt.Errorf("%w: recordCount %d, lastOffsetDelta %d", ErrInvalidRecord, bi.recordCount, bi.lastOffsetDelta)
	}
	return bi, nil
}

// ValidateBatches checks a buffer of one or more concatenated v2 record
// batches as a producer sent them, and returns how many there are. It is
// pure: it never modifies buf. Errors wrap ErrCorruptBatch, ErrInvalidRecord
// or ErrBatchTooLarge (see doc.go for the Kafka error codes).
func ValidateBatches(buf []byte, batchBytesMax int) (int, error) {
	return validateBatches(buf, batchBytesMax, true)
}

// validateBatches is ValidateBatches; without checkCRC it skips the
// batches' CRC-32C (for bytes whose CRC the caller just checked).
func validateBatches(buf []byte, batchBytesMax int, checkCRC bool) (int, error) {
	if len(buf) == 0 {
		return 0, fmt.Errorf("%w: no batch", ErrInvalidRecord)
	}
	if len(buf) > AppendBytesMax {
		return 0, fmt.Errorf("%w: append of %d bytes, max %d", ErrBatchTooLarge, len(buf), AppendBytesMax)
	}
	n := 0
	for pos := 0; pos < len(buf); n++ {
		bi, err := validateOne(buf[pos:], batchBytesMax, checkCRC)
		if err != nil {
			return 0, fmt.Errorf("batch %d at byte %d: %w", n, pos, err)
		}
		pos += bi.size
	}
	return n, nil
}

// frameHeader is the decoded per-batch frame header.
type frameHeader struct {
	batchLen    uint32 // bytes of the batch after the header
	raftIndex   uint64
	writeOffset uint32 // bytes from the start of the write holding this frame to the frame
}

func (h frameHeader) frameBytes() int64 { return FrameHeaderBytes + int64(h.batchLen) }

// frameHeaderCRC covers the frame header before its CRC field and the
// batch's first 21 bytes (baseOffset .. batch CRC), which the batch CRC does not.
func frameHeaderCRC(hdr, batchPrefix []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[:frOffHeaderCRC])
	return crc32.Update(c, castagnoli, batchPrefix[:batchPrefixCRCdBytes])
}

// putFrameHeader encodes h into dst[:FrameHeaderBytes]; batch must already
// carry its final base offset and leader epoch.
func putFrameHeader(dst []byte, h frameHeader, batch []byte) {
	binary.BigEndian.PutUint32(dst[frOffMagic:], FrameMagic)
	binary.BigEndian.PutUint32(dst[frOffBatchLen:], h.batchLen)
	binary.BigEndian.PutUint64(dst[frOffRaftIndex:], h.raftIndex)
	binary.BigEndian.PutUint32(dst[frOffWriteOffset:], h.writeOffset)
	binary.BigEndian.PutUint32(dst[frOffHeaderCRC:], frameHeaderCRC(dst, batch))
}

var errBadFrame = errors.New("bad frame")

// parseFrame decodes the frame at the start of buf (which must hold at least
// FrameHeaderBytes+batchPrefixCRCdBytes bytes), checks its magic, header CRC
// and length bounds. It does not check the batch CRC.
func parseFrame(buf []byte) (frameHeader, error) {
	if len(buf) < FrameHeaderBytes+batchHeaderBytes {
		return frameHeader{}, fmt.Errorf("%w: %d bytes, short header", errBadFrame, len(buf))
	}
	if m := binary.BigEndian.Uint32(buf[frOffMagic:]); m != FrameMagic {
		return frameHeader{}, fmt.Errorf("%w: magic %#x", errBadFrame, m)
	}
	h := frameHeader{
		batchLen:    binary.BigEndian.Uint32(buf[frOffBatchLen:]),
		raftIndex:   binary.BigEndian.Uint64(buf[frOffRaftIndex:]),
		writeOffset: binary.BigEndian.Uint32(buf[frOffWriteOffset:]),
	}
	if got, want := binary.BigEndian.Uint32(buf[frOffHeaderCRC:]), frameHeaderCRC(buf, buf[FrameHeaderBytes:]); got != want {
		return frameHeader{}, fmt.Errorf("%w: header CRC %#x, want %#x", errBadFrame, got, want)
	}
	batchLength := int64(binary.BigEndian.Uint32(buf[FrameHeaderBytes+offBatchLength:])) + batchLengthPrefix
	if int64(h.batchLen) != batchLength || h.batchLen < batchBytesMin || h.batchLen > AppendBytesMax {
		return frameHeader{}, fmt.Errorf("%w: frame length %d, batch length %d", errBadFrame, h.batchLen, batchLength)
	}
	if int8(buf[FrameHeaderBytes+offMagic]) != batchMagicV2 {
		return frameHeader{}, fmt.Errorf("%w: batch magic %d", errBadFrame, int8(buf[FrameHeaderBytes+offMagic]))
	}
	return h, nil
}

// indexEntry maps a batch's offset (relative to the segment base) to the
// position of its frame. timeEntry: every batch whose base offset is below
// base+rel has maxTimestamp <= ts.
type indexEntry struct{ rel, pos uint32 }
type timeEntry struct {
	ts  int64
	rel uint32
}

func encodeIndex(es []indexEntry) []byte {
	b := make([]byte, len(es)*IndexEntryBytes)
	for i, e := range es {
		binary.BigEndian.PutUint32(b[i*IndexEntryBytes:], e.rel)
		binary.BigEndian.PutUint32(b[i*IndexEntryBytes+4:], e.pos)
	}
	return b
}

func decodeIndex(b []byte) ([]indexEntry, bool) {
	if len(b)%IndexEntryBytes != 0 {
		return nil, false
	}
	es := make([]indexEntry, len(b)/IndexEntryBytes)
	for i := range es {
		es[i] = indexEntry{binary.BigEndian.Uint32(b[i*IndexEntryBytes:]), binary.BigEndian.Uint32(b[i*IndexEntryBytes+4:])}
		if i > 0 && (es[i].rel <= es[i-1].rel || es[i].pos <= es[i-1].pos) {
			return nil, false
		}
	}
	return es, true
}

func encodeTimeIndex(es []timeEntry) []byte {
	b := make([]byte, len(es)*TimeIndexEntryBytes)
	for i, e := range es {
		binary.BigEndian.PutUint64(b[i*TimeIndexEntryBytes:], uint64(e.ts))
		binary.BigEndian.PutUint32(b[i*TimeIndexEntryBytes+8:], e.rel)
	}
	return b
}

func decodeTimeIndex(b []byte) ([]timeEntry, bool) {
	if len(b)%TimeIndexEntryBytes != 0 {
		return nil, false
	}
	es := make([]timeEntry, len(b)/TimeIndexEntryBytes)
	for i := range es {
		es[i] = timeEntry{int64(binary.BigEndian.Uint64(b[i*TimeIndexEntryBytes:])), binary.BigEndian.Uint32(b[i*TimeIndexEntryBytes+8:])}
		if i > 0 && (es[i].ts <= es[i-1].ts || es[i].rel < es[i-1].rel) {
			return nil, false
		}
	}
	return es, true
}

// Checkpoint file (see doc.go).
const (
	CheckpointMagic      uint32 = 0x43484b43 // "CHKC"
	CheckpointVersion    uint16 = 1
	checkpointFixedBytes        = 80
	checkpointEpochBytes        = 12
	checkpointTrailerCRC        = 4
	checkpointBytesMax          = checkpointFixedBytes + EpochEntriesMax*checkpointEpochBytes + checkpointTrailerCRC
)

// checkpoint is the recovery checkpoint: the durable log start offset and a
// verified, synced position in one segment from which recovery resumes.
type checkpoint struct {
	logStart     int64
	activeBase   int64 // segment the position refers to
	verifiedPos  int64 // frames in [0, verifiedPos) of that segment were synced and verified
	nextOffset   int64 // offset after the last batch below verifiedPos
	raftIndex    uint64
	maxTs        int64 // largest batch maxTimestamp in [0, verifiedPos), -1 if none
	maxTsOffset  int64 // base offset of that batch, -1 if none
	indexEntries uint32
	timeEntries  uint32
	epochs       []epochEntry
}

type epochEntry struct {
	epoch int32
	start int64
}

func encodeCheckpoint(c checkpoint) []byte {
	b := make([]byte, checkpointFixedBytes+len(c.epochs)*checkpointEpochBytes+checkpointTrailerCRC)
	be := binary.BigEndian
	be.PutUint32(b[0:], CheckpointMagic)
	be.PutUint16(b[4:], CheckpointVersion)
	be.PutUint64(b[8:], uint64(c.logStart))
	be.PutUint64(b[16:], uint64(c.activeBase))
	be.PutUint64(b[24:], uint64(c.verifiedPos))
	be.PutUint64(b[32:], uint64(c.nextOffset))
	be.PutUint64(b[40:], c.raftIndex)
	be.PutUint64(b[48:], uint64(c.maxTs))
	be.PutUint64(b[56:], uint64(c.maxTsOffset))
	be.PutUint32(b[64:], c.indexEntries)
	be.PutUint32(b[68:], c.timeEntries)
	be.PutUint32(b[72:], uint32(len(c.epochs)))
	p := checkpointFixedBytes
	for _, e := range c.epochs {
		be.PutUint32(b[p:], uint32(e.epoch))
		be.PutUint64(b[p+4:], uint64(e.start))
		p += checkpointEpochBytes
	}
	be.PutUint32(b[p:], crc32.Checksum(b[:p], castagnoli))
	return b
}

func decodeCheckpoint(b []byte) (checkpoint, error) {
	be := binary.BigEndian
	if len(b) < checkpointFixedBytes+checkpointTrailerCRC || len(b) > checkpointBytesMax {
		return checkpoint{}, fmt.Errorf("checkpoint of %d bytes", len(b))
	}
	p := len(b) - checkpointTrailerCRC
	if got, want := be.Uint32(b[p:]), crc32.Checksum(b[:p], castagnoli); got != want {
		return checkpoint{}, fmt.Errorf("checkpoint CRC %#x, want %#x", got, want)
	}
	if be.Uint32(b[0:]) != CheckpointMagic || be.Uint16(b[4:]) != CheckpointVersion {
		return checkpoint{}, fmt.Errorf("checkpoint magic %#x version %d", be.Uint32(b[0:]), be.Uint16(b[4:]))
	}
	c := checkpoint{
		logStart: int64(be.Uint64(b[8:])), activeBase: int64(be.Uint64(b[16:])),
		verifiedPos: int64(be.Uint64(b[24:])), nextOffset: int64(be.Uint64(b[32:])),
		raftIndex: be.Uint64(b[40:]), maxTs: int64(be.Uint64(b[48:])), maxTsOffset: int64(be.Uint64(b[56:])),
		indexEntries: be.Uint32(b[64:]), timeEntries: be.Uint32(b[68:]),
	}
	n := int(be.Uint32(b[72:]))
	if checkpointFixedBytes+n*checkpointEpochBytes != p {
		return checkpoint{}, fmt.Errorf("checkpoint with %d epochs in %d bytes", n, len(b))
	}
	for i := 0; i < n; i++ {
		q := checkpointFixedBytes + i*checkpointEpochBytes
		c.epochs = append(c.epochs, epochEntry{int32(be.Uint32(b[q:])), int64(be.Uint64(b[q+4:]))})
	}
	if c.logStart < 0 || c.activeBase < 0 || c.verifiedPos < 0 || c.nextOffset < c.activeBase {
		return checkpoint{}, fmt.Errorf("checkpoint fields out of range: %+v", c)
	}
	return c, nil
}

// Segment file names: 20-digit zero-padded base offset, as Kafka.
const (
	segmentSuffix     = ".log"
	indexSuffix       = ".index"
	timeIndexSuffix   = ".timeindex"
	tmpSuffix         = ".tmp"
	checkpointName    = "plog.checkpoint"
	segmentNameDigits = 20
)

func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }
