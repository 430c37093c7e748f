package meta

import (
	"bytes"
	"hash/crc32"
	"log/slog"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func groupStates(t *testing.T, m *StateMachine) GroupStates {
	t.Helper()
	v, err := m.Lookup(QueryGroupStates{})
	if err != nil {
		t.Fatal(err)
	}
	return v.(GroupStates)
}

// A record replaces the group's previous one, an empty Data deletes it,
// and the answer is sorted by group.
func TestGroupStateApply(t *testing.T) {
	h := newHarness(t)
	h.must(PutGroupState{Group: "b", Term: 3, Seq: 1, Data: []byte("b1")})
	h.must(PutGroupState{Group: "a", Term: 3, Seq: 2, Data: []byte("a1")})
	h.must(PutGroupState{Group: "b", Term: 3, Seq: 3, Data: []byte("b2")})
	want := GroupStates{Fence: 3, Groups: []GroupState{
		{Group: "a", Term: 3, Seq: 2, Data: []byte("a1")},
		{Group: "b", Term: 3, Seq: 3, Data: []byte("b2")},
	}}
	if got := groupStates(t, h.m); !reflect.DeepEqual(got, want) {
		t.Fatalf("states %+v, want %+v", got, want)
	}
	h.must(PutGroupState{Group: "a", Term: 3, Seq: 4})
	h.must(PutGroupState{Group: "nothing", Term: 3, Seq: 5}) // deleting an absent record is no error
	want.Groups = want.Groups[1:]
	if got := groupStates(t, h.m); !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete %+v, want %+v", got, want)
	}
	if r := h.apply(PutGroupState{Term: 3, Seq: 6, Data: []byte("x")}); r.Code != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group id: code %d", r.Code)
	}
}

// A write of an earlier tenure is refused once a later tenure fenced or
// wrote, and so is a write not after the group's record in its tenure.
func TestGroupStateStaleTenureRefused(t *testing.T) {
	h := newHarness(t)
	h.must(PutGroupState{Group: "g", Term: 5, Seq: 10, Data: []byte("gen7")})
	h.must(FenceGroupStates{Term: 6})
	for _, c := range []Command{
		PutGroupState{Group: "g", Term: 5, Seq: 11, Data: []byte("gen8 of the old tenure")},
		PutGroupState{Group: "g", Term: 5, Seq: 11},
		PutGroupState{Group: "other", Term: 5, Seq: 1, Data: []byte("x")},
		FenceGroupStates{Term: 5},
	} {
		if r := h.apply(c); r.Code != kerr.NotCoordinator.Code {
			t.Fatalf("%#v: code %d, want NOT_COORDINATOR", c, r.Code)
		}
	}
	h.must(PutGroupState{Group: "g", Term: 6, Seq: 1, Data: []byte("gen8")})
	if r := h.apply(PutGroupState{Group: "g", Term: 6, Seq: 1, Data: []byte("again")}); r.Code != kerr.NotCoordinator.Code {
		t.Fatalf("same (term, seq): code %d", r.Code)
	}
	// A later tenure writing (without a fence) fences the earlier too.
	h.must(PutGroupState{Group: "h", Term: 8, Seq: 1, Data: []byte("h")})
	if r := h.apply(PutGroupState{Group: "g", Term: 7, Seq: 100, Data: []byte("x")}); r.Code != kerr.NotCoordinator.Code {
		t.Fatalf("term 7 after term 8 wrote: code %d", r.Code)
	}
	got := groupStates(t, h.m)
	want := GroupStates{Fence: 8, Groups: []GroupState{
		{Group: "g", Term: 6, Seq: 1, Data: []byte("gen8")},
		{Group: "h", Term: 8, Seq: 1, Data: []byte("h")},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("states %+v, want %+v", got, want)
	}
}

func TestGroupStateSnapshotRoundTrip(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	h.must(PutGroupState{Group: "g", Term: 2, Seq: 1, Data: []byte{0, 1, 2}})
	h.must(PutGroupState{Group: "f", Term: 4, Seq: 9, Data: []byte("f")})
	h.must(FenceGroupStates{Term: 7})
	r, b := h.restored()
	if got, want := groupStates(t, r), groupStates(t, h.m); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %+v, want %+v", got, want)
	}
	_, b2 := (&harness{t: t, m: r}).restored()
	if !bytes.Equal(b, b2) {
		t.Fatal("snapshot of the restored state differs")
	}
	// The fence survives the snapshot.
	if res := (&harness{t: t, m: r, index: h.index}).apply(PutGroupState{Group: "g", Term: 6, Seq: 1, Data: []byte("x")}); res.Code != kerr.NotCoordinator.Code {
		t.Fatalf("restored fence: code %d", res.Code)
	}
	for _, c := range []Command{PutGroupState{Group: "g", Term: 2, Seq: 1, Data: []byte{0, 1}}, PutGroupState{Group: "g", Term: 1}, FenceGroupStates{Term: 3}} {
		got, err := Decode(Encode(c))
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("codec round trip of %#v: %#v %v", c, got, err)
		}
	}
}

// A version 8 snapshot (no group states section) still restores, with
// no records and fence 0.
func TestSnapshotV8Compatible(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	var buf bytes.Buffer
	if err := h.m.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	v9 := buf.Bytes()
	if v9[len(v9)-5] != 0 || v9[len(v9)-6] != 0 {
		t.Fatal("unexpected v9 layout")
	}
	body := bytes.Clone(v9[:len(v9)-7]) // drop the empty group states and group shards sections and the CRC
	body[len(snapshotMagic)] = snapshotVersionNoGroupStates
	v8 := (&enc{b: body}).u32fixedAppend(crc32.Checksum(body, crcTable))
	r := New(slog.New(slog.DiscardHandler))
	if err := r.RecoverFromSnapshot(bytes.NewReader(v8), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normView(r.View()), normView(h.m.View())) {
		t.Fatal("v8 restore differs")
	}
	if got := groupStates(t, r); got.Fence != 0 || got.Groups != nil {
		t.Fatalf("v8 restore has group states %+v", got)
	}
}
