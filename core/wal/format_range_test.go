package wal

import (
	"bytes"
	"testing"
)

// TestAppendEntriesRange: a sub-range copied out of a record without
// decoding is byte for byte the record those entries encode to, for
// every range of a record.
func TestAppendEntriesRange(t *testing.T) {
	k := nodeKey{shard: 7, replica: 2}
	all := ents(5, 14, 3)
	all[4].Cmd = bytes.Repeat([]byte("x"), 3000) // sizes differ
	_, p, _, err := parseRecord(appendEntries(nil, recEntries, k, all))
	if err != nil {
		t.Fatal(err)
	}
	v, err := viewEntries(p)
	if err != nil {
		t.Fatal(err)
	}
	for lo := uint64(5); lo <= 14; lo++ {
		for hi := lo; hi <= 14; hi++ {
			got := appendEntriesRange(nil, recRelocated, v, lo, hi)
			want := appendEntries(nil, recRelocated, k, all[lo-5:hi-4])
			if !bytes.Equal(got, want) {
				t.Fatalf("[%d, %d]: %d bytes, want %d", lo, hi, len(got), len(want))
			}
		}
	}
}
