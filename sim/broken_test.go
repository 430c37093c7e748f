//go:build synctests

package sim

import (
	"os"
	"os/exec"
	"strings"
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

// TestSimCatchesLyingFsync runs every node on a disk whose Raft log fsync
// reports success without making anything durable (the bug of the
// project's predecessor: acknowledged records behind a flush that did
// nothing) and asserts that the simulator fails the run within
// brokenSeedsMax seeds: the heal phase power-cuts every node at once, so
// whatever was acknowledged from memory only is gone. Either the checkers
// report lost records, or dragonboat finds its own log behind what its
// peers committed and panics (its fail-stop, which ends the process: hence
// the child process).
func TestSimCatchesLyingFsync(t *testing.T) {
	if *flagSeedShard != 0 {
		t.Skip("runs in shard 0 only (its seeds are fixed, not sharded)")
	}
	if os.Getenv(lyingChildEnv) == "1" {
		lyingFsyncChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimCatchesLyingFsync$", "-test.count=1")
	cmd.Env = append(os.Environ(), lyingChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	caught := strings.Contains(string(out), "sim: dragonboat panicked") || strings.Contains(string(out), "lost acknowledged records")
	if err == nil || !caught || !strings.Contains(string(out), "reproduce: make sim SEED=") {
		t.Fatalf("a disk whose fsync does nothing went unreported for %d seeds (child: %v): the simulator no longer catches lost acknowledged data; output:\n%s",
			brokenSeedsMax, err, tail(string(out), 4000))
	}
	t.Logf("caught: %s", firstLine(string(out), "sim: dragonboat panicked", "lost acknowledged records"))
}

const lyingChildEnv = "CHRONIK_SIM_LYING_CHILD"

func lyingFsyncChild(t *testing.T) {
	o := runOpts{duration: 5 * time.Second, profile: profileRecoverable, workload: defaultWorkload, lyingSync: true}
	for seed := int64(1); seed <= brokenSeedsMax; seed++ {
		res := runSchedule(t, seed, o)
		if len(res.violations) > 0 {
			t.Fatalf("seed %d: lost acknowledged records after %d acks: %s\nreproduce: make sim SEED=%d", seed, res.acks, res.violations[0], seed)
		}
		t.Logf("seed %d: not caught (%d acks, liveness %q)", seed, res.acks, res.liveness)
	}
}

// firstLine returns the first line of s containing any of subs.
func firstLine(s string, subs ...string) string {
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				return l
			}
		}
	}
	return ""
}
