package meta

import (
	"bytes"
	"log/slog"
	"reflect"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/twmb/franz-go/pkg/kerr"
)

// GroupShardIndex is Kafka's abs(String.hashCode) % n; the hash codes are
// Java's.
func TestGroupShardIndex(t *testing.T) {
	for _, c := range []struct {
		group string
		n     int
		want  int32
	}{
		{"", 50, 0},
		{"hello", 50, 99162322 % 50},
		{"abc", 7, 96354 % 7},
		{"polygenelubricants", 50, 0}, // hashCode is MinInt32: Kafka's abs gives 0
		{"Aa", 4, 2112 % 4},           // "Aa" and "BB" collide in Java
		{"BB", 4, 2112 % 4},
		{"\U0001F600", 3, int32((55357*31 + 56832) % 3)}, // a surrogate pair: two UTF-16 units
		{"anything", 0, 0},
	} {
		if got := GroupShardIndex(c.group, c.n); got != c.want {
			t.Errorf("GroupShardIndex(%q, %d) = %d, want %d", c.group, c.n, got, c.want)
		}
	}
	// A negative hash code: "zzzzzzz" overflows.
	if got := GroupShardIndex("zzzzzzzzzz", 50); got < 0 || got >= 50 {
		t.Fatalf("index %d out of range", got)
	}
}

// CreateGroupShards places N shards once; a later one changes nothing;
// leaders are reported like partitions'; the controller then refuses its
// legacy group commands.
func TestCreateGroupShards(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1})
	h.must(CommitOffsets{Group: "old", Offsets: []OffsetCommit{{Topic: "t", Offset: 3}}})
	h.must(CreateGroupShards{Count: 3})
	h.must(CreateGroupShards{Count: 8})
	v := h.m.View()
	if len(v.GroupShards) != 3 {
		t.Fatalf("group shards %+v", v.GroupShards)
	}
	for i, g := range v.GroupShards {
		if g.ShardID != FirstGroupShardID+uint64(i) || len(g.Replicas) != 3 {
			t.Fatalf("shard %d: %+v", i, g)
		}
	}
	g1 := v.GroupShards[1]
	h.must(SetPartitionLeader{ShardID: g1.ShardID, Leader: g1.Replicas[2], Term: 4})
	if got := h.m.View().GroupShards[1]; got.Leader != g1.Replicas[2] || got.LeaderEpoch != 4 {
		t.Fatalf("leader not recorded: %+v", got)
	}
	if g, ok := h.m.View().GroupShardFor("x"); !ok || g.Index != GroupShardIndex("x", 3) {
		t.Fatalf("GroupShardFor: %+v %v", g, ok)
	}
	for _, c := range []Command{
		CommitOffsets{Group: "old", Offsets: []OffsetCommit{{Topic: "t", Offset: 4}}},
		PutGroupState{Group: "old", Term: 1, Seq: 1, Data: []byte("x")},
		FenceGroupStates{Term: 9},
		DeleteGroups{Groups: []string{"old"}},
		ExpireOffsets{Group: "old", CutoffMs: 1 << 40},
	} {
		if r := h.apply(c); r.Code != kerr.NotCoordinator.Code {
			t.Fatalf("%#v: code %d", c, r.Code)
		}
	}
	if r := h.apply(CreateGroupShards{Count: 0}); r.Code != 0 {
		t.Fatalf("a later CreateGroupShards is a no-op: %d", r.Code)
	}
	r, _ := h.restored()
	if !reflect.DeepEqual(r.View().GroupShards, h.m.View().GroupShards) {
		t.Fatal("group shards not restored")
	}
}

// With group shards, a committed transaction completes only once its
// groups' offsets are reported in their shards, and its offsets are not
// put in the controller's.
func TestTxnGroupMarkers(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(1) {
		h.must(c)
	}
	h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1})
	h.must(CreateGroupShards{Count: 2})
	pid := h.must(InitTxnProducer{TxnID: "x", TimeoutMs: 60000}).ProducerIDs.First
	h.must(AddTxnPartitions{TxnID: "x", ProducerID: pid, Partitions: []TopicPartition{{Topic: "t"}}})
	h.must(AddTxnGroup{TxnID: "x", ProducerID: pid, Group: "g"})
	h.must(AddTxnGroup{TxnID: "x", ProducerID: pid, Group: "nooffsets"})
	h.must(TxnCommitOffsets{TxnID: "x", ProducerID: pid, Group: "g", Offsets: []OffsetCommit{{Topic: "t", Offset: 9}}})
	h.must(EndTxn{TxnID: "x", ProducerID: pid, Commit: true})
	if tx := h.txn("x"); tx.State != TxnPrepareCommit || !reflect.DeepEqual(tx.Groups, []string{"g"}) {
		t.Fatalf("after EndTxn: %+v", tx)
	}
	h.must(TxnMarkersWritten{TxnID: "x", ProducerID: pid, Partitions: []TopicPartition{{Topic: "t"}}})
	if tx := h.txn("x"); tx.State != TxnPrepareCommit {
		t.Fatalf("completed before the group's marker: %+v", tx)
	}
	h.must(TxnGroupMarkersWritten{TxnID: "x", ProducerID: pid, Groups: []string{"g"}})
	if tx := h.txn("x"); tx.State != TxnCompleteCommit {
		t.Fatalf("not completed: %+v", tx)
	}
	if v, _ := h.m.Lookup(QueryGroupOffsets{Group: "g"}); v.([]GroupOffset) != nil {
		t.Fatalf("offsets committed in the controller: %+v", v)
	}
}

type groupHarness struct {
	t     *testing.T
	m     *GroupStateMachine
	index uint64
}

func (h *groupHarness) apply(cmd Command) Result {
	h.t.Helper()
	h.index++
	res, err := h.m.Update(sm.Entry{Index: h.index, Cmd: Encode(cmd)})
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := DecodeResult(res)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *groupHarness) offsets(g string) []GroupOffset {
	v, err := h.m.Lookup(QueryGroupOffsets{Group: g})
	if err != nil {
		h.t.Fatal(err)
	}
	return v.([]GroupOffset)
}

// A group shard applies offset and record commands without topics,
// deduplicates transaction markers by decision, imports without
// overwriting, refuses controller commands, and snapshots all of it.
func TestGroupStateMachine(t *testing.T) {
	h := &groupHarness{t: t, m: NewGroupStateMachine(slog.New(slog.DiscardHandler))}
	if r := h.apply(CommitOffsets{Group: "g", CommitTimestampMs: 5, Offsets: []OffsetCommit{{Topic: "t", Partition: 2, Offset: 7}}}); r.Code != 0 {
		t.Fatalf("commit: %+v", r)
	}
	if r := h.apply(CreateTopic{Name: "t", Partitions: 1}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("controller command: %+v", r)
	}
	h.apply(CommitTxnOffsets{ProducerID: 1, Decision: 10, CommitTimestampMs: 6, Offsets: []TxnOffset{{Group: "g", OffsetCommit: OffsetCommit{Topic: "t", Partition: 0, Offset: 3}}}})
	h.apply(CommitTxnOffsets{ProducerID: 1, Decision: 10, CommitTimestampMs: 7, Offsets: []TxnOffset{{Group: "g", OffsetCommit: OffsetCommit{Topic: "t", Partition: 0, Offset: 99}}}})
	h.apply(ImportOffsets{Group: "g", Offsets: []GroupOffset{{Topic: "t", Partition: 2, OffsetValue: OffsetValue{Offset: 1}}, {Topic: "u", Partition: 0, OffsetValue: OffsetValue{Offset: 4, CommitTimestampMs: 1}}}})
	h.apply(ImportGroupState{State: GroupState{Group: "g", Term: 3, Seq: 4, Data: []byte("rec")}})
	h.apply(FinishImport{})
	want := []GroupOffset{
		{Topic: "t", Partition: 0, OffsetValue: OffsetValue{Offset: 3, CommitTimestampMs: 6}},
		{Topic: "t", Partition: 2, OffsetValue: OffsetValue{Offset: 7, CommitTimestampMs: 5}},
		{Topic: "u", Partition: 0, OffsetValue: OffsetValue{Offset: 4, CommitTimestampMs: 1}},
	}
	if got := h.offsets("g"); !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets %+v, want %+v", got, want)
	}
	if r := h.apply(PutGroupState{Group: "g", Term: 1, Seq: 1, Data: []byte("new")}); r.Code != 0 {
		t.Fatalf("a write after an import: %+v", r)
	}
	var buf bytes.Buffer
	if err := h.m.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	r := &groupHarness{t: t, m: NewGroupStateMachine(nil), index: h.index}
	if err := r.m.RecoverFromSnapshot(bytes.NewReader(buf.Bytes()), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.offsets("g"), want) {
		t.Fatal("offsets not restored")
	}
	if v, _ := r.m.Lookup(QueryImported{}); v != true {
		t.Fatal("import flag not restored")
	}
	var again bytes.Buffer
	if err := r.m.SaveSnapshot(&again, nil, nil); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Fatal("snapshot not deterministic")
	}
	r.apply(CommitTxnOffsets{ProducerID: 1, Decision: 9, Offsets: []TxnOffset{{Group: "g", OffsetCommit: OffsetCommit{Topic: "t", Offset: 50}}}})
	if got := r.offsets("g"); got[0].Offset != 3 {
		t.Fatal("an older decision applied after restore")
	}
	buf.Bytes()[5] ^= 1
	if err := NewGroupStateMachine(nil).RecoverFromSnapshot(bytes.NewReader(buf.Bytes()), nil, nil); err == nil {
		t.Fatal("corrupt snapshot accepted")
	}
}

// The controller refuses the group shards' own commands, and a group
// shard the controller's: bad input is a Kafka error, never a crash.
func TestGroupShardCommandsElsewhere(t *testing.T) {
	h := newHarness(t)
	for _, c := range []Command{CommitTxnOffsets{ProducerID: 1}, ImportOffsets{Group: "g"}, ImportGroupState{State: GroupState{Group: "g", Data: []byte("x")}}, FinishImport{}} {
		if r := h.apply(c); r.Code != kerr.InvalidRequest.Code {
			t.Fatalf("%#v on the controller: %+v", c, r)
		}
	}
	g := &groupHarness{t: t, m: NewGroupStateMachine(nil)}
	for _, c := range []Command{CreateGroupShards{Count: 2}, TxnGroupMarkersWritten{TxnID: "x"}, RegisterBroker{NodeID: 1}, SetPartitionLeader{ShardID: 100, Leader: 1, Term: 1}} {
		if r := g.apply(c); r.Code != kerr.InvalidRequest.Code {
			t.Fatalf("%#v on a group shard: %+v", c, r)
		}
	}
}

// DeleteTopicOffsets removes a topic from every group, and a group left
// without offsets.
func TestDeleteTopicOffsets(t *testing.T) {
	h := &groupHarness{t: t, m: NewGroupStateMachine(nil)}
	h.apply(CommitOffsets{Group: "a", Offsets: []OffsetCommit{{Topic: "t", Offset: 1}, {Topic: "u", Offset: 2}}})
	h.apply(CommitOffsets{Group: "b", Offsets: []OffsetCommit{{Topic: "t", Offset: 3}}})
	if v, _ := h.m.Lookup(QueryOffsetTopics{}); !reflect.DeepEqual(v, []string{"t", "u"}) {
		t.Fatalf("topics %v", v)
	}
	h.apply(DeleteTopicOffsets{Topic: "t"})
	if v, _ := h.m.Lookup(QueryGroups{}); !reflect.DeepEqual(v, []string{"a"}) {
		t.Fatalf("groups %v", v)
	}
	if got := h.offsets("a"); len(got) != 1 || got[0].Topic != "u" {
		t.Fatalf("a: %+v", got)
	}
}
