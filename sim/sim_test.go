//go:build synctests

package sim

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	flagDuration = flag.Duration("sim-duration", 30*time.Second, "virtual length of each schedule's fault phase")
	flagProfile  = flag.String("sim-profile", profileRecoverable, "fault profile: recoverable | unsafe")
	flagReplay   = flag.Bool("sim-replay", false, "run each seed twice and report whether the canonical trace hashes match")
	flagWorkload = flag.String("sim-workload", "kgo", "workload: kgo (real franz-go clients) | core (node API, no Kafka handlers)")
)

func simOpts(t *testing.T) runOpts {
	if *flagProfile != profileRecoverable && *flagProfile != profileUnsafe {
		t.Fatalf("-sim-profile=%q: want %s or %s", *flagProfile, profileRecoverable, profileUnsafe)
	}
	o := runOpts{duration: *flagDuration, profile: *flagProfile, workload: defaultWorkload}
	switch *flagWorkload {
	case "kgo":
	case "core":
		o.workload = coreWorkload
	default:
		t.Fatalf("-sim-workload=%q: want kgo or core", *flagWorkload)
	}
	return o
}

// TestSim runs the seeded schedules: whole Chronik nodes, clients and
// faults in one synctest bubble per seed (see doc.go).
func TestSim(t *testing.T) {
	o := simOpts(t)
	var schedules int
	var virtual time.Duration
	replays, same, sameSched := 0, 0, 0
	collected := 0 // schedules the collector ran in (quietCollector)
	wallStart := time.Now()
	cpuStart := cpuSeconds()
	for _, seed := range seedsToRun() {
		if !claimSeed("TestSim", seed) {
			continue
		}
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			cpu := cpuSeconds()
			defer func() { t.Logf("seed %d: %.2f CPU s", seed, cpuSeconds()-cpu) }()
			res := runSchedule(t, seed, o)
			schedules++
			virtual += res.virtual
			collected += noteCollections(t, res)
			report(t, res, o)
			if *flagReplay {
				again := runSchedule(t, seed, o)
				schedules++
				virtual += again.virtual
				collected += noteCollections(t, again)
				replays++
				if again.schedHash == res.schedHash {
					sameSched++
				} else {
					t.Errorf("replay: seed %d schedule hashes differ: %s vs %s: the seed no longer decides the schedule", seed, res.schedHash, again.schedHash)
				}
				if again.hash == res.hash {
					same++
					t.Logf("replay: seed %d trace hash %s reproduced", seed, res.hash)
				} else {
					p1, _ := res.tr.write(seed, ".run1")
					p2, _ := again.tr.write(seed, ".run2")
					t.Logf("replay: seed %d trace hashes differ: %s vs %s (traces: %s %s); %v\nfind the cause: make sim-diverge SEED=%d", seed, res.hash, again.hash, p1, p2, firstDivergence(res.tr, again.tr), seed)
				}
			}
		})
	}
	wall := time.Since(wallStart)
	if schedules > 0 {
		t.Logf("benchmark: %d schedules in %v wall: %.1f schedules/minute, simulated/wall time %.1fx",
			schedules, wall.Round(time.Millisecond), float64(schedules)/wall.Minutes(), virtual.Seconds()/wall.Seconds())
	}
	if replays > 0 {
		t.Logf("determinism: %d/%d seeds reproduced their canonical trace hash (%.1f%%), %d/%d their schedule hash",
			same, replays, 100*float64(same)/float64(replays), sameSched, replays)
	}
	// One machine-readable line on stdout (shown without -v too): make sim
	// sums it over the processes it runs in parallel.
	fmt.Printf("simstats: schedules=%d virtual_s=%.3f wall_s=%.3f cpu_s=%.3f replays=%d reproduced=%d collected=%d\n",
		schedules, virtual.Seconds(), wall.Seconds(), cpuSeconds()-cpuStart, replays, same, collected)
}

// cpuSeconds returns the CPU time (user and system) this process has used:
// the figure for speed on a machine whose other load changes the wall
// time (sim/doc.go, "Speed"). Read outside the bubbles only.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// noteCollections logs a schedule the collector ran in (its heap grew
// past scheduleHeapLimitBytes): it may not replay. Returns 1 for such a
// schedule, else 0.
func noteCollections(t *testing.T, res result) int {
	if res.collections == 0 {
		return 0
	}
	t.Logf("seed %d: the collector ran %d times in the schedule beside the heartbeat's (heap past %d MiB): its replay may differ", res.seed, res.collections, scheduleHeapLimitBytes>>20)
	return 1
}

// report prints one schedule's summary, and on failure the reproduce line
// and the trace file.
func report(t *testing.T, res result, o runOpts) {
	t.Helper()
	t.Logf("seed %d: %s; %d acks, %d records read, %d faults (%d failpoints, %d storage fail-stops (%d on a Raft-log record failing every read), %d corrupt reads refused, %d partitions with a log start moved by retention), %v virtual; trace hash %s schedule hash %s",
		res.seed, res.topo, res.acks, res.reads, res.tr.count(evFault, " lane")-res.tr.count(evFault, " end"),
		res.tr.count(evFault, " failpoint "), res.tr.count(evNode, " fail-stop "), res.tr.count(evNode, "wal: corrupt"), strings.Count(res.logs, "corrupt read refused"),
		res.tr.count(evCheck, " retained from log start "), res.virtual.Round(time.Millisecond), res.hash, res.schedHash)
	if res.txns != "" {
		t.Logf("seed %d: %s", res.seed, res.txns)
	}
	if res.groups != "" {
		t.Logf("seed %d: %s", res.seed, res.groups)
	}
	failed := len(res.violations) > 0 || (res.liveness != "" && o.profile == profileRecoverable)
	if res.liveness != "" && !failed {
		t.Logf("seed %d: unavailable after heal (allowed in the %s profile): %s", res.seed, o.profile, res.liveness)
	}
	if !failed {
		return
	}
	path, err := res.tr.write(res.seed, "")
	if err != nil {
		path = "(trace not written: " + err.Error() + ")"
	}
	logNote := ""
	if logPath := strings.TrimSuffix(path, ".trace") + ".log"; logPath != path {
		if err := os.WriteFile(logPath, []byte(res.logs), 0o644); err == nil {
			logNote = "\nnode log: " + logPath
		}
	}
	finding := res.liveness
	if len(res.violations) > 0 {
		finding = "safety: " + res.violations[0]
	}
	if pic, err := writeTimeline(res.tr, res.seed, "", finding); err == nil {
		path += "\npicture: " + pic
	}
	path += logNote
	var b strings.Builder
	for _, v := range res.violations {
		b.WriteString("  safety: " + v + "\n")
	}
	if res.liveness != "" {
		b.WriteString("  " + res.liveness + "\n")
	}
	t.Errorf("seed %d failed:\n%strace: %s\nnode log (warnings and errors):\n%s\nreproduce: make sim SEED=%d",
		res.seed, b.String(), path, tail(res.logs, 8000), res.seed)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
