package sim

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"testing"
	"time"
)

// Bounds of the collector in a schedule (quietCollector).
const (
	// scheduleCollectEvery: the heartbeat collects at every multiple of
	// it (virtual time since the schedule began; a 30 s schedule
	// allocates 1-4 GB). A period of virtual time, not an amount
	// allocated: the first run in a process allocates a little more
	// (lazy caches), and a collection empties sync.Pools, so it must
	// come at the same instant in every run.
	scheduleCollectEvery = 10 * time.Second
	// scheduleHeapLimitBytes: past it the collector runs wherever an
	// allocation tips it after all (debug.SetMemoryLimit; the
	// environment's GOMEMLIMIT, if set, wins).
	scheduleHeapLimitBytes = 4 << 30
)

// scheduleCollector runs the collector at points of a schedule where it
// moves nothing (see quietCollector).
type scheduleCollector struct {
	percent, limit int64
	beats          int    // heartbeats so far (due)
	cyclesAt       uint64 // collections done by the last one
}

// quietCollector keeps the collector out of a schedule's way: two full
// collections now, outside the bubble (the garbage of the last schedule,
// and sync.Pools emptied as in a fresh process), then no collection
// triggered by an allocation; the schedule's heartbeat collects every
// scheduleCollectEvery, after synctest.Wait, i.e. with every other goroutine of the bubble
// durably blocked. A collection triggered by an allocation runs paced
// partly by wall time, and its stop-the-world and stack scans move the
// goroutine running then behind the others: the next select or wake-up
// order differed from a run without it (replay off by it in 2 seeds of
// 30, sim/doc.go "Determinism"). restore puts the collector back.
func quietCollector() *scheduleCollector {
	runtime.GC()
	runtime.GC()
	c := &scheduleCollector{percent: int64(debug.SetGCPercent(-1)), limit: debug.SetMemoryLimit(-1)}
	if c.limit == math.MaxInt64 {
		debug.SetMemoryLimit(scheduleHeapLimitBytes)
	}
	c.cyclesAt = gcCycles()
	return c
}

// due counts a heartbeat (every heartbeatEvery of virtual time) and
// reports whether a collection is due at it.
func (c *scheduleCollector) due() bool {
	c.beats++
	return c.beats%int(scheduleCollectEvery/heartbeatEvery) == 0
}

// collect runs a full collection (the caller has made sure that no other
// goroutine of the bubble runs).
func (c *scheduleCollector) collect() {
	runtime.GC()
	c.cyclesAt++
}

// restore puts the collector's settings back and returns the number of
// collections that ran in the schedule other than collect's (the heap
// passed scheduleHeapLimitBytes: that schedule may not replay).
func (c *scheduleCollector) restore() uint64 {
	cycles := gcCycles()
	debug.SetGCPercent(int(c.percent))
	debug.SetMemoryLimit(c.limit)
	return cycles - c.cyclesAt
}

// gcCycles returns the number of collections done.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

var sink []byte

// TestQuietCollector: between quietCollector and restore no collection
// runs but collect's, however much garbage is made (below the limit);
// collect is due at every scheduleCollectEvery of heartbeats; the
// collector's settings are restored.
func TestQuietCollector(t *testing.T) {
	percent := debug.SetGCPercent(100)
	defer debug.SetGCPercent(percent)
	c := quietCollector()
	for range 256 {
		sink = make([]byte, 1<<20) // 256 MiB of garbage in all
	}
	sink = nil
	var due []int
	for beat := 1; beat <= 2*int(scheduleCollectEvery/heartbeatEvery); beat++ {
		if c.due() {
			due = append(due, beat)
			c.collect()
		}
	}
	if n := int(scheduleCollectEvery / heartbeatEvery); !slices.Equal(due, []int{n, 2 * n}) {
		t.Errorf("collections due at heartbeats %v, want %d and %d", due, n, 2*n)
	}
	if n := c.restore(); n != 0 {
		t.Errorf("%d collections ran inside quietCollector besides collect's", n)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percent after restore: %d, want 100", p)
	}
}
