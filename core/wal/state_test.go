package wal

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// refRemoveRange and refOverlay are the index's first implementation (a
// fresh copy of the runs per operation), kept as the reference the
// in-place one must match.
func refRemoveRange(runs []run, lo, hi uint64) []run {
	out := make([]run, 0, len(runs)+1)
	for _, r := range runs {
		if r.last < lo || r.first > hi {
			out = append(out, r)
			continue
		}
		if r.first < lo {
			left := r
			left.last = lo - 1
			out = append(out, left)
		}
		if r.last > hi {
			right := r
			right.first = hi + 1
			out = append(out, right)
		}
	}
	return out
}

func refOverlay(runs []run, r run) []run {
	runs = refRemoveRange(runs, r.first, r.last)
	j := sort.Search(len(runs), func(j int) bool { return runs[j].first > r.first })
	return slices.Insert(slices.Clip(runs), j, r)
}

// TestIndexInPlaceMatchesCopy drives random appends, truncations,
// relocations (exact and partial) and compactions through node and the
// reference, and requires the same runs after every step.
func TestIndexInPlaceMatchesCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 300; iter++ {
		var n node
		var ref []run
		next := uint64(1)
		rec := int64(0)
		for step := 0; step < 200; step++ {
			rec++
			switch op := rng.IntN(10); {
			case op < 4: // append a record of 1-5 entries (after a truncation sometimes)
				first := next
				if rng.IntN(5) == 0 && next > 3 {
					first = next - uint64(rng.IntN(3)) - 1
				}
				if c := n.compactedTo; first <= c {
					first = c + 1
				}
				r := run{first: first, last: first + uint64(rng.IntN(5)), seg: uint64(rec), off: rec}
				n.truncateFrom(r.first)
				n.runs = append(n.runs, r)
				j := sort.Search(len(ref), func(j int) bool { return ref[j].last >= r.first })
				if j < len(ref) && ref[j].first < r.first {
					ref[j].last = r.first - 1
					j++
				}
				ref = append(ref[:j:j], r)
				next = r.last + 1
			case op < 7 && len(ref) > 0: // relocate one run, or a range across runs
				a := ref[rng.IntN(len(ref))]
				r := run{first: a.first, last: a.last, seg: uint64(rec), off: rec}
				if rng.IntN(3) == 0 {
					b := ref[rng.IntN(len(ref))]
					lo, hi := min(a.first, b.first), max(a.last, b.last)
					r.first = lo + uint64(rng.IntN(int(hi-lo)+1))
					r.last = r.first + uint64(rng.IntN(int(hi-r.first)+1))
				}
				n.overlay(r)
				ref = refOverlay(ref, r)
			case op < 9 && next > 1: // compact
				i := n.compactedTo + uint64(rng.IntN(int(next-n.compactedTo)))
				n.compact(i)
				ref = refRemoveRange(ref, 0, n.compactedTo)
			}
			if len(n.runs) != len(ref) || (len(ref) > 0 && !slices.Equal(n.runs, ref)) {
				t.Fatalf("iter %d step %d: runs %v, reference %v", iter, step, n.runs, ref)
			}
		}
	}
}
