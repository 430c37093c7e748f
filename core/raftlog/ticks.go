package raftlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/clock"
)

// dragonboat's step worker warns "[shard:replica] had N LocalTick msgs in
// one batch" when a shard finds more than ElectionRTT/2 ticks queued at
// once: the worker that steps it (ticks, messages, and the fsync of the
// Raft log, all in one loop over its shards) did not come back to it for
// that many tick intervals. On a loaded machine that is every few
// milliseconds, for many shards at once (1,700 lines per node in three
// minutes of franz-go's kgo suite), so the line is counted (TickBatches,
// in /metrics) and logged at most once per node per TickLogEvery, with the
// batches suppressed since the previous line.

// localTickFormat is the format dragonboat's node.go passes to Warningf
// (args: the node's "[%05d:%05d]" shard:replica name, the tick count).
const localTickFormat = "%s had %d LocalTick msgs in one batch"

// TickLogEvery is the least interval between two tick-batch log lines of
// one node.
const TickLogEvery = 10 * time.Second

type tickState struct {
	batches, ticks uint64 // totals, for the metrics
	// for the log: when the last line went out, and what was suppressed
	// since.
	lastLog          time.Time
	logged           bool
	suppressed       uint64
	suppressedMaxLen uint64
}

var ticks = struct {
	sync.Mutex
	clk    clock.Clock
	byNode map[uint64]*tickState
}{byNode: map[uint64]*tickState{}}

// SetClock sets the clock of the tick-batch rate limit (default: the real
// clock). The simulator sets its own.
func SetClock(c clock.Clock) {
	ticks.Lock()
	ticks.clk = c
	ticks.Unlock()
}

// resetTickLog forgets when each node last logged (Install calls it: a new
// destination starts afresh; the simulator installs once per run, each run
// in its own virtual time). The counters are kept.
func resetTickLog() {
	ticks.Lock()
	defer ticks.Unlock()
	for _, s := range ticks.byNode {
		s.logged, s.suppressed, s.suppressedMaxLen = false, 0, 0
	}
}

// TickBatches reports, for the node whose replica id is replicaID, how many
// tick batches dragonboat has reported since the process started and how
// many ticks they held.
func TickBatches(replicaID uint64) (batches, tickCount uint64) {
	ticks.Lock()
	defer ticks.Unlock()
	if s := ticks.byNode[replicaID]; s != nil {
		return s.batches, s.ticks
	}
	return 0, 0
}

func (p pkgLogger) localTicks(a []interface{}) {
	name, _ := a[0].(string)
	n, _ := a[1].(uint64)
	var shard, replica uint64
	if _, err := fmt.Sscanf(name, "[%d:%d]", &shard, &replica); err != nil {
		p.log(p.warnLevel(), localTickFormat, a)
		return
	}
	ticks.Lock()
	clk := ticks.clk
	if clk == nil {
		clk = clock.Real()
	}
	now := clk.Now()
	s := ticks.byNode[replica]
	if s == nil {
		s = &tickState{}
		ticks.byNode[replica] = s
	}
	s.batches++
	s.ticks += n
	if d := now.Sub(s.lastLog); s.logged && d >= 0 && d < TickLogEvery {
		s.suppressed++
		s.suppressedMaxLen = max(s.suppressedMaxLen, n)
		ticks.Unlock()
		return
	}
	suppressed, maxLen := s.suppressed, s.suppressedMaxLen
	s.logged, s.lastLog, s.suppressed, s.suppressedMaxLen = true, now, 0, 0
	ticks.Unlock()

	t := target.Load()
	if t == nil || slog.LevelWarn < t.level {
		return
	}
	t.logger.Log(context.Background(), slog.LevelWarn,
		"raft step worker behind: ticks batched (a shard was not stepped for that many tick intervals)",
		"component", "dragonboat", "pkg", p.pkg, "node", replica, "shard", shard, "ticks", n,
		"suppressed_batches", suppressed, "suppressed_max_ticks", maxLen, "per", TickLogEvery.String())
}
