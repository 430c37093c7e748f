package plog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/diskio"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is a manually advanced Clock (timers are not needed by plog).
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
func (c *fakeClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
func (c *fakeClock) NewTimer(time.Duration) clock.Timer               { panic("unused") }
func (c *fakeClock) AfterFunc(time.Duration, func()) clock.Timer      { panic("unused") }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error { c.Advance(d); return nil }

func testOpts(fs diskio.FS) Options {
	return Options{FS: fs, Dir: "log", Clock: newFakeClock(), SegmentBytesMax: 64 << 10, IndexIntervalBytes: 1024}
}

func mustOpen(t testing.TB, o Options) *Log {
	t.Helper()
	l, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func mustAppend(t testing.TB, l *Log, b []byte, raft uint64, epoch int32) AppendResult {
	t.Helper()
	r, err := l.AppendDurable(context.Background(), b, raft, epoch)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return r
}

// readAll reads every batch from the log start to the end.
func readAll(t testing.TB, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	off := l.StartOffset()
	for off < l.NextOffset() {
		b, err := l.Read(off, 1<<20, l.NextOffset())
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing before end %d", off, l.NextOffset())
		}
		for _, x := range splitBatches(b) {
			bi, _ := parseBatchHeader(x)
			if !batchCRCValid(x) {
				t.Fatalf("batch at %d: bad CRC", bi.baseOffset)
			}
			out = append(out, x)
			off = bi.lastOffset() + 1
		}
	}
	return out
}

func TestAppendReadReopen(t *testing.T) {
	fs := diskio.NewSim(1)
	o := testOpts(fs)
	l := mustOpen(t, o)
	var want [][]byte
	for i := 0; i < 200; i++ {
		b := testBatch{records: 1 + i%5, valueSize: 100 + i, baseTsMs: int64(1000 + i), tsStepMs: 1, gzip: i%7 == 0}.encode()
		r := mustAppend(t, l, b, uint64(10+i), int32(i/50))
		if i == 0 && r.BaseOffset != 0 {
			t.Fatalf("first base offset %d", r.BaseOffset)
		}
		want = append(want, b)
	}
	check := func(l *Log) {
		t.Helper()
		got := readAll(t, l)
		if len(got) != len(want) {
			t.Fatalf("got %d batches, want %d", len(got), len(want))
		}
		for i := range got {
			if !sameBatchModuloHeader(got[i], want[i]) {
				t.Fatalf("batch %d differs", i)
			}
		}
		if got := l.LastDurableRaftIndex(); got != 209 {
			t.Fatalf("LastDurableRaftIndex %d, want 209", got)
		}
	}
	check(l)
	if n := len(l.segs); n < 3 {
		t.Fatalf("expected rolls, got %d segments", n)
	}
	next := l.NextOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, o)
	check(l)
	if l.NextOffset() != next || l.DurableNextOffset() != next {
		t.Fatalf("next %d durable %d want %d", l.NextOffset(), l.DurableNextOffset(), next)
	}
	if e, off := l.OffsetForLeaderEpoch(2); e != 2 || off == UndefinedOffset {
		t.Fatalf("epoch 2 -> %d %d", e, off)
	}
	l.Close()
}

func TestReadMiddleAndBounds(t *testing.T) {
	l := mustOpen(t, testOpts(diskio.NewSim(2)))
	defer l.Close()
	var bs [][]byte
	for i := 0; i < 10; i++ {
		b := mkBatch(10, 50, int64(i))
		bs = append(bs, b)
		mustAppend(t, l, b, 1, 0)
	}
	// Middle of batch 3 (offsets 30..39) returns batch 3 whole.
	got, err := l.Read(35, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if s := splitBatches(got); len(s) != 1 || !sameBatchModuloHeader(s[0], bs[3]) {
		t.Fatalf("read from middle: %d batches", len(s))
	}
	bi, _ := parseBatchHeader(got)
	if bi.baseOffset != 30 {
		t.Fatalf("base %d", bi.baseOffset)
	}
	// maxBytes bounds: two batches fit exactly.
	got, _ = l.Read(30, 2*len(bs[0]), 100)
	if n := len(splitBatches(got)); n != 2 {
		t.Fatalf("maxBytes: %d batches", n)
	}
	got, _ = l.Read(30, 2*len(bs[0])-1, 100)
	if n := len(splitBatches(got)); n != 1 {
		t.Fatalf("maxBytes-1: %d batches", n)
	}
	// Upper bound (high watermark) 60: batches 3,4,5 only.
	got, _ = l.Read(30, 1<<20, 60)
	if n := len(splitBatches(got)); n != 3 {
		t.Fatalf("upper bound: %d batches", n)
	}
	if got, err := l.Read(60, 100, 60); err != nil || len(got) != 0 {
		t.Fatalf("at hwm: %d bytes %v", len(got), err)
	}
	if got, err := l.Read(100, 100, 100); err != nil || len(got) != 0 {
		t.Fatalf("at end: %d bytes %v", len(got), err)
	}
	if _, err := l.Read(101, 100, 200); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond end: %v", err)
	}
}

func TestValidation(t *testing.T) {
	good := mkBatch(3, 10, 5)
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		buf  []byte
		want error
	}{
		{"empty", nil, ErrInvalidRecord},
		{"short", good[:20], ErrCorruptBatch},
		{"truncated", good[:len(good)-1], ErrCorruptBatch},
		{"trailing", append(bytes.Clone(good), 1, 2, 3), ErrCorruptBatch},
		{"length too small", mod(func(b []byte) []byte { b[offBatchLength+3] = 10; b[offBatchLength+2] = 0; return b }), ErrCorruptBatch},
		{"negative length", mod(func(b []byte) []byte { b[offBatchLength] = 0xff; return b }), ErrCorruptBatch},
		{"magic 1", mod(func(b []byte) []byte { b[offMagic] = 1; return b }), ErrInvalidRecord},
		{"crc", mod(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrCorruptBatch},
		{"count mismatch", mod(func(b []byte) []byte { b[offRecordCount+3] = 2; fixCRC(b); return b }), ErrInvalidRecord},
		{"count zero", mod(func(b []byte) []byte {
			copy(b[offRecordCount:], []byte{0, 0, 0, 0})
			copy(b[offLastOffsetDelta:], []byte{0xff, 0xff, 0xff, 0xff})
			fixCRC(b)
			return b
		}), ErrInvalidRecord},
		{"too large", mkBatch(1, 2000, 0), ErrBatchTooLarge},
		{"second of two bad", append(bytes.Clone(good), mod(func(b []byte) []byte { b[70] ^= 1; return b })...), ErrCorruptBatch},
	}
	fs := diskio.NewSim(3)
	o := testOpts(fs)
	o.BatchBytesMax = 1024
	l := mustOpen(t, o)
	defer l.Close()
	for _, c := range cases {
		_, err := l.Append(c.buf, 1, 0)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if l.NextOffset() != 0 || l.active().size != 0 {
			t.Fatalf("%s: something was written", c.name)
		}
	}
	if data, _ := fs.ReadFile("log/" + segmentName(0) + segmentSuffix); len(data) != 0 {
		t.Fatalf("segment has %d bytes", len(data))
	}
	if _, err := l.Append(append(bytes.Clone(good), good...), 1, 0); err != nil {
		t.Fatalf("two good batches: %v", err)
	}
	if l.NextOffset() != 6 {
		t.Fatalf("next %d", l.NextOffset())
	}
}

func TestRollBySizeAndAge(t *testing.T) {
	o := testOpts(diskio.NewSim(4))
	o.SegmentBytesMax = 4096
	o.SegmentAgeMax = time.Hour
	clk := o.Clock.(*fakeClock)
	l := mustOpen(t, o)
	defer l.Close()
	b := mkBatch(1, 1000, 0) // ~1.1 KiB framed
	for i := 0; i < 3; i++ {
		mustAppend(t, l, b, 1, 0)
	}
	if len(l.segs) != 1 {
		t.Fatalf("rolled early: %d", len(l.segs))
	}
	mustAppend(t, l, b, 1, 0)
	if len(l.segs) != 2 || l.segs[1].base != 3 {
		t.Fatalf("size roll: %d segments", len(l.segs))
	}
	clk.Advance(59 * time.Minute)
	mustAppend(t, l, b, 1, 0)
	if len(l.segs) != 2 {
		t.Fatal("age roll too early")
	}
	clk.Advance(2 * time.Minute)
	mustAppend(t, l, b, 1, 0)
	if len(l.segs) != 3 || l.segs[2].base != 5 {
		t.Fatalf("age roll: %d segments", len(l.segs))
	}
}

func TestOffsetForLeaderEpoch(t *testing.T) {
	l := mustOpen(t, testOpts(diskio.NewSim(5)))
	defer l.Close()
	if e, o := l.OffsetForLeaderEpoch(0); e != UndefinedEpoch || o != UndefinedOffset {
		t.Fatalf("empty: %d %d", e, o)
	}
	for _, ep := range []int32{2, 2, 4, 7} {
		mustAppend(t, l, mkBatch(5, 1, 0), 1, ep)
	}
	// epochs: 2@0, 4@10, 7@15, end 20
	for _, c := range []struct {
		req int32
		e   int32
		off int64
	}{{1, 1, 0}, {2, 2, 10}, {3, 2, 10}, {4, 4, 15}, {5, 4, 15}, {7, 7, 20}, {8, UndefinedEpoch, UndefinedOffset}, {-1, UndefinedEpoch, UndefinedOffset}} {
		if e, o := l.OffsetForLeaderEpoch(c.req); e != c.e || o != c.off {
			t.Errorf("epoch %d: got (%d, %d) want (%d, %d)", c.req, e, o, c.e, c.off)
		}
	}
	if _, err := l.Append(mkBatch(1, 1, 0), 1, 6); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("epoch regression: %v", err)
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	o := testOpts(diskio.NewSim(6))
	o.SegmentBytesMax = 8192
	o.IndexIntervalBytes = 256
	l := mustOpen(t, o)
	defer l.Close()
	// batch i: offsets 2i..2i+1, timestamps 100i, 100i+10
	for i := 0; i < 100; i++ {
		mustAppend(t, l, testBatch{records: 2, valueSize: 100, baseTsMs: int64(100 * i), tsStepMs: 10}.encode(), 1, 0)
	}
	for _, c := range []struct {
		ts    int64
		off   int64
		found bool
	}{{0, 0, true}, {10, 0, true}, {11, 2, true}, {5000, 100, true}, {9910, 198, true}, {9911, 0, false}} {
		off, found, err := l.OffsetForTimestamp(c.ts)
		if err != nil || off != c.off || found != c.found {
			t.Errorf("ts %d: got %d %v %v, want %d %v", c.ts, off, found, err, c.off, c.found)
		}
	}
}

func TestDeletePrefix(t *testing.T) {
	o := testOpts(diskio.NewSim(7))
	o.SegmentBytesMax = 4096
	l := mustOpen(t, o)
	for i := 0; i < 40; i++ {
		mustAppend(t, l, mkBatch(1, 1000, o.Clock.Now().UnixMilli()), 1, 0)
	}
	segsBefore := len(l.segs)
	if err := l.DeletePrefix(l.NextOffset() - 2); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(l.NextOffset()-3, 10, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if len(l.segs) >= segsBefore || l.segs[0].base > l.StartOffset() {
		t.Fatalf("%d segments before, %d after; first base %d start %d", segsBefore, len(l.segs), l.segs[0].base, l.StartOffset())
	}
	start := l.StartOffset()
	l.Close()
	l = mustOpen(t, o)
	defer l.Close()
	if l.StartOffset() != start || l.segs[0].base > start || l.segs[0].next <= start && len(l.segs) > 1 {
		t.Fatalf("after reopen start %d (want %d), %d segs", l.StartOffset(), start, len(l.segs))
	}
}

func TestTruncateSuffix(t *testing.T) {
	o := testOpts(diskio.NewSim(8))
	o.SegmentBytesMax = 4096
	l := mustOpen(t, o)
	for i := 0; i < 20; i++ {
		mustAppend(t, l, mkBatch(2, 1000, int64(i)), uint64(i+1), int32(i/5))
	}
	if err := l.TruncateSuffix(15); err != nil { // inside batch 7 (14..15)
		t.Fatal(err)
	}
	if l.NextOffset() != 14 || l.LastDurableRaftIndex() != 7 {
		t.Fatalf("next %d raft %d", l.NextOffset(), l.LastDurableRaftIndex())
	}
	if e, off := l.OffsetForLeaderEpoch(1); e != 1 || off != 14 {
		t.Fatalf("epochs after truncate: %d %d", e, off)
	}
	mustAppend(t, l, mkBatch(2, 10, 0), 8, 1)
	if len(readAll(t, l)) != 8 {
		t.Fatal("wrong batch count")
	}
	l.Close()
	l = mustOpen(t, o)
	defer l.Close()
	if got := len(readAll(t, l)); got != 8 || l.NextOffset() != 16 || l.LastDurableRaftIndex() != 8 {
		t.Fatalf("after reopen: %d batches next %d raft %d", got, l.NextOffset(), l.LastDurableRaftIndex())
	}
}

// TestPooledFrameBuffersNotShared: writeW frames batches in buffers from a
// process-wide pool, so logs appending concurrently take turns with the
// same buffers. A buffer handed back while still being written from, or
// framed short of its length, would put another log's bytes (or stale
// ones) on disk. Every batch read back, before and after a reopen, must
// equal what was appended.
func TestPooledFrameBuffersNotShared(t *testing.T) {
	fs := diskio.NewSim(3)
	const logs, appends = 4, 120
	want := make([][][]byte, logs)
	opts := make([]Options, logs)
	var wg sync.WaitGroup
	for i := range logs {
		opts[i] = testOpts(fs)
		opts[i].Dir = fmt.Sprintf("log-%d", i)
		l := mustOpen(t, opts[i])
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer l.Close()
			for a := range appends {
				var req []byte
				for b := range 1 + a%3 {
					tb := testBatch{records: 1 + (a+b)%5, valueSize: 10 + (i*977+a*131+b*37)%2500, baseTsMs: 1, tsStepMs: 1, seed: byte(i*50 + a + b)}
					x := tb.encode()
					want[i] = append(want[i], x)
					req = append(req, x...)
				}
				if _, err := l.Append(req, uint64(a+1), 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range logs {
		l := mustOpen(t, opts[i])
		got := readAll(t, l)
		l.Close()
		if len(got) != len(want[i]) {
			t.Fatalf("log %d: %d batches read back, %d appended", i, len(got), len(want[i]))
		}
		for j := range got {
			if !sameBatchModuloHeader(got[j], want[i][j]) {
				t.Fatalf("log %d batch %d: differs from the one appended", i, j)
			}
		}
	}
}

// TestAppendCRCChecked: the variant for batches whose CRC the caller just
// verified writes what Append writes and still refuses bad framing.
func TestAppendCRCChecked(t *testing.T) {
	fs := diskio.NewSim(1)
	l := mustOpen(t, testOpts(fs))
	defer l.Close()
	b := mkBatch(3, 100, 5)
	if _, err := l.AppendCRCChecked(b[:len(b)-1], 1, 1); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("short batch: %v, want ErrCorruptBatch", err)
	}
	if _, err := l.AppendCRCChecked(append(bytes.Clone(b), 0), 1, 1); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("trailing byte: %v, want ErrCorruptBatch", err)
	}
	r1, err := l.AppendCRCChecked(b, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	r2 := mustAppend(t, l, b, 2, 1)
	got := readAll(t, l)
	if len(got) != 2 || r1.BaseOffset != 0 || r2.BaseOffset != 3 || !sameBatchModuloHeader(got[0], b) || !sameBatchModuloHeader(got[1], b) {
		t.Fatalf("read back %d batches, offsets %d and %d", len(got), r1.BaseOffset, r2.BaseOffset)
	}
}
