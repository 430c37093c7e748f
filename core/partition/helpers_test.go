package partition

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"sync"
	"testing"
	"time"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"go.uber.org/goleak"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a fixed Clock (timers unused by plog and this package).
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}
func (c *fakeClock) Since(t time.Time) time.Duration                  { return c.Now().Sub(t) }
func (c *fakeClock) NewTimer(time.Duration) clock.Timer               { panic("unused") }
func (c *fakeClock) AfterFunc(time.Duration, func()) clock.Timer      { panic("unused") }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error { return nil }

// tb describes a v2 record batch to encode.
type tb struct {
	pid     int64 // -1: not idempotent
	epoch   int16
	seq     int32
	records int
	seed    byte
	txn     bool // transactional bit
}

// encode builds a real Kafka v2 record batch (base offset 0, epoch -1)
// with a valid CRC-32C over [attributes, end).
func (b tb) encode() []byte {
	if b.records == 0 {
		b.records = 1
	}
	var recs []byte
	for i := 0; i < b.records; i++ {
		var r []byte
		r = append(r, 0)
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, int64(i))
		r = binary.AppendVarint(r, -1)
		r = binary.AppendVarint(r, 4)
		r = append(r, b.seed, byte(i), byte(b.seq), byte(b.pid))
		r = binary.AppendVarint(r, 0)
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	out := make([]byte, batchHeaderBytes, batchHeaderBytes+len(recs))
	be := binary.BigEndian
	be.PutUint32(out[offPartitionLeaderEpoch:], 0xffffffff)
	out[16] = 2
	be.PutUint32(out[offLastOffsetDelta:], uint32(b.records-1))
	be.PutUint64(out[27:], 1_700_000_000_000)
	be.PutUint64(out[offMaxTimestamp:], uint64(1_700_000_000_000+b.records-1))
	be.PutUint64(out[offProducerID:], uint64(b.pid))
	if b.pid < 0 {
		be.PutUint16(out[offProducerEpoch:], 0xffff)
		be.PutUint32(out[offBaseSequence:], 0xffffffff)
	} else {
		be.PutUint16(out[offProducerEpoch:], uint16(b.epoch))
		be.PutUint32(out[offBaseSequence:], uint32(b.seq))
	}
	be.PutUint32(out[57:], uint32(b.records))
	if b.txn {
		be.PutUint16(out[offAttributes:], batchAttrTransactional)
	}
	out = append(out, recs...)
	be.PutUint32(out[8:], uint32(len(out)-12))
	be.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

func produceCmd(epoch int32, batches ...tb) []byte {
	var buf []byte
	for _, b := range batches {
		buf = append(buf, b.encode()...)
	}
	return EncodeProduce(Produce{LeaderEpoch: epoch, LogAppendTimeMs: -1, Batches: buf})
}

func testOptions(fs diskio.FS) Options {
	return Options{
		FS: fs, Dir: "/data/partitions", Clock: newFakeClock(),
		Log: plog.Options{SegmentBytesMax: 4096, IndexIntervalBytes: 512},
	}
}

// harness drives one stateMachine directly, numbering entries.
type harness struct {
	t    testing.TB
	opts Options
	reg  *Registry
	sm   *stateMachine
	next uint64 // index of the next entry
}

func openHarness(t testing.TB, opts Options) (*harness, uint64) {
	t.Helper()
	h := &harness{t: t, opts: opts, reg: NewRegistry()}
	idx := h.open()
	return h, idx
}

func (h *harness) open() uint64 {
	h.t.Helper()
	h.sm = Factory(h.opts, h.reg)(1, 1).(*stateMachine)
	idx, err := h.sm.Open(nil)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	h.next = idx + 1
	return idx
}

func (h *harness) close() {
	h.t.Helper()
	if err := h.sm.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
}

// applyAt applies one entry at index.
func (h *harness) applyAt(index uint64, cmd []byte) sm.Result {
	h.t.Helper()
	out, err := h.sm.Update([]sm.Entry{{Index: index, Cmd: cmd}})
	if err != nil {
		h.t.Fatalf("Update(%d): %v", index, err)
	}
	h.next = index + 1
	return out[0].Result
}

func (h *harness) apply(cmd []byte) sm.Result { return h.applyAt(h.next, cmd) }

func (h *harness) produce(epoch int32, batches ...tb) ProduceResult {
	h.t.Helper()
	r, err := DecodeProduceResult(h.apply(produceCmd(epoch, batches...)))
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) replica() *Replica {
	h.t.Helper()
	r, ok := h.reg.Get(1)
	if !ok {
		h.t.Fatal("replica not registered")
	}
	return r
}

// fetchAll reads every batch from the log start to the high watermark.
func fetchAll(t testing.TB, r *Replica) []byte {
	t.Helper()
	var out []byte
	off, hw := r.LogStartOffset(), r.HighWatermark()
	for off < hw {
		b, err := r.Fetch(off, 1<<20)
		if err != nil {
			t.Fatalf("Fetch(%d): %v", off, err)
		}
		if len(b) == 0 {
			t.Fatalf("Fetch(%d) below hw %d returned nothing", off, hw)
		}
		hdrs, err := parseBatchHeaders(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		last := hdrs[len(hdrs)-1]
		off = last.baseOffset + int64(last.lastOffsetDelta) + 1
		out = append(out, b...)
	}
	return out
}

// stateOf is everything that must match between replicas.
type replicaState struct {
	start, hw int64
	lastEpoch int32
	data      []byte
	producers []byte
	txns      []byte
	lso       int64
}

func stateOf(t testing.TB, h *harness) replicaState {
	t.Helper()
	r := h.replica()
	return replicaState{
		start: r.LogStartOffset(), hw: r.HighWatermark(), lastEpoch: h.sm.lastEpoch, data: fetchAll(t, r),
		producers: h.sm.producers.appendTo(nil), txns: h.sm.txns.appendTo(nil), lso: r.LastStableOffset(),
	}
}

func sameState(t testing.TB, what string, got, want replicaState) {
	t.Helper()
	if got.start != want.start || got.hw != want.hw || got.lastEpoch != want.lastEpoch {
		t.Fatalf("%s: start/hw/epoch %d/%d/%d, want %d/%d/%d", what, got.start, got.hw, got.lastEpoch, want.start, want.hw, want.lastEpoch)
	}
	if !bytes.Equal(got.data, want.data) {
		t.Fatalf("%s: fetched data differs (%d vs %d bytes)", what, len(got.data), len(want.data))
	}
	if !bytes.Equal(got.producers, want.producers) {
		t.Fatalf("%s: producer state differs", what)
	}
	if !bytes.Equal(got.txns, want.txns) || got.lso != want.lso {
		t.Fatalf("%s: transaction state differs (lso %d, want %d)", what, got.lso, want.lso)
	}
}
