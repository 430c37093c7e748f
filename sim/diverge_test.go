//go:build synctests

package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// The divergence finder (make sim-diverge SEED=N): runs one seed twice
// with the fine trace (every network operation, nettrace_test.go),
// compares the canonical traces and prints the first event where they
// part, with the events before it from both runs. Then it runs the seed
// twice more, taking every goroutine's stack one nanosecond (virtual)
// before that instant, and prints the goroutines found in one run and
// not the other (stacks normalised: no ids, addresses or wait times): at
// that instant every goroutine of the bubble is blocked, so what differs
// is where the runs' goroutines already stand apart. Everything is
// written under sim/traces/ (seed-N.diverge.*), with a timeline picture
// of each run.
//
// Each replay with -sim-replay whose traces differ logs the first
// divergence the same way (without stacks).

// divergeContext is how many events before and after the first
// difference are printed.
const divergeContext = 12

// divergence is where two canonical traces first differ.
type divergence struct {
	index  int // first differing position; -1: identical
	at     time.Duration
	before []event // common events before it (up to divergeContext)
	a, b   []event // each run's events from index on (up to divergeContext)
}

func firstDivergence(x, y *trace) divergence {
	a, b := x.canonical(), y.canonical()
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) && i == len(b) {
		return divergence{index: -1}
	}
	d := divergence{index: i, before: a[max(0, i-divergeContext):i]}
	d.a = a[i:min(len(a), i+divergeContext)]
	d.b = b[i:min(len(b), i+divergeContext)]
	switch {
	case len(d.a) == 0:
		d.at = d.b[0].at
	case len(d.b) == 0:
		d.at = d.a[0].at
	default:
		d.at = min(d.a[0].at, d.b[0].at)
	}
	return d
}

func (d divergence) String() string {
	if d.index < 0 {
		return "the traces are identical"
	}
	var s strings.Builder
	fmt.Fprintf(&s, "traces part at event %d, virtual %v; before it (both runs):\n", d.index, d.at)
	for _, e := range d.before {
		fmt.Fprintf(&s, "    %v\n", e)
	}
	for _, r := range []struct {
		name string
		evs  []event
	}{{"run 1", d.a}, {"run 2", d.b}} {
		fmt.Fprintf(&s, "  %s goes on with:\n", r.name)
		for _, e := range r.evs {
			fmt.Fprintf(&s, "    %v\n", e)
		}
	}
	return s.String()
}

// TestSimDiverge is the divergence finder (see above); needs -seed.
func TestSimDiverge(t *testing.T) {
	if *flagSeed == 0 {
		t.Skip("the divergence finder needs -seed=N (make sim-diverge SEED=N)")
	}
	seed := *flagSeed
	o := simOpts(t)
	o.fine = true
	run := func(i int, stackAt time.Duration) (result, string) {
		var stacks string
		o.beside = func(done <-chan struct{}) {
			if stackAt <= 0 {
				<-done
				return
			}
			tm := time.NewTimer(stackAt)
			defer tm.Stop()
			select {
			case <-done:
			case <-tm.C:
				buf := make([]byte, 64<<20)
				stacks = string(buf[:runtime.Stack(buf, true)])
			}
		}
		start := time.Now()
		res := runSchedule(t, seed, o)
		t.Logf("run %d: trace hash %s, %d events, %v wall", i, res.hash, res.tr.total(), time.Since(start).Round(time.Millisecond))
		return res, stacks
	}
	r1, _ := run(1, 0)
	r2, _ := run(2, 0)
	d := firstDivergence(r1.tr, r2.tr)
	paths := writeBoth(t, seed, "", r1, r2)
	if d.index < 0 {
		t.Logf("seed %d reproduced its fine trace (%d events): nothing to find; traces: %s", seed, r1.tr.total(), paths)
		return
	}
	t.Logf("seed %d: %v\ntraces: %s", seed, d, paths)
	stackAt := d.at - time.Nanosecond
	r3, s3 := run(3, stackAt)
	r4, s4 := run(4, stackAt)
	d34 := firstDivergence(r3.tr, r4.tr)
	same := "at the same event"
	if d34.index != d.index || d34.at != d.at {
		same = fmt.Sprintf("elsewhere: event %d at %v (runs 1 and 2: event %d at %v)", d34.index, d34.at, d.index, d.at)
	}
	p3 := writeStacks(seed, 3, s3)
	p4 := writeStacks(seed, 4, s4)
	t.Logf("runs 3 and 4 (stacks at %v) part %s\nstacks: %s %s\n%s", stackAt, same, p3, p4, stackDiff(s3, s4))
	t.Logf("picture: %s", writeBoth(t, seed, ".34", r3, r4))
}

// writeBoth writes both runs' traces and pictures; returns their paths.
func writeBoth(t *testing.T, seed int64, suffix string, a, b result) string {
	var out []string
	for i, r := range []result{a, b} {
		s := fmt.Sprintf(".diverge%s.run%d", suffix, i+1)
		p, err := r.tr.write(seed, s)
		if err != nil {
			t.Errorf("write trace: %v", err)
		}
		out = append(out, p)
		if pic, err := writeTimeline(r.tr, seed, s, ""); err == nil {
			out = append(out, pic)
		}
	}
	return strings.Join(out, " ")
}

func writeStacks(seed int64, run int, s string) string {
	p := filepath.Join("traces", fmt.Sprintf("seed-%d.diverge.run%d.stacks", seed, run))
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		return "(not written: " + err.Error() + ")"
	}
	abs, _ := filepath.Abs(p)
	return abs
}

var (
	stackGoroutineID = regexp.MustCompile(`^goroutine \d+ \[([^\],]*)[^\]]*\]:`)
	stackArgs        = regexp.MustCompile(`\(.*\)$`)
	stackOffset      = regexp.MustCompile(` \+0x[0-9a-f]+$`)
	stackCreatedIn   = regexp.MustCompile(` in goroutine \d+$`)
)

// normaliseStacks splits a runtime.Stack(all) dump into one canonical
// string per goroutine: state kept, ids, argument values, pc offsets and
// wait times dropped.
func normaliseStacks(dump string) []string {
	var out []string
	for _, g := range strings.Split(strings.TrimSpace(dump), "\n\n") {
		if strings.Contains(g, "TestSimDiverge") {
			continue // the finder itself, outside the bubble
		}
		lines := strings.Split(g, "\n")
		for i, l := range lines {
			l = stackGoroutineID.ReplaceAllString(l, "goroutine [$1]:")
			if !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "goroutine ") && !strings.HasPrefix(l, "created by") {
				l = stackArgs.ReplaceAllString(l, "(...)")
			}
			l = stackOffset.ReplaceAllString(l, "")
			lines[i] = stackCreatedIn.ReplaceAllString(l, "")
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	slices.Sort(out)
	return out
}

// stackDiff lists the goroutines (normalised) that one dump has more of
// than the other.
func stackDiff(a, b string) string {
	count := func(gs []string) map[string]int {
		m := map[string]int{}
		for _, g := range gs {
			m[g]++
		}
		return m
	}
	ca, cb := count(normaliseStacks(a)), count(normaliseStacks(b))
	var s strings.Builder
	for _, side := range []struct {
		name     string
		mine, of map[string]int
	}{{"run 3", ca, cb}, {"run 4", cb, ca}} {
		var keys []string
		for g, n := range side.mine {
			if n > side.of[g] {
				keys = append(keys, g)
			}
		}
		slices.Sort(keys)
		fmt.Fprintf(&s, "goroutines only in %s (%d kinds):\n", side.name, len(keys))
		for _, g := range keys {
			fmt.Fprintf(&s, "  x%d\n    %s\n", side.mine[g]-side.of[g], strings.ReplaceAll(g, "\n", "\n    "))
		}
	}
	if a == "" || b == "" {
		s.WriteString("(a run ended before the instant: no stacks)\n")
	}
	return s.String()
}
