package sim

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing/synctest"
)

// GC placement. The collector runs concurrently with the program, paced
// by wall time: goroutines that allocate during a cycle may be parked to
// assist it and woken in an order of the runtime's, and its workers take
// turns with them. A collection in the middle of an instant therefore
// changes which goroutine of the bubble runs next. During a schedule the
// automatic collector is off (GOGC=off, with a memory limit as a safety
// net) and the heartbeat collects instead, at a quiet instant: when the
// heap has grown gcGrowth times its live size since the last collection,
// it waits until every other goroutine of the bubble is durably blocked
// (synctest.Wait) and runs a full collection, during which nothing in the
// bubble can run.
const (
	gcGrowth           = 4 // like GOGC=400, which make sim used before
	gcLiveMinBytes     = 64 << 20
	gcSafetyLimitBytes = 6 << 30 // the runtime collects on its own beyond this
)

var gcMetrics = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}

// gcPacer is the heartbeat's collector (one per schedule).
type gcPacer struct {
	allocsAtLast, liveAtLast uint64
}

// quietGC turns the automatic collector off for a schedule; the returned
// function turns it back on.
func quietGC() (*gcPacer, func()) {
	pct := debug.SetGCPercent(-1)
	lim := debug.SetMemoryLimit(gcSafetyLimitBytes)
	p := &gcPacer{}
	p.collect()
	return p, func() {
		debug.SetGCPercent(pct)
		debug.SetMemoryLimit(lim)
	}
}

func (p *gcPacer) collect() {
	runtime.GC()
	metrics.Read(gcMetrics)
	p.allocsAtLast, p.liveAtLast = gcMetrics[0].Value.Uint64(), gcMetrics[1].Value.Uint64()
}

// beat runs on the heartbeat, inside the bubble.
func (p *gcPacer) beat() {
	metrics.Read(gcMetrics)
	if gcMetrics[0].Value.Uint64()-p.allocsAtLast < gcGrowth*max(p.liveAtLast, gcLiveMinBytes) {
		return
	}
	synctest.Wait()
	p.collect()
}
