package sim

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// Every schedule ends or fails within a bound. Virtual time alone is no
// bound: a goroutine that spins with a short sleep (a retry without
// backoff, say) makes virtual time creep on while the process burns a
// core for ever. So a schedule has three budgets, watched from outside
// its bubble:
//
//   - wall time (-sim-wall-max): the whole schedule, setup to final
//     check; healthy schedules take seconds;
//   - events (-sim-events-max): trace events recorded, kept or not;
//   - standing still (stuckWallMax): virtual time that does not advance
//     at all (a livelock, or a goroutine waiting on a mutex whose holder
//     sleeps).
//
// A schedule over budget cannot be abandoned (a bubble ends only when its
// goroutines do), so the watchdog writes the trace so far, its picture
// and every goroutine's stack beside it, prints a liveness line with the
// reproduce line, and ends the process (exit status 3).
//
// The watchdog must not disturb the schedule it watches (replay needs the
// goroutine order to be a function of the seed): it waits in a blocking
// system call (select on a pipe, with a timeout of watchPeriod), not on a
// runtime timer, which would make it runnable on wall time at the head of
// the run queue (runnext) ahead of the bubble's goroutines. A schedule
// shorter than watchPeriod never sees it wake. Progress is a heartbeat
// from inside the bubble, counted per wake, and wall time is counted in
// wakes too (each at most watchPeriod), so a machine that is paused (a VM
// suspended for minutes) costs one late wake, not a false alarm.
var (
	flagWallMax   = flag.Duration("sim-wall-max", 5*time.Minute, "wall-time budget of one schedule: beyond it the schedule fails as a liveness error and the process ends")
	flagEventsMax = flag.Int64("sim-events-max", 4_000_000, "event budget of one schedule (trace events, kept or not): beyond it the schedule fails as a liveness error and the process ends")
)

// stuckWallMax bounds how long a schedule's virtual time may stand still
// in wall time; heartbeatEvery is the virtual period of the progress
// signal; watchPeriodMax is the longest the watchdog sleeps.
const (
	stuckWallMax   = 3 * time.Minute
	heartbeatEvery = 100 * time.Millisecond
	watchPeriodMax = 30 * time.Second
)

// budgetExit is the exit status of a process ended by the watchdog.
const budgetExit = 3

// watchdog watches one schedule (see above).
type watchdog struct {
	seed    int64
	running atomic.Pointer[trace]
	beats   atomic.Int64 // heartbeats from inside the bubble
	stopR   int          // pipe: a byte on it stops the watchdog
	stopW   int
	done    chan struct{}
}

func startWatchdog(seed int64) *watchdog {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		panic(fmt.Sprintf("sim: watchdog pipe: %v", err))
	}
	w := &watchdog{seed: seed, stopR: p[0], stopW: p[1], done: make(chan struct{})}
	go w.run()
	return w
}

func (w *watchdog) stop() {
	syscall.Write(w.stopW, []byte{wakeStop})
	<-w.done
	syscall.Close(w.stopR)
	syscall.Close(w.stopW)
}

// Bytes on the watchdog's pipe.
const (
	wakeStop  = 0 // the schedule ended
	wakeCheck = 1 // check the budgets now (the event budget was crossed)
)

// wake makes the watchdog check the budgets at once (from any goroutine).
func (w *watchdog) wake() { syscall.Write(w.stopW, []byte{wakeCheck}) }

// watchPeriod is how long the watchdog sleeps between checks.
func watchPeriod() time.Duration {
	return max(100*time.Millisecond, min(watchPeriodMax, *flagWallMax/5, stuckWallMax/5))
}

func (w *watchdog) run() {
	defer close(w.done)
	period := watchPeriod()
	var wall, stale time.Duration
	last := w.beats.Load()
	for {
		slept, stopped := w.sleep(period)
		if stopped {
			return
		}
		wall += slept
		if b := w.beats.Load(); b != last {
			last, stale = b, 0
		} else {
			stale += period
		}
		var why string
		tr := w.running.Load()
		switch {
		case stale >= stuckWallMax:
			why = fmt.Sprintf("virtual time stopped advancing for %v of wall time (livelock or a goroutine blocked on a mutex)", stuckWallMax)
		case wall >= *flagWallMax:
			why = fmt.Sprintf("the schedule did not end within its wall-time budget of %v (-sim-wall-max)", *flagWallMax)
		case tr != nil && tr.total() > *flagEventsMax:
			why = fmt.Sprintf("the schedule recorded more than its budget of %d events (-sim-events-max)", *flagEventsMax)
		default:
			continue
		}
		w.fire(tr, why, time.Duration(last)*heartbeatEvery)
	}
}

// sleep blocks in select(2) on the pipe for at most d; it returns the
// wall time to count (d, or what select left of it when woken early,
// which Linux writes back into the timeout) and whether to stop.
func (w *watchdog) sleep(d time.Duration) (time.Duration, bool) {
	tv := syscall.NsecToTimeval(d.Nanoseconds())
	var r syscall.FdSet
	r.Bits[w.stopR/64] |= 1 << (uint(w.stopR) % 64)
	n, err := syscall.Select(w.stopR+1, &r, nil, nil, &tv)
	if err != nil || n == 0 {
		return d, false
	}
	slept := max(0, d-time.Duration(tv.Nano()))
	var b [1]byte
	if k, _ := syscall.Read(w.stopR, b[:]); k == 1 && b[0] == wakeCheck {
		return slept, false
	}
	return slept, true
}

// fire reports the schedule as a liveness failure and ends the process.
func (w *watchdog) fire(tr *trace, why string, virtual time.Duration) {
	seed := w.seed
	paths := "(no trace: the schedule had not started)"
	if tr != nil {
		tr.addLast(evCheck, "LIVENESS budget: %s", why) // the watchdog is outside the bubble
		p, err := tr.write(seed, ".stuck")
		paths = fmt.Sprintf("%s %v", p, err)
		if pic, err := writeTimeline(tr, seed, ".stuck", why); err == nil {
			paths += "\npicture: " + pic
		}
	}
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	sp := fmt.Sprintf("traces/seed-%d.stuck.stacks", seed)
	if err := os.WriteFile(sp, buf, 0o644); err != nil {
		sp = "(not written: " + err.Error() + ")"
	}
	events := int64(-1)
	if tr != nil {
		events = tr.total()
	}
	fmt.Fprintf(os.Stderr, "sim: seed %d failed:\n  liveness: %s (at about %v virtual, %d events)\ntrace: %s\nstacks of every goroutine: %s\nreproduce: make sim SEED=%d\n",
		seed, why, virtual, events, paths, sp, seed)
	fmt.Printf("--- FAIL: seed=%d (liveness: %s)\nreproduce: make sim SEED=%d\n", seed, why, seed)
	os.Exit(budgetExit)
}
