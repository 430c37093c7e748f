package plog

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chronik-go/chronik/diskio"
)

// crashWorkload drives a log with a seeded sequence of appends (1-3 batches
// each) and group-commit syncs, recording what was reported durable.
type crashWorkload struct {
	seed     uint64
	stamped  [][]byte // every appended batch as stored (offset and epoch stamped)
	rafts    []uint64 // Raft index per stamped batch
	durable  int      // stamped[:durable] were reported durable
	syncs    int      // successful WaitDurable calls so far
	lastRaft uint64   // Raft index of the last durable append
}

func stamp(b []byte, base int64, epoch int32) []byte {
	s := bytes.Clone(b)
	binary.BigEndian.PutUint64(s[offBaseOffset:], uint64(base))
	binary.BigEndian.PutUint32(s[offLeaderEpoch:], uint32(epoch))
	return s
}

// run performs steps operations, stopping (to crash) right after sync number
// stopAfterSync (if >= 0) or after operation stopAtStep.
func (w *crashWorkload) run(t *testing.T, l *Log, steps, stopAfterSync, stopAtStep int) {
	rng := rand.New(rand.NewPCG(w.seed, 7))
	pending := 0 // batches appended but not yet durable
	var ticket Ticket
	var raft uint64
	for step := 0; step < steps; step++ {
		if step == stopAtStep {
			return
		}
		if rng.IntN(3) == 0 && pending > 0 {
			if err := l.WaitDurable(context.Background(), ticket); err != nil {
				t.Fatalf("WaitDurable: %v", err)
			}
			w.durable, w.lastRaft, pending = len(w.stamped), raft, 0
			w.syncs++
			if w.syncs == stopAfterSync {
				return
			}
			continue
		}
		var req []byte
		var parts [][]byte
		for range 1 + rng.IntN(3) {
			b := testBatch{records: 1 + rng.IntN(4), valueSize: rng.IntN(600), baseTsMs: int64(step), tsStepMs: 1, gzip: rng.IntN(5) == 0, seed: byte(step)}.encode()
			parts = append(parts, b)
			req = append(req, b...)
		}
		raft++
		epoch := int32(step / 40)
		r, err := l.Append(req, raft, epoch)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		base := r.BaseOffset
		for _, p := range parts {
			w.stamped = append(w.stamped, stamp(p, base, epoch))
			w.rafts = append(w.rafts, raft)
			bi, _ := parseBatchHeader(p)
			base += int64(bi.lastOffsetDelta) + 1
		}
		ticket = r.Ticket
		pending++
	}
}

// checkRecovered opens the crash image and checks the durability promises.
func (w *crashWorkload) checkRecovered(t *testing.T, img *diskio.Sim, what string) {
	t.Helper()
	o := testOpts(img)
	o.SegmentBytesMax = 8 << 10
	o.Logger = slog.New(&tornCounter)
	l, err := Open(o)
	if err != nil {
		t.Fatalf("%s: Open after crash: %v (reproduce with seed=%d)", what, err, w.seed)
	}
	defer l.Close()
	got := readAll(t, l)
	if len(got) < w.durable {
		t.Fatalf("%s: recovered %d batches, %d were durable (seed=%d)", what, len(got), w.durable, w.seed)
	}
	if len(got) > len(w.stamped) {
		t.Fatalf("%s: recovered %d batches, only %d appended", what, len(got), len(w.stamped))
	}
	for i, g := range got {
		if !bytes.Equal(g, w.stamped[i]) {
			t.Fatalf("%s: batch %d differs after recovery (seed=%d)", what, i, w.seed)
		}
	}
	if r := l.LastDurableRaftIndex(); r < w.lastRaft {
		t.Fatalf("%s: LastDurableRaftIndex %d < last durable %d", what, r, w.lastRaft)
	}
	if len(got) > 0 && l.LastDurableRaftIndex() != w.rafts[len(got)-1] {
		t.Fatalf("%s: LastDurableRaftIndex %d, last recovered batch has %d", what, l.LastDurableRaftIndex(), w.rafts[len(got)-1])
	}
	// The recovered log accepts appends and survives a clean reopen.
	mustAppend(t, l, mkBatch(1, 10, 0), l.LastDurableRaftIndex()+1, 1000)
}

// countingHandler counts log records whose message contains "torn".
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "torn") {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

var tornCounter countingHandler

var crashModes = []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashRandomPrefix, diskio.CrashTornPrefix}

// TestCrashAtEverySync crashes right after each successful group commit
// (and, as a random point, mid-way between syncs), under each crash mode.
func TestCrashAtEverySync(t *testing.T) {
	const steps = 120
	for seed := uint64(1); seed <= 3; seed++ {
		probe := &crashWorkload{seed: seed}
		{
			fs := diskio.NewSim(int64(seed))
			o := testOpts(fs)
			o.SegmentBytesMax = 8 << 10
			l := mustOpen(t, o)
			probe.run(t, l, steps, -1, -1)
			l.Close()
		}
		rng := rand.New(rand.NewPCG(seed, 99))
		for k := 1; k <= probe.syncs; k++ {
			for _, stopStep := range []int{-1, rng.IntN(steps)} {
				fs := diskio.NewSim(int64(seed*1000) + int64(k))
				o := testOpts(fs)
				o.SegmentBytesMax = 8 << 10
				l := mustOpen(t, o)
				w := &crashWorkload{seed: seed}
				stopSync := k
				if stopStep >= 0 {
					stopSync = -1
				}
				w.run(t, l, steps, stopSync, stopStep)
				fs.Freeze()
				for _, m := range crashModes {
					for img := range 2 {
						w.checkRecovered(t, fs.CrashImage(m), fmt.Sprintf("seed %d sync %d step %d mode %v image %d", seed, k, stopStep, m, img))
					}
				}
				l.Close()
			}
		}
	}
	if tornCounter.n.Load() == 0 {
		t.Fatal("no crash image had a torn tail to truncate: the test exercises nothing")
	}
	t.Logf("torn tails truncated: %d", tornCounter.n.Load())
}
