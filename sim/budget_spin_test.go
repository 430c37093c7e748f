//go:build synctests

package sim

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestSimBudget proves the schedule bound (budget_test.go): a schedule
// with a goroutine that spins on a 1 µs sleep (virtual time creeps on, so
// no standing-still check would fire) must fail as a liveness error with
// its reproduce line within its wall-time budget, and one that floods
// the trace within its event budget. Each runs in a child process, since
// the watchdog ends the process.
func TestSimBudget(t *testing.T) {
	if *flagSeedShard != 0 {
		t.Skip("runs in shard 0 only")
	}
	if kind := os.Getenv(spinChildEnv); kind != "" {
		spinChild(t, kind == "events")
		return
	}
	for _, c := range []struct {
		kind, flag, want string
	}{
		{"wall", "-sim-wall-max=4s", "wall-time budget"},
		{"events", "-sim-events-max=20000", "budget of 20000 events"},
	} {
		t.Run(c.kind, func(t *testing.T) {
			start := time.Now()
			// The child must end on its own well within this deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSimBudget$", "-test.count=1", c.flag)
			cmd.Env = append(os.Environ(), spinChildEnv+"="+c.kind)
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != budgetExit || !strings.Contains(string(out), c.want) ||
				!strings.Contains(string(out), "liveness:") || !strings.Contains(string(out), "reproduce: make sim SEED=") ||
				!strings.Contains(string(out), "picture: ") {
				t.Fatalf("a spinning schedule was not failed by its %s budget (child: %v); output:\n%s", c.kind, err, tail(string(out), 4000))
			}
			t.Logf("failed as required after %v: %s", time.Since(start).Round(time.Millisecond), firstLine(string(out), "liveness:"))
		})
	}
}

const spinChildEnv = "CHRONIK_SIM_SPIN_CHILD"

func spinChild(t *testing.T, events bool) {
	o := runOpts{duration: time.Hour, profile: profileRecoverable, workload: coreWorkload}
	var tr *trace
	o.onTrace = func(x *trace) { tr = x }
	o.beside = func(done <-chan struct{}) {
		for {
			select {
			case <-done:
				return
			default:
			}
			time.Sleep(time.Microsecond)
			if events && tr != nil {
				tr.add(evCheck, "spin")
			}
		}
	}
	runSchedule(t, 1, o)
	t.Fatal("a schedule of an hour of virtual time with a spinning goroutine ended")
}
