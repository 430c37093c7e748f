package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// On-disk format (frozen; a change bumps FormatVersion and formatMarker).
//
//	segment  := batch*
//	batch    := magic:u32 crc:u32 bodyLen:u32 seq:u64 body[bodyLen]
//	            crc = CRC-32C over bodyLen, seq and body
//	body     := record+
//	record   := crc:u32 payloadLen:u32 type:u8 payload[payloadLen]
//	            crc = CRC-32C over payloadLen, type and payload
//
// One batch is one Write (one group commit). Its CRC lets recovery tell a
// torn write (the last batch, bad, nothing valid after it) from corruption;
// the record CRC lets a read of one record verify it without the batch.
// Integers are little-endian. Payloads by type:
//
//	recEntries, recRelocated:
//	            shard:u64 replica:u64 first:u64 count:u32
//	            count x (term:u64 size:u32)   -- entry i has index first+i
//	            count x entry bytes (pb.Entry.MarshalTo, size bytes each)
//	recState:   shard replica term:u64 vote:u64 commit:u64
//	recBootstrap: shard replica pb.Bootstrap bytes
//	recSnapshot:  shard replica pb.Snapshot bytes
//	recImport:    shard replica pb.Snapshot bytes
//	recCompact:   shard replica index:u64
//	recRemove:    shard replica
//	recCheckpoint: count:u32, count x node (see encodeCheckpoint)
//
// An entry is located by (shard, replica, index) through the in-memory
// index (segment, record offset, record length); inside the record, the
// table gives its term and its byte range without decoding the others.
const (
	batchMagic       = 0x31424b43 // "CKB1"
	batchHeaderBytes = 20
	recHeaderBytes   = 9
	nodeKeyBytes     = 16
	entriesFixed     = nodeKeyBytes + 8 + 4
	entryTableBytes  = 12

	// RecordBytesMax bounds one record's payload (a corrupt length is
	// refused before anything is allocated for it).
	RecordBytesMax = 1 << 30
	// BatchBytesMax bounds one batch body.
	BatchBytesMax = 1<<31 - 1
)

type recType uint8

const (
	recEntries recType = iota + 1
	recRelocated
	recState
	recBootstrap
	recSnapshot
	recImport
	recCompact
	recRemove
	recCheckpoint
	recTypeEnd
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadRecord: a record or batch failed its framing or CRC checks.
var errBadRecord = errors.New("bad record")

// errStale: a valid batch older than the one before it (wraps
// errBadRecord: in the newest segment it ends the log like a torn write).
var errStale = fmt.Errorf("%w: an older batch (a reused segment's old bytes)", errBadRecord)

type nodeKey struct{ shard, replica uint64 }

// appendRecord appends a record of type t whose payload is built by fill
// (given the payload slice, zeroed).
func appendRecord(dst []byte, t recType, payloadLen int, fill func(p []byte)) []byte {
	return appendRecordFull(dst, t, payloadLen, func(p []byte) {
		clear(p)
		fill(p)
	})
}

// appendRecordFull is appendRecord for a fill that writes every byte of
// the payload: the payload slice is not zeroed first (dst may be a reused
// buffer whose spare capacity holds an earlier request's bytes).
func appendRecordFull(dst []byte, t recType, payloadLen int, fill func(p []byte)) []byte {
	start := len(dst)
	dst = slices.Grow(dst, recHeaderBytes+payloadLen)[:start+recHeaderBytes+payloadLen]
	rec := dst[start:]
	binary.LittleEndian.PutUint32(rec[4:], uint32(payloadLen))
	rec[8] = byte(t)
	fill(rec[recHeaderBytes:])
	binary.LittleEndian.PutUint32(rec[0:], crc32.Checksum(rec[4:], castagnoli))
	return dst
}

// parseRecord checks the record at the start of buf and returns its type,
// payload and total length.
func parseRecord(buf []byte) (recType, []byte, int, error) {
	return parseRecordVerify(buf, true)
}

// parseRecordVerify is parseRecord; without verify it skips the CRC (for
// records this process has just encoded; framing is still checked).
func parseRecordVerify(buf []byte, verify bool) (recType, []byte, int, error) {
	if len(buf) < recHeaderBytes {
		return 0, nil, 0, fmt.Errorf("%w: %d bytes, short record header", errBadRecord, len(buf))
	}
	n := binary.LittleEndian.Uint32(buf[4:])
	if n > RecordBytesMax || int(n) > len(buf)-recHeaderBytes {
		return 0, nil, 0, fmt.Errorf("%w: payload length %d, %d bytes available", errBadRecord, n, len(buf)-recHeaderBytes)
	}
	end := recHeaderBytes + int(n)
	if verify {
		if got, want := crc32.Checksum(buf[4:end], castagnoli), binary.LittleEndian.Uint32(buf); got != want {
			return 0, nil, 0, fmt.Errorf("%w: record CRC %#x, want %#x", errBadRecord, got, want)
		}
	}
	t := recType(buf[8])
	if t == 0 || t >= recTypeEnd {
		return 0, nil, 0, fmt.Errorf("%w: record type %d", errBadRecord, t)
	}
	return t, buf[recHeaderBytes:end], end, nil
}

// frameBatch fills the batch header in front of body (buf[:batchHeaderBytes]
// is reserved for it).
func frameBatch(buf []byte, seq uint64) {
	binary.LittleEndian.PutUint32(buf[0:], batchMagic)
	binary.LittleEndian.PutUint32(buf[8:], uint32(len(buf)-batchHeaderBytes))
	binary.LittleEndian.PutUint64(buf[12:], seq)
	binary.LittleEndian.PutUint32(buf[4:], crc32.Checksum(buf[8:], castagnoli))
}

// parseBatch checks the batch at the start of buf; it returns the batch's
// sequence number, body and total length.
func parseBatch(buf []byte) (uint64, []byte, int, error) {
	if len(buf) < batchHeaderBytes {
		return 0, nil, 0, fmt.Errorf("%w: %d bytes, short batch header", errBadRecord, len(buf))
	}
	if m := binary.LittleEndian.Uint32(buf); m != batchMagic {
		return 0, nil, 0, fmt.Errorf("%w: batch magic %#x", errBadRecord, m)
	}
	n := binary.LittleEndian.Uint32(buf[8:])
	if uint64(n) > uint64(len(buf)-batchHeaderBytes) {
		return 0, nil, 0, fmt.Errorf("%w: batch length %d, %d bytes available", errBadRecord, n, len(buf)-batchHeaderBytes)
	}
	end := batchHeaderBytes + int(n)
	if got, want := crc32.Checksum(buf[8:end], castagnoli), binary.LittleEndian.Uint32(buf[4:]); got != want {
		return 0, nil, 0, fmt.Errorf("%w: batch CRC %#x, want %#x", errBadRecord, got, want)
	}
	return binary.LittleEndian.Uint64(buf[12:]), buf[batchHeaderBytes:end], end, nil
}

func putKey(p []byte, k nodeKey) {
	binary.LittleEndian.PutUint64(p, k.shard)
	binary.LittleEndian.PutUint64(p[8:], k.replica)
}

func getKey(p []byte) (nodeKey, error) {
	if len(p) < nodeKeyBytes {
		return nodeKey{}, fmt.Errorf("%w: payload of %d bytes", errBadRecord, len(p))
	}
	return nodeKey{binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:])}, nil
}

// appendEntries encodes ents (contiguous indexes) as a record of type t.
func appendEntries(dst []byte, t recType, k nodeKey, ents []pb.Entry) []byte {
	n := entriesFixed + entryTableBytes*len(ents)
	for i := range ents {
		n += ents[i].Size()
	}
	// Every byte is written: key, first, count, the table, and the
	// entries (their total checked against the size below).
	return appendRecordFull(dst, t, n, func(p []byte) {
		putKey(p, k)
		binary.LittleEndian.PutUint64(p[16:], ents[0].Index)
		binary.LittleEndian.PutUint32(p[24:], uint32(len(ents)))
		tab := p[entriesFixed:]
		data := tab[entryTableBytes*len(ents):]
		off := 0
		for i := range ents {
			if ents[i].Index != ents[0].Index+uint64(i) {
				panic(fmt.Sprintf("wal: entries not contiguous: index %d at position %d, first %d", ents[i].Index, i, ents[0].Index))
			}
			sz, _ := ents[i].MarshalTo(data[off:])
			binary.LittleEndian.PutUint64(tab[i*entryTableBytes:], ents[i].Term)
			binary.LittleEndian.PutUint32(tab[i*entryTableBytes+8:], uint32(sz))
			off += sz
		}
		if off != len(data) {
			panic(fmt.Sprintf("wal: entries marshalled to %d bytes, sized %d", off, len(data)))
		}
	})
}

// appendEntriesRange encodes the entries [lo, hi] of v (a verified
// record) as a record of type t, copying their table rows and bytes as
// they are: nothing is decoded (relocation moves entries this way).
func appendEntriesRange(dst []byte, t recType, v entriesView, lo, hi uint64) []byte {
	if lo < v.first || hi > v.last() || lo > hi {
		panic(fmt.Sprintf("wal: entries [%d, %d] outside the record's [%d, %d]", lo, hi, v.first, v.last()))
	}
	i, j := int(lo-v.first), int(hi-v.first)+1
	start := 0
	for k := 0; k < i; k++ {
		start += int(binary.LittleEndian.Uint32(v.tab[k*entryTableBytes+8:]))
	}
	end := start
	for k := i; k < j; k++ {
		end += int(binary.LittleEndian.Uint32(v.tab[k*entryTableBytes+8:]))
	}
	tab := v.tab[i*entryTableBytes : j*entryTableBytes]
	return appendRecordFull(dst, t, entriesFixed+len(tab)+end-start, func(p []byte) {
		putKey(p, v.key)
		binary.LittleEndian.PutUint64(p[16:], lo)
		binary.LittleEndian.PutUint32(p[24:], uint32(j-i))
		copy(p[entriesFixed+copy(p[entriesFixed:], tab):], v.data[start:end])
	})
}

// entriesView is a decoded entries record header: the table, not the
// entries.
type entriesView struct {
	key   nodeKey
	first uint64
	count int
	tab   []byte
	data  []byte
}

func viewEntries(p []byte) (entriesView, error) {
	k, err := getKey(p)
	if err != nil || len(p) < entriesFixed {
		return entriesView{}, fmt.Errorf("%w: entries payload of %d bytes", errBadRecord, len(p))
	}
	v := entriesView{key: k, first: binary.LittleEndian.Uint64(p[16:]), count: int(binary.LittleEndian.Uint32(p[24:]))}
	rest := p[entriesFixed:]
	if v.count == 0 || uint64(v.count)*entryTableBytes > uint64(len(rest)) || v.first == 0 || v.first+uint64(v.count) < v.first {
		return entriesView{}, fmt.Errorf("%w: entries record: first %d, count %d, %d bytes", errBadRecord, v.first, v.count, len(rest))
	}
	v.tab, v.data = rest[:v.count*entryTableBytes], rest[v.count*entryTableBytes:]
	total := uint64(0)
	for i := 0; i < v.count; i++ {
		total += uint64(binary.LittleEndian.Uint32(v.tab[i*entryTableBytes+8:]))
	}
	if total != uint64(len(v.data)) {
		return entriesView{}, fmt.Errorf("%w: entries record: sizes add to %d, %d data bytes", errBadRecord, total, len(v.data))
	}
	return v, nil
}

func (v entriesView) last() uint64 { return v.first + uint64(v.count) - 1 }

// each decodes the entries with index in [lo, hi] in order and calls fn
// with each until it returns false.
func (v entriesView) each(lo, hi uint64, fn func(pb.Entry) bool) error {
	off := 0
	for i := 0; i < v.count; i++ {
		idx := v.first + uint64(i)
		sz := int(binary.LittleEndian.Uint32(v.tab[i*entryTableBytes+8:]))
		if idx > hi {
			return nil
		}
		if idx >= lo {
			e, err := unmarshalEntry(v.data[off : off+sz])
			if err != nil {
				return err
			}
			if e.Index != idx || e.Term != binary.LittleEndian.Uint64(v.tab[i*entryTableBytes:]) {
				return fmt.Errorf("%w: entry %d (term %d) where the table says index %d", errBadRecord, e.Index, e.Term, idx)
			}
			if !fn(e) {
				return nil
			}
		}
		off += sz
	}
	return nil
}

// unmarshalEntry decodes one entry; dragonboat's decoder may panic on bytes
// it did not write (they passed a CRC, so this is corruption, not a bug of
// ours): that becomes an error.
func unmarshalEntry(b []byte) (e pb.Entry, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: entry does not decode: %v", errBadRecord, r)
		}
	}()
	if err := e.Unmarshal(b); err != nil {
		return pb.Entry{}, fmt.Errorf("%w: entry does not decode: %v", errBadRecord, err)
	}
	return e, nil
}

func appendState(dst []byte, k nodeKey, st pb.State) []byte {
	return appendRecord(dst, recState, nodeKeyBytes+24, func(p []byte) {
		putKey(p, k)
		binary.LittleEndian.PutUint64(p[16:], st.Term)
		binary.LittleEndian.PutUint64(p[24:], st.Vote)
		binary.LittleEndian.PutUint64(p[32:], st.Commit)
	})
}

func decodeState(p []byte) (nodeKey, pb.State, error) {
	k, err := getKey(p)
	if err != nil || len(p) != nodeKeyBytes+24 {
		return k, pb.State{}, fmt.Errorf("%w: state payload of %d bytes", errBadRecord, len(p))
	}
	return k, pb.State{Term: binary.LittleEndian.Uint64(p[16:]), Vote: binary.LittleEndian.Uint64(p[24:]),
		Commit: binary.LittleEndian.Uint64(p[32:])}, nil
}

func appendIndexRec(dst []byte, t recType, k nodeKey, index uint64) []byte {
	return appendRecord(dst, t, nodeKeyBytes+8, func(p []byte) {
		putKey(p, k)
		binary.LittleEndian.PutUint64(p[16:], index)
	})
}

func decodeIndexRec(p []byte) (nodeKey, uint64, error) {
	k, err := getKey(p)
	if err != nil || len(p) != nodeKeyBytes+8 {
		return k, 0, fmt.Errorf("%w: payload of %d bytes", errBadRecord, len(p))
	}
	return k, binary.LittleEndian.Uint64(p[16:]), nil
}

func appendKeyOnly(dst []byte, t recType, k nodeKey) []byte {
	return appendRecord(dst, t, nodeKeyBytes, func(p []byte) { putKey(p, k) })
}

type marshaler interface {
	Size() int
	MarshalTo([]byte) (int, error)
}

func appendMsg(dst []byte, t recType, k nodeKey, m marshaler) []byte {
	return appendRecord(dst, t, nodeKeyBytes+m.Size(), func(p []byte) {
		putKey(p, k)
		if _, err := m.MarshalTo(p[nodeKeyBytes:]); err != nil {
			panic(fmt.Sprintf("wal: marshal %T: %v", m, err))
		}
	})
}

func decodeSnapshot(b []byte) (ss pb.Snapshot, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: snapshot does not decode: %v", errBadRecord, r)
		}
	}()
	if err := ss.Unmarshal(b); err != nil {
		return pb.Snapshot{}, fmt.Errorf("%w: snapshot does not decode: %v", errBadRecord, err)
	}
	return ss, nil
}

func decodeBootstrap(b []byte) (bs pb.Bootstrap, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: bootstrap does not decode: %v", errBadRecord, r)
		}
	}()
	if err := bs.Unmarshal(b); err != nil {
		return pb.Bootstrap{}, fmt.Errorf("%w: bootstrap does not decode: %v", errBadRecord, err)
	}
	return bs, nil
}
