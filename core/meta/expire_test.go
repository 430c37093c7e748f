package meta

import (
	"bytes"
	"reflect"
	"testing"
)

// ExpireOffsets deletes only the named group's offsets committed before
// the cutoff, prunes what it empties, and the result survives a snapshot.
func TestExpireOffsets(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 3, ReplicationFactor: 1})
	h.must(CreateTopic{Name: "u", Partitions: 1, ReplicationFactor: 1})
	h.must(CommitOffsets{Group: "g", CommitTimestampMs: 100, Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 1}, {Topic: "u", Partition: 0, Offset: 2}}})
	h.must(CommitOffsets{Group: "g", CommitTimestampMs: 200, Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 3}}})
	h.must(CommitOffsets{Group: "g", CommitTimestampMs: 150, Offsets: []OffsetCommit{{Topic: "t", Partition: 2, Offset: 4}}})
	h.must(CommitOffsets{Group: "other", CommitTimestampMs: 100, Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 9}}})

	// Unknown group, or nothing old enough: no change, no error.
	h.must(ExpireOffsets{Group: "absent", CutoffMs: 1000})
	if r := h.must(ExpireOffsets{Group: "g", CutoffMs: 100}); r.Partitions != nil {
		t.Fatalf("cutoff 100 expired %+v", r.Partitions)
	}

	// The cutoff is exclusive: 150 stays at cutoff 150.
	r := h.must(ExpireOffsets{Group: "g", CutoffMs: 150})
	if want := []PartitionCode{{"t", 0, 0}, {"u", 0, 0}}; !reflect.DeepEqual(r.Partitions, want) {
		t.Fatalf("expired %+v, want %+v", r.Partitions, want)
	}
	got, _ := h.m.Lookup(QueryGroupOffsets{Group: "g"})
	want := []GroupOffset{
		{Topic: "t", Partition: 1, OffsetValue: OffsetValue{Offset: 3, CommitTimestampMs: 200}},
		{Topic: "t", Partition: 2, OffsetValue: OffsetValue{Offset: 4, CommitTimestampMs: 150}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("left %+v, want %+v", got, want)
	}
	if o, _ := h.m.Lookup(QueryOffset{Group: "other", Topic: "t", Partition: 0}); !o.(OffsetLookup).Found {
		t.Fatal("another group's offset expired")
	}

	// A snapshot after expiry restores an equal state, byte for byte.
	restored, b := h.restored()
	var again bytes.Buffer
	if err := restored.SaveSnapshot(&again, nil, nil); err != nil || !bytes.Equal(b, again.Bytes()) {
		t.Fatalf("re-saved snapshot differs (err %v)", err)
	}
	if got, _ := restored.Lookup(QueryGroupOffsets{Group: "g"}); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored %+v", got)
	}

	// Expiring everything removes the group.
	h.must(ExpireOffsets{Group: "g", CutoffMs: 1 << 62})
	if gs, _ := h.m.Lookup(QueryGroups{}); !reflect.DeepEqual(gs, []string{"other"}) {
		t.Fatalf("groups %v", gs)
	}
}

// QueryExpirableGroups lists, sorted, the groups with an offset committed
// before the cutoff.
func TestQueryExpirableGroups(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 1})
	for _, c := range []CommitOffsets{
		{Group: "b", CommitTimestampMs: 10, Offsets: []OffsetCommit{{Topic: "t", Partition: 0}}},
		{Group: "a", CommitTimestampMs: 50, Offsets: []OffsetCommit{{Topic: "t", Partition: 0}}},
		{Group: "a", CommitTimestampMs: 5, Offsets: []OffsetCommit{{Topic: "t", Partition: 1}}},
		{Group: "c", CommitTimestampMs: 40, Offsets: []OffsetCommit{{Topic: "t", Partition: 1}}},
	} {
		h.must(c)
	}
	got, err := h.m.Lookup(QueryExpirableGroups{CutoffMs: 20})
	if err != nil || !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("expirable %v (err %v)", got, err)
	}
}
