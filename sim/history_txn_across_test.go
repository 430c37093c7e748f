package sim

import (
	"strings"
	"testing"
)

// TestCheckTxnsAcross plants the bug the cross-partition check is for: a
// read_committed session reads a committed transaction whole on one
// partition and skips all of it on another while reading across it
// there. The per-partition check cannot see it (nothing of the
// transaction was read on the second partition, so nothing is partial
// there); the cross-partition one must. A session that read both parts,
// or that started past the transaction on the second partition, is not
// flagged.
func TestCheckTxnsAcross(t *testing.T) {
	a, b := tp{"t", 0}, tp{"t", 1}
	// T0.1 has offsets 0, 1 on a and 1, 2 on b.
	recs := []txnRecord{{a, 0, "T0.1.0"}, {a, 1, "T0.1.1"}, {b, 1, "T0.1.2"}, {b, 2, "T0.1.3"}}
	run := func(readB []fetchedRecord) []string {
		h := newHistory(newTrace())
		h.txnEnded("p0", "T0.1", "commit", recs)
		h.readCommitted("s", a, []fetchedRecord{{offset: 0, value: "T0.1.0"}, {offset: 1, value: "T0.1.1"}, {offset: 2, value: "x"}}, 3)
		h.readCommitted("s", b, readB, 5)
		h.checkTxns()
		return h.failed()
	}
	// The planted bug: b's offsets 1 and 2 skipped between 0 and 3.
	v := run([]fetchedRecord{{offset: 0, value: "w"}, {offset: 3, value: "z"}})
	if len(v) != 1 || !strings.Contains(v[0], "read 2 of committed T0.1's 4 records across 2 partitions") {
		t.Fatalf("a transaction read on one partition only: violations %q, want the cross-partition one", v)
	}
	if v := run([]fetchedRecord{{offset: 0, value: "w"}, {offset: 1, value: "T0.1.2"}, {offset: 2, value: "T0.1.3"}, {offset: 3, value: "z"}}); len(v) != 0 {
		t.Fatalf("whole transaction read, flagged: %q", v)
	}
	if v := run([]fetchedRecord{{offset: 3, value: "z"}, {offset: 4, value: "zz"}}); len(v) != 0 {
		t.Fatalf("a session that started past the transaction on b was flagged: %q", v)
	}
}
