package sim

import (
	"slices"
	"strconv"
	"strings"
)

// Transactions in the history (the transactional workload,
// workload_txn_test.go). Checked against these promises:
//   - a read_committed session never reads a record of an aborted
//     transaction (one whose EndTransaction(abort) succeeded), whenever
//     the abort and the read happen;
//   - a read_committed session never reads at or above the last stable
//     offset of the same response, and per session the LSO never goes
//     backwards;
//   - all or nothing: a read_committed session that read a record of a
//     committed transaction on a partition, and later a record past that
//     transaction's last record there, read every record of the
//     transaction on that partition (checkTxns, after the run);
//   - all or nothing across partitions: a read_committed session that
//     read a record of a committed transaction and, on every partition of
//     that transaction, read from at or below its first record there to
//     past its last, read every record of it on every partition
//     (checkTxnsAcross);
//   - the records of a committed transaction are acknowledged: none may
//     be lost (the final check, as for any acknowledged record).

// txnRecord is one record of a transaction, where its produce promise put it.
type txnRecord struct {
	at     tp
	offset int64
	value  string
}

// txnValue names record i of transaction txn of transactional producer p.
func txnValue(p int, txn int64, i int) string {
	return "T" + strconv.Itoa(p) + "." + strconv.FormatInt(txn, 10) + "." + strconv.Itoa(i)
}

// txnOf is the transaction ("T<p>.<txn>") a transactional value belongs to.
func txnOf(v string) (string, bool) {
	if !strings.HasPrefix(v, "T") {
		return "", false
	}
	i := strings.LastIndexByte(v, '.')
	if i < 0 {
		return "", false
	}
	return v[:i], true
}

type txnHistory struct {
	aborted   map[string]bool        // transaction -> aborted (EndTransaction(abort) succeeded)
	committed map[string][]txnRecord // transaction -> its records
	rcSeen    map[string]bool        // value -> some read_committed session read it
	rcOffsets map[sessionKey]map[int64]bool
	lso       map[sessionKey]int64
	outcomes  map[string]int // "commit", "abort", "unknown" -> count
}

func (h *history) txns() *txnHistory {
	if h.tx == nil {
		h.tx = &txnHistory{aborted: map[string]bool{}, committed: map[string][]txnRecord{}, rcSeen: map[string]bool{},
			rcOffsets: map[sessionKey]map[int64]bool{}, lso: map[sessionKey]int64{}, outcomes: map[string]int{}}
	}
	return h.tx
}

// txnEnded records a transaction's outcome: committed (its records are
// acknowledged), aborted, or unknown (the client failed before knowing).
func (h *history) txnEnded(producer, txn string, outcome string, recs []txnRecord) {
	h.tr.add(evAck, "%s %s %s n=%d", producer, txn, outcome, len(recs))
	h.mu.Lock()
	x := h.txns()
	x.outcomes[outcome]++
	switch outcome {
	case "abort":
		x.aborted[txn] = true
		for _, r := range recs {
			if x.rcSeen[r.value] {
				h.violateLocked("read_committed read %q of %s before it was aborted", r.value, txn)
			}
		}
	case "commit":
		x.committed[txn] = recs
	}
	h.mu.Unlock()
	if outcome == "commit" {
		for _, r := range recs {
			h.ack(producer, r.at, r.offset, []string{r.value})
		}
	}
}

// readCommitted records one read_committed fetch response (after read).
func (h *history) readCommitted(session string, at tp, recs []fetchedRecord, lso int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	x := h.txns()
	k := sessionKey{session, at}
	if last, ok := x.lso[k]; ok && lso >= 0 && lso < last {
		h.violateLocked("%s %s: last stable offset went back from %d to %d", session, at, last, lso)
	}
	if lso > x.lso[k] {
		x.lso[k] = lso
	}
	offs := x.rcOffsets[k]
	if offs == nil {
		offs = map[int64]bool{}
		x.rcOffsets[k] = offs
	}
	for _, r := range recs {
		if lso >= 0 && r.offset >= lso {
			h.violateLocked("%s %s: read_committed served offset %d at or above the last stable offset %d", session, at, r.offset, lso)
		}
		offs[r.offset] = true
		if txn, ok := txnOf(r.value); ok {
			x.rcSeen[r.value] = true
			if x.aborted[txn] {
				h.violateLocked("%s %s offset %d: read_committed served %q of aborted %s", session, at, r.offset, r.value, txn)
			}
		}
	}
}

// checkTxns runs the all-or-nothing check over every read_committed
// session, in a fixed order.
func (h *history) checkTxns() {
	h.mu.Lock()
	defer h.mu.Unlock()
	x := h.tx
	if x == nil {
		return
	}
	keys := make([]sessionKey, 0, len(x.rcOffsets))
	for k := range x.rcOffsets {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b sessionKey) int {
		return strings.Compare(a.session+"/"+a.at.String(), b.session+"/"+b.at.String())
	})
	txns := make([]string, 0, len(x.committed))
	for t := range x.committed {
		txns = append(txns, t)
	}
	slices.Sort(txns)
	for _, k := range keys {
		if h.retentionTopics[k.at.topic] {
			continue // retention may delete part of a transaction under a reader
		}
		offs := x.rcOffsets[k]
		var maxRead int64 = -1
		for o := range offs {
			maxRead = max(maxRead, o)
		}
		for _, t := range txns {
			var mine []int64
			for _, r := range x.committed[t] {
				if r.at == k.at {
					mine = append(mine, r.offset)
				}
			}
			if len(mine) == 0 || maxRead <= slices.Max(mine) {
				continue
			}
			var seen, missing int
			for _, o := range mine {
				if offs[o] {
					seen++
				} else {
					missing++
				}
			}
			if seen > 0 && missing > 0 {
				h.violateLocked("%s %s: read_committed read %d of committed %s's %d records there", k.session, k.at, seen, t, len(mine))
			}
		}
	}
	h.checkTxnsAcross(keys, txns)
}

// checkTxnsAcross is the all-or-nothing check across partitions: per
// session (keys sorted) and committed transaction (txns sorted) spanning
// partitions the session covered whole (its reads there start at or
// below the transaction's first record and go past its last), a session
// that read any of its records read all of them. Partitions the session
// did not cover (a consumer resuming past the transaction) decide
// nothing.
func (h *history) checkTxnsAcross(keys []sessionKey, txns []string) {
	x := h.tx
	type span struct{ lo, hi int64 }
	spans := map[sessionKey]span{}
	var sessions []string
	for _, k := range keys {
		if len(sessions) == 0 || sessions[len(sessions)-1] != k.session {
			sessions = append(sessions, k.session)
		}
		sp := span{lo: -1, hi: -1}
		for o := range x.rcOffsets[k] {
			if sp.lo < 0 || o < sp.lo {
				sp.lo = o
			}
			sp.hi = max(sp.hi, o)
		}
		spans[k] = sp
	}
	slices.Sort(sessions)
	sessions = slices.Compact(sessions)
	for _, session := range sessions {
		for _, t := range txns {
			recs := x.committed[t]
			byTP := map[tp][]int64{}
			for _, r := range recs {
				byTP[r.at] = append(byTP[r.at], r.offset)
			}
			if len(byTP) < 2 {
				continue // one partition: checkTxns
			}
			covered, seen := true, 0
			for at, offs := range byTP { // all must hold: order does not matter
				k := sessionKey{session, at}
				sp, ok := spans[k]
				if !ok || h.retentionTopics[at.topic] || sp.lo > slices.Min(offs) || sp.hi <= slices.Max(offs) {
					covered = false
					break
				}
			}
			if !covered {
				continue
			}
			for _, r := range recs {
				if x.rcOffsets[sessionKey{session, r.at}][r.offset] {
					seen++
				}
			}
			if seen > 0 && seen < len(recs) {
				h.violateLocked("%s: read_committed read %d of committed %s's %d records across %d partitions", session, seen, t, len(recs), len(byTP))
			}
		}
	}
}

// txnSummary is a line for the run's log.
func (h *history) txnSummary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tx == nil {
		return ""
	}
	return "transactions: " + strconv.Itoa(h.tx.outcomes["commit"]) + " committed, " + strconv.Itoa(h.tx.outcomes["abort"]) + " aborted, " +
		strconv.Itoa(h.tx.outcomes["unknown"]) + " unknown; read_committed read " + strconv.Itoa(len(h.tx.rcSeen)) + " transactional records"
}
