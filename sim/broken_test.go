//go:build synctests

package sim

import (
	"testing"
	"time"
)

// brokenSeedsMax bounds how many seeds the broken variant may take
// before the simulator must have reported it.
const brokenSeedsMax = 10

// TestSimCatchesEarlyAck switches on a deliberately broken variant (nodes
// acknowledge a produce before it is committed, with a guessed offset:
// node.Config.UnsafeAckBeforeApply) and asserts that the checkers report
// lost or misplaced acknowledged records within brokenSeedsMax seeds. It
// fails if the checkers stop catching it.
func TestSimCatchesEarlyAck(t *testing.T) {
	if *flagSeedShard != 0 {
		t.Skip("runs in shard 0 only (its seeds are fixed, not sharded)")
	}
	o := runOpts{duration: 5 * time.Second, profile: profileRecoverable, workload: defaultWorkload, brokenAck: true}
	for seed := int64(1); seed <= brokenSeedsMax; seed++ {
		res := runSchedule(t, seed, o)
		if len(res.violations) > 0 {
			t.Logf("seed %d: caught after %d acks: %s", seed, res.acks, res.violations[0])
			return
		}
		t.Logf("seed %d: not caught (%d acks, liveness %q)", seed, res.acks, res.liveness)
	}
	t.Fatalf("acknowledging before commit went unreported for %d seeds: the checkers no longer catch lost acknowledged data", brokenSeedsMax)
}
