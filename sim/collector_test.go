package sim

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// Bounds of the collector in a schedule (quietCollector).
const (
	// scheduleAllocBytesPerCollection: the heartbeat collects once the
	// schedule allocated this much since the last collection (a 30 s
	// schedule allocates 1-4 GB).
	scheduleAllocBytesPerCollection = 1 << 30
	// scheduleHeapLimitBytes: past it the collector runs wherever an
	// allocation tips it after all (debug.SetMemoryLimit; the
	// environment's GOMEMLIMIT, if set, wins).
	scheduleHeapLimitBytes = 4 << 30
)

// scheduleCollector runs the collector at points of a schedule where it
// moves nothing (see quietCollector).
type scheduleCollector struct {
	percent, limit int64
	allocAt        uint64 // the heap's cumulative allocation at the last collection
	cyclesAt       uint64 // collections done by then
}

// quietCollector keeps the collector out of a schedule's way: two full
// collections now, outside the bubble (the garbage of the last schedule,
// and sync.Pools emptied as in a fresh process), then no collection
// triggered by an allocation; the schedule's heartbeat collects when due,
// after synctest.Wait, i.e. with every other goroutine of the bubble
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
	c.allocAt, c.cyclesAt = gcStats()
	return c
}

// due reports whether the schedule allocated
// scheduleAllocBytesPerCollection since the last collection.
func (c *scheduleCollector) due() bool {
	alloc, _ := gcStats()
	return alloc-c.allocAt >= scheduleAllocBytesPerCollection
}

// collect runs a full collection (the caller has made sure that no other
// goroutine of the bubble runs).
func (c *scheduleCollector) collect() {
	runtime.GC()
	c.allocAt, _ = gcStats()
	c.cyclesAt++
}

// restore puts the collector's settings back and returns the number of
// collections that ran in the schedule other than collect's (the heap
// passed scheduleHeapLimitBytes: that schedule may not replay).
func (c *scheduleCollector) restore() uint64 {
	_, cycles := gcStats()
	debug.SetGCPercent(int(c.percent))
	debug.SetMemoryLimit(c.limit)
	return cycles - c.cyclesAt
}

// gcStats returns the heap's cumulative allocation and the number of
// collections done.
func gcStats() (allocBytes, cycles uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		allocBytes = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		cycles = s[1].Value.Uint64()
	}
	return allocBytes, cycles
}

var sink []byte

// TestQuietCollector: between quietCollector and restore no collection
// runs but collect's, however much garbage is made (below the limit);
// collect is due after scheduleAllocBytesPerCollection; the collector's
// settings are restored.
func TestQuietCollector(t *testing.T) {
	percent := debug.SetGCPercent(100)
	defer debug.SetGCPercent(percent)
	c := quietCollector()
	if c.due() {
		t.Errorf("a collection is due right after quietCollector")
	}
	for range 256 {
		sink = make([]byte, 1<<20) // 256 MiB of garbage in all
	}
	sink = nil
	for range scheduleAllocBytesPerCollection >> 20 {
		sink = make([]byte, 1<<20)
	}
	sink = nil
	if !c.due() {
		t.Errorf("no collection due after %d MiB allocated", scheduleAllocBytesPerCollection>>20+256)
	}
	c.collect()
	if c.due() {
		t.Errorf("a collection is due right after collect")
	}
	if n := c.restore(); n != 0 {
		t.Errorf("%d collections ran inside quietCollector besides collect's", n)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percent after restore: %d, want 100", p)
	}
}
