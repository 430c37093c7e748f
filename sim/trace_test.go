package sim

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Event kinds of the trace. The canonical form sorts by (time, kind, text).
const (
	evFault  = "fault"
	evNode   = "node"
	evLeader = "leader"
	evAck    = "ack"
	evRead   = "read"
	evAdmin  = "admin"
	evPhase  = "phase"
	evCheck  = "check"
)

// event is one line of a run's trace, stamped with virtual time since the
// run's start.
type event struct {
	at   time.Duration
	kind string
	text string
}

// eventsMax bounds a trace; beyond it, events are counted, not kept.
const eventsMax = 1 << 20

// trace records what happened during one run. Safe for concurrent use;
// its lock is never held while waiting.
type trace struct {
	start time.Time
	n     atomic.Int64 // events recorded, kept or not
	// overBudget, if set, is called once when n passes -sim-events-max.
	overBudget func()
	mu         sync.Mutex
	evs        []event
	lost       int
}

func newTrace() *trace { return &trace{start: time.Now()} }

// count returns how many events of kind have text containing substr.
func (t *trace) count(kind, substr string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, e := range t.evs {
		if e.kind == kind && strings.Contains(e.text, substr) {
			n++
		}
	}
	return n
}

// total returns how many events were recorded, kept or not.
func (t *trace) total() int64 { return t.n.Load() }

// add records an event at the current virtual instant. Only goroutines
// of the run's bubble may call it: outside the bubble time.Since reads
// the wall clock against the bubble's epoch (years); they use addLast.
func (t *trace) add(kind, format string, args ...any) {
	t.record(event{at: time.Since(t.start), kind: kind, text: fmt.Sprintf(format, args...)})
}

// addLast records an event at the latest instant recorded so far; for
// goroutines outside the bubble (the watchdog), which have no virtual
// time of their own.
func (t *trace) addLast(kind, format string, args ...any) {
	t.mu.Lock()
	var at time.Duration
	for _, e := range t.evs {
		at = max(at, e.at)
	}
	t.mu.Unlock()
	t.record(event{at: at, kind: kind, text: fmt.Sprintf(format, args...)})
}

func (t *trace) record(e event) {
	if t.n.Add(1) == *flagEventsMax+1 && t.overBudget != nil {
		t.overBudget()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.evs) >= eventsMax {
		t.lost++
		return
	}
	t.evs = append(t.evs, e)
}

// canonical returns the events sorted by (time, kind, text): goroutines
// that record at the same virtual instant may interleave differently from
// run to run without changing what happened.
func (t *trace) canonical() []event {
	t.mu.Lock()
	evs := slices.Clone(t.evs)
	t.mu.Unlock()
	slices.SortFunc(evs, func(a, b event) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		if c := cmp.Compare(a.kind, b.kind); c != 0 {
			return c
		}
		return cmp.Compare(a.text, b.text)
	})
	return evs
}

func (e event) String() string {
	return fmt.Sprintf("%12.6fs %-6s %s", e.at.Seconds(), e.kind, e.text)
}

// hash is the SHA-256 of the canonical trace (first 16 hex digits).
func (t *trace) hash() string {
	h := sha256.New()
	for _, e := range t.canonical() {
		fmt.Fprintln(h, e.String())
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// scheduleHash hashes what the seed alone decides: the topology and
// swarm line and the fault schedule (planned offsets, kinds, targets),
// sorted by text. Replays of one seed must agree on it even where the
// full trace differs by scheduling noise (see doc.go, "Determinism").
func (t *trace) scheduleHash() string {
	var lines []string
	for _, e := range t.canonical() {
		if e.kind == evFault || e.kind == evPhase {
			lines = append(lines, e.kind+" "+e.text)
		}
	}
	slices.Sort(lines)
	h := sha256.New()
	for _, l := range lines {
		fmt.Fprintln(h, l)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// write stores the canonical trace under sim/traces/ and returns its path.
func (t *trace) write(seed int64, suffix string) (string, error) {
	if err := os.MkdirAll("traces", 0o755); err != nil {
		return "", err
	}
	p := filepath.Join("traces", fmt.Sprintf("seed-%d%s.trace", seed, suffix))
	var b strings.Builder
	for _, e := range t.canonical() {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	if t.lost > 0 {
		fmt.Fprintf(&b, "(%d events not kept: trace limit %d)\n", t.lost, eventsMax)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	abs, _ := filepath.Abs(p)
	return abs, nil
}
