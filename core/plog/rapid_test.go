package plog

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/chronik-go/chronik/diskio"
	"pgregory.net/rapid"
)

type modelBatch struct {
	data       []byte // as stored
	base, last int64
}

// logMachine checks a Log against a slice of batches.
type logMachine struct {
	fs      *diskio.Sim
	o       Options
	l       *Log
	batches []modelBatch
	start   int64
	next    int64
	raft    uint64
	epoch   int32
	seed    int64

	retentionBytes int64
}

func (m *logMachine) open(t *rapid.T) {
	l, err := Open(m.o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	m.l = l
}

func (m *logMachine) visible() []modelBatch {
	var out []modelBatch
	for _, b := range m.batches {
		if b.last >= m.start {
			out = append(out, b)
		}
	}
	return out
}

func (m *logMachine) Append(t *rapid.T) {
	var req []byte
	var parts [][]byte
	for range rapid.IntRange(1, 3).Draw(t, "batches") {
		b := testBatch{records: rapid.IntRange(1, 4).Draw(t, "records"), valueSize: rapid.IntRange(0, 700).Draw(t, "value"),
			baseTsMs: m.o.Clock.Now().UnixMilli(), tsStepMs: 1, gzip: rapid.Bool().Draw(t, "gzip")}.encode()
		parts = append(parts, b)
		req = append(req, b...)
	}
	if rapid.IntRange(0, 4).Draw(t, "bumpEpoch") == 0 {
		m.epoch++
	}
	m.raft++
	r, err := m.l.AppendDurable(context.Background(), req, m.raft, m.epoch)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if r.BaseOffset != m.next {
		t.Fatalf("base %d, want %d", r.BaseOffset, m.next)
	}
	for _, p := range parts {
		bi, _ := parseBatchHeader(p)
		m.batches = append(m.batches, modelBatch{stamp(p, m.next, m.epoch), m.next, m.next + int64(bi.lastOffsetDelta)})
		m.next += int64(bi.lastOffsetDelta) + 1
	}
}

func (m *logMachine) Read(t *rapid.T) {
	off := rapid.Int64Range(m.start, m.next).Draw(t, "offset")
	maxBytes := rapid.IntRange(1, 6000).Draw(t, "maxBytes")
	upper := rapid.Int64Range(off, m.next).Draw(t, "upper")
	got, err := m.l.Read(off, maxBytes, upper)
	if err != nil {
		t.Fatalf("Read(%d, %d, %d): %v", off, maxBytes, upper, err)
	}
	var want []byte
	for _, b := range m.batches {
		if b.last < off {
			continue
		}
		if b.last >= upper || (len(want) > 0 && len(want)+len(b.data) > maxBytes) {
			break
		}
		want = append(want, b.data...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Read(%d, %d, %d): got %d bytes, want %d", off, maxBytes, upper, len(got), len(want))
	}
}

func (m *logMachine) TruncateSuffix(t *rapid.T) {
	off := rapid.Int64Range(m.start, m.next).Draw(t, "offset")
	if err := m.l.TruncateSuffix(off); err != nil {
		t.Fatalf("TruncateSuffix(%d): %v", off, err)
	}
	for len(m.batches) > 0 && m.batches[len(m.batches)-1].last >= off {
		m.next = m.batches[len(m.batches)-1].base
		m.batches = m.batches[:len(m.batches)-1]
	}
	m.start = min(m.start, m.next)
}

func (m *logMachine) DeletePrefix(t *rapid.T) {
	off := rapid.Int64Range(m.start, m.next).Draw(t, "offset")
	if err := m.l.DeletePrefix(off); err != nil {
		t.Fatalf("DeletePrefix(%d): %v", off, err)
	}
	m.start = max(m.start, off)
}

func (m *logMachine) AgeRoll(t *rapid.T) {
	m.o.Clock.(*fakeClock).Advance(2 * time.Hour)
}

// Retention does what the partition leader does: compute the retention
// start and move the log start there (which may free the active segment).
func (m *logMachine) Retention(t *rapid.T) {
	x := m.l.RetentionStart(m.retentionBytes, rapid.SampledFrom([]time.Duration{-1, 30 * time.Minute, 3 * time.Hour}).Draw(t, "retentionAge"))
	if x < m.start || x > m.next {
		t.Fatalf("RetentionStart %d outside [%d, %d]", x, m.start, m.next)
	}
	if err := m.l.DeletePrefix(x); err != nil {
		t.Fatalf("DeletePrefix(%d): %v", x, err)
	}
	m.start = x
}

func (m *logMachine) Reopen(t *rapid.T) {
	if err := m.l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.open(t)
}

// CrashReopen crashes the disk (keeping only synced data: every append here
// is durable) and recovers from the image.
func (m *logMachine) CrashReopen(t *rapid.T) {
	img := m.fs.CrashImage(rapid.SampledFrom(crashModes).Draw(t, "mode"))
	m.l.Close()
	m.fs = img
	m.o.FS = img
	m.open(t)
}

func (m *logMachine) Check(t *rapid.T) {
	if m.l.NextOffset() != m.next || m.l.StartOffset() != m.start {
		t.Fatalf("log [%d, %d), model [%d, %d)", m.l.StartOffset(), m.l.NextOffset(), m.start, m.next)
	}
	if m.l.DurableNextOffset() != m.next {
		t.Fatalf("durable next %d, want %d", m.l.DurableNextOffset(), m.next)
	}
	vis := m.visible()
	var got [][]byte
	for off := m.start; off < m.next; {
		b, err := m.l.Read(off, 1<<20, m.next)
		if err != nil || len(b) == 0 {
			t.Fatalf("Read(%d): %d bytes, %v", off, len(b), err)
		}
		for _, x := range splitBatches(b) {
			got = append(got, x)
			bi, _ := parseBatchHeader(x)
			off = bi.lastOffset() + 1
		}
	}
	if len(got) != len(vis) {
		t.Fatalf("log holds %d batches, model %d", len(got), len(vis))
	}
	for i := range got {
		if !bytes.Equal(got[i], vis[i].data) {
			t.Fatalf("batch %d (offset %d) differs", i, vis[i].base)
		}
	}
	if len(vis) > 0 && m.l.LastDurableRaftIndex() < 1 {
		t.Fatalf("raft index %d", m.l.LastDurableRaftIndex())
	}
	if len(vis) > 0 {
		if e, _ := m.l.OffsetForLeaderEpoch(m.epoch + 1); e != UndefinedEpoch {
			t.Fatalf("epoch above latest answered %d", e)
		}
	}
}

func TestLogStateMachine(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		seed := rapid.Int64().Draw(t, "seed")
		fs := diskio.NewSim(seed)
		o := testOpts(fs)
		o.SegmentBytesMax = 4096
		o.IndexIntervalBytes = 512
		o.SegmentAgeMax = time.Hour
		m := &logMachine{fs: fs, o: o, seed: seed, retentionBytes: rapid.SampledFrom([]int64{-1, 0, 16 << 10}).Draw(t, "retentionBytes")}
		m.open(t)
		defer func() { m.l.Close() }()
		t.Repeat(rapid.StateMachineActions(m))
	})
}
