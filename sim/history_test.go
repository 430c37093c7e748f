package sim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// tp names a partition. Topic names are never reused within a run, so a
// name is a topic's identity.
type tp struct {
	topic string
	part  int32
}

func (p tp) String() string { return fmt.Sprintf("%s/%d", p.topic, p.part) }

type ack struct {
	at     tp
	offset int64
}

type sessionKey struct {
	session string
	at      tp
}

type termKey struct {
	at   tp
	term int32
}

type leaderObs struct {
	leader   int32
	observer uint64
}

// violationsMax bounds what a run keeps of its safety violations.
const violationsMax = 100

// history is everything clients did and saw during a run, and the online
// safety checks over it. Safe for concurrent use; mu is never held while
// waiting.
//
// What is checked, and against what promise:
//   - value at (partition, offset): at most one, across every ack and every
//     read of every client, ever (a committed log never changes);
//   - every read value was produced by the workload (bit flips, torn
//     writes and stale garbage must never be served);
//   - every read offset is below the high watermark of the same response
//     (nothing uncommitted is served);
//   - per session (one reader's or consumer's fetches of one partition),
//     the high watermark never goes backwards: a session reads from the
//     partition leader, and a new leader serves only once it has applied
//     everything committed before its term (node.ensureReady);
//   - the consumer group's checks (history_group_test.go);
//   - at most one leader per (partition, term), over every node's
//     Metadata view sampled during the run;
//   - per session, the log start offset never goes backwards and never
//     passes the high watermark, and no record below a log start the
//     session saw earlier is served again (retention deleted it);
//   - at the end (final): every acknowledged record at or above the log
//     start is in the log at its acknowledged offset (below it only on a
//     topic with retention: retentionTopics), no value appears twice
//     (idempotent producers), and each producer's records of a partition
//     are in sequence order.
type history struct {
	tr *trace

	mu         sync.Mutex
	produced   map[string]bool // every value ever handed to a producer
	acks       map[string]ack  // value -> where its ack said it is
	atOffset   map[tp]map[int64]string
	hw         map[sessionKey]int64
	leaders    map[termKey]leaderObs
	starts     map[sessionKey]int64
	violations []string
	reads      int64
	// retentionTopics may lose their oldest records to retention (their
	// log start moves); on every other topic the log start stays 0.
	retentionTopics map[string]bool
	// grp is the group workload's part (history_group_test.go), nil
	// until used; plan is the seed's group plan.
	grp  *groupHistory
	plan groupPlan
	// tx is the transactional workload's part (history_txn_test.go); nil
	// until used.
	tx *txnHistory
}

func newHistory(tr *trace) *history {
	return &history{
		tr: tr, produced: map[string]bool{}, acks: map[string]ack{}, atOffset: map[tp]map[int64]string{},
		hw: map[sessionKey]int64{}, leaders: map[termKey]leaderObs{},
		starts: map[sessionKey]int64{}, retentionTopics: map[string]bool{},
	}
}

func (h *history) violateLocked(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if len(h.violations) < violationsMax {
		h.violations = append(h.violations, msg)
	}
	h.tr.add(evCheck, "VIOLATION %s", msg)
}

func (h *history) violate(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.violateLocked(format, args...)
}

func (h *history) failed() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.violations)
}

// value names record seq of producer p: unique within a run.
func value(p int, seq int64) string { return fmt.Sprintf("P%d.%d", p, seq) }

func parseValue(v string) (p int, seq int64, ok bool) {
	a, b, found := strings.Cut(strings.TrimPrefix(v, "P"), ".")
	if !found {
		return 0, 0, false
	}
	pi, err1 := strconv.Atoi(a)
	s, err2 := strconv.ParseInt(b, 10, 64)
	return pi, s, err1 == nil && err2 == nil
}

func (h *history) produce(values []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range values {
		h.produced[v] = true
	}
}

// placeLocked records that value v is at (at, off), as an ack or a read saw.
func (h *history) placeLocked(at tp, off int64, v, who string) {
	m := h.atOffset[at]
	if m == nil {
		m = map[int64]string{}
		h.atOffset[at] = m
	}
	if old, ok := m[off]; ok && old != v {
		h.violateLocked("%s offset %d holds %q, but %s saw %q there", at, off, old, who, v)
		return
	}
	m[off] = v
}

// ack records an acknowledged produce of values at base.. in at.
func (h *history) ack(producer string, at tp, base int64, values []string) {
	h.tr.add(evAck, "%s %s base=%d n=%d %s..%s", producer, at, base, len(values), values[0], values[len(values)-1])
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, v := range values {
		off := base + int64(i)
		if a, ok := h.acks[v]; ok && a != (ack{at, off}) {
			h.violateLocked("%s: %q acknowledged at %s/%d and at %s/%d", producer, v, a.at, a.offset, at, off)
		}
		h.acks[v] = ack{at, off}
		h.placeLocked(at, off, v, producer+" ack")
	}
}

// read records one fetch response of session at partition at: its
// records, high watermark and log start offset (-1: not reported). A
// response's log start is read after its records, so it may be above
// them; the records must be at or above the log start of the session's
// earlier responses.
func (h *history) read(session string, at tp, recs []fetchedRecord, hw, logStart int64) {
	if len(recs) > 0 {
		h.tr.add(evRead, "%s %s [%d..%d] hw=%d", session, at, recs[0].offset, recs[len(recs)-1].offset, hw)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads += int64(len(recs))
	k := sessionKey{session, at}
	if last, ok := h.hw[k]; ok && hw < last {
		h.violateLocked("%s %s: high watermark went back from %d to %d", session, at, last, hw)
	}
	if hw > h.hw[k] {
		h.hw[k] = hw
	}
	earlier, seen := h.starts[k]
	for _, r := range recs {
		if seen && r.offset < earlier {
			h.violateLocked("%s %s: served offset %d below the log start %d it saw before", session, at, r.offset, earlier)
			break
		}
	}
	if logStart >= 0 {
		switch {
		case seen && logStart < earlier:
			h.violateLocked("%s %s: log start went back from %d to %d", session, at, earlier, logStart)
		case logStart > hw && hw >= 0:
			h.violateLocked("%s %s: log start %d above the high watermark %d", session, at, logStart, hw)
		case logStart > 0 && !h.retentionTopics[at.topic]:
			h.violateLocked("%s %s: log start %d on a topic without retention", session, at, logStart)
		}
		h.starts[k] = max(earlier, logStart)
	}
	for _, r := range recs {
		if r.control {
			continue // a marker: no workload value
		}
		if !h.produced[r.value] {
			h.violateLocked("%s %s offset %d: served %q, which no producer ever sent", session, at, r.offset, r.value)
		}
		if r.offset >= hw {
			h.violateLocked("%s %s: served offset %d at or above the high watermark %d", session, at, r.offset, hw)
		}
		h.placeLocked(at, r.offset, r.value, session)
	}
}

// leader records that observer's Metadata named leader for (at, term).
func (h *history) leader(at tp, term int32, leader int32, observer uint64) {
	if term < 0 || leader < 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	k := termKey{at, term}
	if o, ok := h.leaders[k]; ok && o.leader != leader {
		h.violateLocked("%s term %d has two leaders: b%d (seen by b%d) and b%d (seen by b%d)", at, term, o.leader, o.observer, leader, observer)
		return
	}
	h.leaders[k] = leaderObs{leader, observer}
}

// acked returns the acknowledged records of at, by offset.
func (h *history) acked(at tp) map[int64]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[int64]string{}
	for v, a := range h.acks {
		if a.at == at {
			out[a.offset] = v
		}
	}
	return out
}

func (h *history) ackCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.acks)
}

// final checks one partition's whole log as read after the heal phase,
// from its log start (acknowledged records below it were deleted by
// retention, which only a retention topic may do).
func (h *history) final(at tp, log []fetchedRecord, hw, logStart int64) {
	acked := h.acked(at)
	h.mu.Lock()
	retained := h.retentionTopics[at.topic]
	h.mu.Unlock()
	got := make(map[int64]string, len(log))
	for _, r := range log {
		got[r.offset] = r.value
	}
	offs := make([]int64, 0, len(acked))
	for off := range acked {
		offs = append(offs, off)
	}
	slices.Sort(offs)
	for _, off := range offs {
		if off < logStart && retained {
			continue
		}
		if v, ok := got[off]; !ok {
			h.violate("%s: acknowledged %q at offset %d is lost (high watermark %d, log start %d)", at, acked[off], off, hw, logStart)
		} else if v != acked[off] {
			h.violate("%s: acknowledged %q at offset %d, the log holds %q", at, acked[off], off, v)
		}
	}
	seen := map[string]int64{}
	lastSeq := map[int]int64{}
	for _, r := range log {
		if r.control {
			continue
		}
		if off, dup := seen[r.value]; dup {
			h.violate("%s: %q appears at offsets %d and %d (idempotent producer duplicated it)", at, r.value, off, r.offset)
		}
		seen[r.value] = r.offset
		p, seq, ok := parseValue(r.value)
		if !ok {
			continue // the read check reports unknown values
		}
		if last, ok := lastSeq[p]; ok && seq <= last {
			h.violate("%s: producer P%d's record seq %d at offset %d follows its seq %d", at, p, seq, r.offset, last)
		}
		lastSeq[p] = seq
	}
	h.read("final", at, log, hw, logStart)
	h.finalGroup(h.plan, at, log, logStart)
}
