package meta

import (
	"bytes"
	"errors"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/goleak"
)

func entry(index uint64, cmd []byte) sm.Entry { return sm.Entry{Index: index, Cmd: cmd} }

func TestUpdateBadEntryIsAResult(t *testing.T) {
	var logs bytes.Buffer
	m := New(slog.New(slog.NewTextHandler(&logs, nil)))
	ch := m.Changed()
	for i, b := range [][]byte{nil, {0xff}, {CommandVersion, 77}} {
		res, err := m.Update(entry(uint64(i+1), b))
		if err != nil {
			t.Fatalf("Update(%x) error %v", b, err)
		}
		if res.Value != uint64(kerr.InvalidRequest.Code) {
			t.Fatalf("Update(%x) value %d", b, res.Value)
		}
		r, err := DecodeResult(res)
		if err != nil || r.Code != kerr.InvalidRequest.Code || !strings.Contains(r.Message, "bad command") {
			t.Fatalf("result %+v, %v", r, err)
		}
	}
	if m.Version() != 3 {
		t.Fatalf("version %d", m.Version())
	}
	select {
	case <-ch:
		t.Fatal("bad entries notified a change")
	default:
	}
	if got := strings.Count(logs.String(), "undecodable"); got != 3 {
		t.Fatalf("%d log lines:\n%s", got, logs.String())
	}
}

func TestUpdateIndexMustGrow(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "index 1 after applied index 1") {
			t.Fatalf("recover() = %v", r)
		}
	}()
	h.m.Update(entry(1, Encode(broker(2))))
}

func TestChangedAndView(t *testing.T) {
	h := newHarness(t)
	ch := h.m.Changed()
	v0 := h.m.View()
	h.must(broker(1))
	select {
	case <-ch:
	default:
		t.Fatal("no notification")
	}
	if h.m.Changed() == ch {
		t.Fatal("channel not replaced")
	}
	if len(v0.Brokers) != 0 || v0.Version != 0 {
		t.Fatalf("old view changed: %+v", v0)
	}
	ch = h.m.Changed()
	h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1})
	<-ch
	v1 := h.m.View()
	ch = h.m.Changed()
	h.must(CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t"}}})
	<-ch // offsets are state too
	v2 := h.m.View()
	if v2.Version != 3 || v2.TopologyVersion != 2 || v1.TopologyVersion != 2 {
		t.Fatalf("versions %d/%d, %d", v2.Version, v2.TopologyVersion, v1.TopologyVersion)
	}
	if &v1.Topics[0] != &v2.Topics[0] {
		t.Fatal("unchanged topology not shared between views")
	}
	if b, ok := v2.Broker(1); !ok || b.NodeID != 1 {
		t.Fatalf("Broker(1) = %+v %v", b, ok)
	}
	if _, ok := v2.Broker(2); ok {
		t.Fatal("Broker(2) found")
	}
	if v2.Topic("t") == nil || v2.Topic("u") != nil || v2.TopicByID(v2.Topic("t").ID) != v2.Topic("t") || v2.TopicByID(TopicID{}) != nil {
		t.Fatal("topic lookups")
	}
}

func TestHostedPartitions(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	h.must(CreateTopic{Name: "b", Partitions: 3, ReplicationFactor: 1})
	h.must(CreateTopic{Name: "a", Partitions: 3, ReplicationFactor: 2})
	got := h.m.View().HostedPartitions(2)
	var shards []uint64
	for _, p := range got {
		if !slices.Contains(p.Replicas, 2) {
			t.Fatalf("%+v does not host 2", p)
		}
		shards = append(shards, p.ShardID)
	}
	// b: [1] [2] [3] -> shard 1001; a (cursor 3 -> 0): [1 2] [2 3] [3 1] -> 1003, 1004.
	if want := []uint64{1001, 1003, 1004}; !reflect.DeepEqual(shards, want) {
		t.Fatalf("shards %v, want %v", shards, want)
	}
}

func TestLookup(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 1, Configs: []ConfigEntry{{"retention.ms", "1"}}})
	h.must(CommitOffsets{Group: "g", CommitTimestampMs: 5, Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 7}, {Topic: "t", Partition: 0, Offset: 6}}})

	v, err := h.m.Lookup(QueryView{})
	if err != nil || v.(*View) != h.m.View() {
		t.Fatalf("QueryView = %v, %v", v, err)
	}
	got, _ := h.m.Lookup(QueryTopic{Name: "t"})
	tp := got.(*Topic)
	tp.Partitions[0].Replicas[0] = 99 // a copy: the state must not see this
	tp.Configs[0].Value = "x"
	if live := h.m.View().Topic("t"); live.Partitions[0].Replicas[0] != 1 || live.Configs[0].Value != "1" {
		t.Fatalf("Lookup returned shared memory: %+v", live)
	}
	if got, _ := h.m.Lookup(QueryTopic{Name: "nope"}); got.(*Topic) != nil {
		t.Fatalf("missing topic = %v", got)
	}
	offs, _ := h.m.Lookup(QueryGroupOffsets{Group: "g"})
	want := []GroupOffset{
		{Topic: "t", Partition: 0, OffsetValue: OffsetValue{Offset: 6, CommitTimestampMs: 5}},
		{Topic: "t", Partition: 1, OffsetValue: OffsetValue{Offset: 7, CommitTimestampMs: 5}},
	}
	if !reflect.DeepEqual(offs, want) {
		t.Fatalf("offsets %+v", offs)
	}
	if got, _ := h.m.Lookup(QueryOffset{Group: "g", Topic: "t", Partition: 3}); got.(OffsetLookup).Found {
		t.Fatal("found a missing offset")
	}
	if _, err := h.m.Lookup("what"); !errors.Is(err, ErrUnknownQuery) {
		t.Fatalf("unknown query err %v", err)
	}
}

func TestFactory(t *testing.T) {
	m := Factory(slog.New(slog.DiscardHandler))(ControllerShardID, 1)
	if _, err := m.Update(entry(1, Encode(broker(1)))); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotDeterministicAndEmpty(t *testing.T) {
	var a, b bytes.Buffer
	if err := New(slog.New(slog.DiscardHandler)).SaveSnapshot(&a, nil, nil); err != nil {
		t.Fatal(err)
	}
	m := New(slog.New(slog.DiscardHandler))
	if err := m.RecoverFromSnapshot(bytes.NewReader(a.Bytes()), nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveSnapshot(&b, nil, nil); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("empty snapshot not stable: %v", err)
	}
}

func TestSnapshotRejectsBrokenInvariants(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 1})
	cases := map[string]func(s *state){
		"shard beyond counter": func(s *state) { s.nextShardID = FirstPartitionShardID },
		"duplicate shard": func(s *state) {
			t := s.topics["t"].clone()
			t.Partitions[1].ShardID = t.Partitions[0].ShardID
			s.topics["t"] = t
		},
		"offset on missing partition": func(s *state) {
			s.offsets["g"] = map[string]map[int32]OffsetValue{"t": {5: {}}}
		},
		"bad index": func(s *state) {
			t := s.topics["t"].clone()
			t.Partitions[1].Index = 7
			s.topics["t"] = t
		},
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			good := h.m.st.encodeSnapshot()
			s, err := decodeSnapshot(good)
			if err != nil {
				t.Fatal(err)
			}
			breakIt(s)
			m := New(slog.New(slog.DiscardHandler))
			if err := m.RecoverFromSnapshot(bytes.NewReader(s.encodeSnapshot()), nil, nil); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("err %v", err)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestRecoverReadError(t *testing.T) {
	if err := New(slog.New(slog.DiscardHandler)).RecoverFromSnapshot(failingReader{}, nil, nil); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err %v", err)
	}
}

// TestWatcherMissesNothing runs a watcher the way a reconciler would and
// checks that it always reaches the final version without polling.
func TestWatcherMissesNothing(t *testing.T) {
	const updates = 200
	h := newHarness(t)
	done := make(chan uint64)
	go func() {
		for {
			ch := h.m.Changed() // before View, so no change slips between
			if v := h.m.View(); v.Version == updates {
				done <- v.Version
				return
			}
			<-ch
		}
	}()
	for i := 0; i < updates; i++ {
		h.must(AllocateProducerIDs{Count: 1})
	}
	if got := <-done; got != updates {
		t.Fatalf("watcher ended at %d", got)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
