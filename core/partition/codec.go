package partition

import (
	"encoding/binary"
	"fmt"

	sm "github.com/lni/dragonboat/v4/statemachine"
)

// Command and result encoding. These constants are frozen: they are in
// every Raft log and snapshot ever written. A new command gets a new kind;
// a changed layout gets a new version (see doc.go).
const (
	CommandVersion uint8 = 1 // DeleteRecords, and the version-1 Produce layout
	// ProduceVersion2 is the Produce layout EncodeProduce writes: it adds
	// the proposer's max.message.bytes and the LogAppendTime stamp.
	ProduceVersion2 uint8 = 2

	KindProduce       uint8 = 1
	KindDeleteRecords uint8 = 2
	KindMarker        uint8 = 3
	kindUnknown       uint8 = 0 // results of undecodable commands only

	commandHeaderBytes  = 2                       // version, kind
	produceHeaderBytes  = commandHeaderBytes + 4  // v1: + leaderEpoch int32
	produce2HeaderBytes = produceHeaderBytes + 12 // v2: + batchBytesMax int32, logAppendTimeMs int64
	deleteCommandBytes  = commandHeaderBytes + 8  // + offset int64
	markerCommandBytes  = commandHeaderBytes + 27 // pid, epoch, commit, coordinatorEpoch, timestampMs, leaderEpoch
	// markerDecisionCommandBytes adds the decision index.
	markerDecisionCommandBytes = markerCommandBytes + 8
	resultVersion              = 1
	resultBytesV1              = 2 + 2 + 4*8 + 1   // version, kind, errorCode, 4 x int64, flags
	resultBytes                = resultBytesV1 + 8 // + raft index
	resultIndexAt              = resultBytesV1     // where the raft index sits
	resultFlagDuplicate        = 1
)

// EncodeProduce and EncodeDeleteRecords build entry payloads for
// NodeHost.SyncPropose on a partition shard. EncodeProduce writes version 2;
// version 1 is decoded forever (it is in Raft logs written before).
//
//	Produce v1:    | version=1 | kind=1 | leaderEpoch int32 | batches ... |
//	Produce v2:    | version=2 | kind=1 | leaderEpoch int32 | batchBytesMax int32 |
//	               | logAppendTimeMs int64 | batches ... |
//	DeleteRecords: | version=1 | kind=2 | offset int64 |
func EncodeProduce(p Produce) []byte {
	return AppendProduce(make([]byte, 0, ProduceCommandBytes(p)), p)
}

// ProduceCommandBytes is the length of p's encoding.
func ProduceCommandBytes(p Produce) int { return produce2HeaderBytes + len(p.Batches) }

// AppendProduce appends EncodeProduce(p) to dst (a proposer's reused
// buffer: one copy of the batches, no zeroing).
func AppendProduce(dst []byte, p Produce) []byte {
	var h [produce2HeaderBytes]byte
	h[0], h[1] = ProduceVersion2, KindProduce
	binary.BigEndian.PutUint32(h[2:], uint32(p.LeaderEpoch))
	binary.BigEndian.PutUint32(h[6:], uint32(p.BatchBytesMax))
	binary.BigEndian.PutUint64(h[10:], uint64(p.LogAppendTimeMs))
	return append(append(dst, h[:]...), p.Batches...)
}

func EncodeDeleteRecords(d DeleteRecords) []byte {
	b := make([]byte, deleteCommandBytes)
	b[0], b[1] = CommandVersion, KindDeleteRecords
	binary.BigEndian.PutUint64(b[2:], uint64(d.Offset))
	return b
}

// EncodeMarker builds a transaction-marker entry:
//
//	Marker: | version=1 | kind=3 | producerId int64 | producerEpoch int16 | commit uint8 |
//	        | coordinatorEpoch int32 | timestampMs int64 | leaderEpoch int32 |   (29 bytes)
//	        [ | decision uint64 | ]   (37 bytes, only when Decision > 0)
func EncodeMarker(m Marker) []byte {
	n := markerCommandBytes
	if m.Decision > 0 {
		n = markerDecisionCommandBytes
	}
	b := make([]byte, n)
	b[0], b[1] = CommandVersion, KindMarker
	binary.BigEndian.PutUint64(b[2:], uint64(m.ProducerID))
	binary.BigEndian.PutUint16(b[10:], uint16(m.ProducerEpoch))
	if m.Commit {
		b[12] = 1
	}
	binary.BigEndian.PutUint32(b[13:], uint32(m.CoordinatorEpoch))
	binary.BigEndian.PutUint64(b[17:], uint64(m.TimestampMs))
	binary.BigEndian.PutUint32(b[25:], uint32(m.LeaderEpoch))
	if m.Decision > 0 {
		binary.BigEndian.PutUint64(b[29:], m.Decision)
	}
	return b
}

func decodeMarker(b []byte) (Command, error) {
	if len(b) != markerCommandBytes && len(b) != markerDecisionCommandBytes || b[12] > 1 {
		return Command{}, fmt.Errorf("%w: marker of %d bytes", ErrBadCommand, len(b))
	}
	m := Marker{
		ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
		ProducerEpoch:    int16(binary.BigEndian.Uint16(b[10:])),
		Commit:           b[12] == 1,
		CoordinatorEpoch: int32(binary.BigEndian.Uint32(b[13:])),
		TimestampMs:      int64(binary.BigEndian.Uint64(b[17:])),
		LeaderEpoch:      int32(binary.BigEndian.Uint32(b[25:])),
	}
	if len(b) == markerDecisionCommandBytes {
		if m.Decision = binary.BigEndian.Uint64(b[29:]); m.Decision == 0 {
			return Command{}, fmt.Errorf("%w: marker with decision 0 in its long form", ErrBadCommand)
		}
	}
	if m.ProducerID < 0 || m.ProducerEpoch < 0 {
		return Command{}, fmt.Errorf("%w: marker for producer %d epoch %d", ErrBadCommand, m.ProducerID, m.ProducerEpoch)
	}
	return Command{Kind: KindMarker, Marker: m}, nil
}

// Command is a decoded entry payload: exactly one of Produce,
// DeleteRecords and Marker is set, per Kind.
type Command struct {
	Kind          uint8
	Produce       Produce
	DeleteRecords DeleteRecords
	Marker        Marker
}

// DecodeCommand decodes an entry payload. Produce.Batches aliases b. A
// version-1 Produce decodes with BatchBytesMax 0 (the replica's template)
// and LogAppendTimeMs -1 (CreateTime). Errors wrap ErrBadCommand; it never
// panics.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) < commandHeaderBytes {
		return Command{}, fmt.Errorf("%w: %d bytes", ErrBadCommand, len(b))
	}
	if b[0] == ProduceVersion2 && b[1] == KindProduce {
		return decodeProduce2(b)
	}
	if b[0] != CommandVersion {
		return Command{}, fmt.Errorf("%w: version %d kind %d", ErrBadCommand, b[0], b[1])
	}
	switch b[1] {
	case KindProduce:
		if len(b) < produceHeaderBytes {
			return Command{}, fmt.Errorf("%w: produce of %d bytes", ErrBadCommand, len(b))
		}
		return Command{Kind: KindProduce, Produce: Produce{
			LeaderEpoch:     int32(binary.BigEndian.Uint32(b[2:])),
			LogAppendTimeMs: -1,
			Batches:         b[produceHeaderBytes:],
		}}, nil
	case KindMarker:
		return decodeMarker(b)
	case KindDeleteRecords:
		if len(b) != deleteCommandBytes {
			return Command{}, fmt.Errorf("%w: delete-records of %d bytes", ErrBadCommand, len(b))
		}
		return Command{Kind: KindDeleteRecords, DeleteRecords: DeleteRecords{
			Offset: int64(binary.BigEndian.Uint64(b[2:])),
		}}, nil
	default:
		return Command{}, fmt.Errorf("%w: kind %d", ErrBadCommand, b[1])
	}
}

func decodeProduce2(b []byte) (Command, error) {
	if len(b) < produce2HeaderBytes {
		return Command{}, fmt.Errorf("%w: produce v2 of %d bytes", ErrBadCommand, len(b))
	}
	p := Produce{
		LeaderEpoch:     int32(binary.BigEndian.Uint32(b[2:])),
		BatchBytesMax:   int32(binary.BigEndian.Uint32(b[6:])),
		LogAppendTimeMs: int64(binary.BigEndian.Uint64(b[10:])),
		Batches:         b[produce2HeaderBytes:],
	}
	// Our encoder never writes these; refusing them keeps apply's inputs
	// in the documented ranges.
	if p.BatchBytesMax < 0 || p.LogAppendTimeMs < -1 {
		return Command{}, fmt.Errorf("%w: produce v2 with batchBytesMax %d, logAppendTimeMs %d", ErrBadCommand, p.BatchBytesMax, p.LogAppendTimeMs)
	}
	return Command{Kind: KindProduce, Produce: p}, nil
}

// Results share one layout (resultBytes, big-endian):
//
//	| version=1 | kind | errorCode int16 | baseOffset | lastOffset | logAppendTimeMs | logStartOffset | flags | index uint64 |
//
// index is the Raft index of the entry answered (stamped by Update; the
// node waits on it for min.insync.replicas). Results are never persisted
// or sent: they go from apply to the proposer on the same node, so the
// layout may grow without a new version; a result without the index
// (resultBytesV1, the earlier layout) still decodes, with Index 0.
//
// sm.Result.Value holds the error code (as uint16) as well, so a node can
// check it without decoding.
func encodeResult(kind uint8, p ProduceResult) sm.Result {
	b := make([]byte, resultBytes)
	b[0], b[1] = resultVersion, kind
	binary.BigEndian.PutUint16(b[2:], uint16(p.ErrorCode))
	binary.BigEndian.PutUint64(b[4:], uint64(p.BaseOffset))
	binary.BigEndian.PutUint64(b[12:], uint64(p.LastOffset))
	binary.BigEndian.PutUint64(b[20:], uint64(p.LogAppendTimeMs))
	binary.BigEndian.PutUint64(b[28:], uint64(p.LogStartOffset))
	if p.Duplicate {
		b[36] = resultFlagDuplicate
	}
	binary.BigEndian.PutUint64(b[resultIndexAt:], p.Index)
	return sm.Result{Value: uint64(uint16(p.ErrorCode)), Data: b}
}

// stampIndex records the Raft index of the entry r answers (see the
// layout above).
func stampIndex(r *sm.Result, index uint64) {
	if len(r.Data) == resultBytes {
		binary.BigEndian.PutUint64(r.Data[resultIndexAt:], index)
	}
}

func encodeProduceResult(p ProduceResult) sm.Result { return encodeResult(KindProduce, p) }

func encodeDeleteRecordsResult(d DeleteRecordsResult) sm.Result {
	return encodeResult(KindDeleteRecords, ProduceResult{
		ErrorCode: d.ErrorCode, BaseOffset: -1, LastOffset: -1, LogAppendTimeMs: -1,
		LogStartOffset: d.LogStartOffset,
	})
}

func decodeResult(r sm.Result) (uint8, ProduceResult, error) {
	b := r.Data
	if len(b) != resultBytes && len(b) != resultBytesV1 || b[0] != resultVersion {
		return 0, ProduceResult{}, fmt.Errorf("%w: result of %d bytes", ErrBadCommand, len(b))
	}
	var index uint64
	if len(b) == resultBytes {
		index = binary.BigEndian.Uint64(b[resultIndexAt:])
	}
	return b[1], ProduceResult{
		ErrorCode:       int16(binary.BigEndian.Uint16(b[2:])),
		BaseOffset:      int64(binary.BigEndian.Uint64(b[4:])),
		LastOffset:      int64(binary.BigEndian.Uint64(b[12:])),
		LogAppendTimeMs: int64(binary.BigEndian.Uint64(b[20:])),
		LogStartOffset:  int64(binary.BigEndian.Uint64(b[28:])),
		Duplicate:       b[36]&resultFlagDuplicate != 0,
		Index:           index,
	}, nil
}

// DecodeProduceResult unpacks the sm.Result of a Produce entry. The result
// of an undecodable entry decodes too (its ErrorCode is INVALID_REQUEST).
func DecodeProduceResult(r sm.Result) (ProduceResult, error) {
	kind, p, err := decodeResult(r)
	if err != nil {
		return ProduceResult{}, err
	}
	if kind != KindProduce && kind != kindUnknown {
		return ProduceResult{}, fmt.Errorf("%w: result kind %d, want produce", ErrBadCommand, kind)
	}
	return p, nil
}

// DecodeMarkerResult unpacks the sm.Result of a Marker entry: the
// marker's offset in BaseOffset.
func DecodeMarkerResult(r sm.Result) (ProduceResult, error) {
	kind, p, err := decodeResult(r)
	if err != nil {
		return ProduceResult{}, err
	}
	if kind != KindMarker && kind != kindUnknown {
		return ProduceResult{}, fmt.Errorf("%w: result kind %d, want marker", ErrBadCommand, kind)
	}
	return p, nil
}

// DecodeDeleteRecordsResult unpacks the sm.Result of a DeleteRecords entry.
func DecodeDeleteRecordsResult(r sm.Result) (DeleteRecordsResult, error) {
	kind, p, err := decodeResult(r)
	if err != nil {
		return DeleteRecordsResult{}, err
	}
	if kind != KindDeleteRecords && kind != kindUnknown {
		return DeleteRecordsResult{}, fmt.Errorf("%w: result kind %d, want delete-records", ErrBadCommand, kind)
	}
	return DeleteRecordsResult{ErrorCode: p.ErrorCode, LogStartOffset: p.LogStartOffset}, nil
}
