package meta

import (
	"log/slog"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
)

// harness feeds commands to a StateMachine at consecutive indexes and
// checks the state invariants after each.
type harness struct {
	t     fataler
	m     *StateMachine
	index uint64
}

// fataler is what harness needs of *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func newHarness(t fataler) *harness {
	return &harness{t: t, m: New(slog.New(slog.DiscardHandler))}
}

func (h *harness) applyBytes(b []byte) Result {
	h.t.Helper()
	h.index++
	packed, err := h.m.Update(entry(h.index, b))
	if err != nil {
		h.t.Fatalf("Update returned error: %v", err)
	}
	r, err := DecodeResult(packed)
	if err != nil {
		h.t.Fatalf("DecodeResult: %v", err)
	}
	if err := h.m.st.checkInvariants(); err != nil {
		h.t.Fatalf("invariant broken after index %d: %v", h.index, err)
	}
	return r
}

func (h *harness) apply(cmd Command) Result {
	h.t.Helper()
	return h.applyBytes(Encode(cmd))
}

// must applies cmd and fails the test unless it succeeds.
func (h *harness) must(cmd Command) Result {
	h.t.Helper()
	r := h.apply(cmd)
	if r.Code != 0 {
		h.t.Fatalf("%#v: code %d (%s)", cmd, r.Code, r.Message)
	}
	return r
}

func broker(id int32) RegisterBroker {
	return RegisterBroker{NodeID: id, Host: "h", Port: 9092, RaftAddr: "h:7000"}
}

func withBrokers(n int32) []Command {
	var cs []Command
	for i := int32(1); i <= n; i++ {
		cs = append(cs, broker(i))
	}
	return cs
}

func TestApplyErrors(t *testing.T) {
	three := withBrokers(3)
	withTopic := append(withBrokers(3), CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: -1})
	withOffsets := append(append([]Command{}, withTopic...),
		CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 5}}})
	cases := []struct {
		name  string
		setup []Command
		cmd   Command
		code  int16
	}{
		{"register ok", nil, broker(1), 0},
		{"register negative id", nil, RegisterBroker{NodeID: -1, Host: "h", Port: 1}, kerr.InvalidRequest.Code},
		{"register empty host", nil, RegisterBroker{NodeID: 1, Port: 1}, kerr.InvalidRequest.Code},
		{"register bad port", nil, RegisterBroker{NodeID: 1, Host: "h", Port: 70000}, kerr.InvalidRequest.Code},
		{"register zero port", nil, RegisterBroker{NodeID: 1, Host: "h"}, kerr.InvalidRequest.Code},
		{"unregister ok", three, UnregisterBroker{NodeID: 2}, 0},
		{"unregister unknown", three, UnregisterBroker{NodeID: 9}, kerr.BrokerIDNotRegistered.Code},

		{"create ok", three, CreateTopic{Name: "a-b_c.1", Partitions: 3, ReplicationFactor: 2}, 0},
		{"create no brokers", nil, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1}, kerr.InvalidReplicationFactor.Code},
		{"create rf > brokers", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 4}, kerr.InvalidReplicationFactor.Code},
		{"create rf 0", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 0}, kerr.InvalidReplicationFactor.Code},
		{"create rf -2", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -2}, kerr.InvalidReplicationFactor.Code},
		{"create partitions 0", three, CreateTopic{Name: "t", Partitions: 0, ReplicationFactor: -1}, kerr.InvalidPartitions.Code},
		{"create partitions -1", three, CreateTopic{Name: "t", Partitions: -1, ReplicationFactor: -1}, kerr.InvalidPartitions.Code},
		{"create partitions too many", three, CreateTopic{Name: "t", Partitions: PartitionsPerTopicMax + 1, ReplicationFactor: -1}, kerr.InvalidPartitions.Code},
		{"create empty name", three, CreateTopic{Name: "", Partitions: 1, ReplicationFactor: -1}, kerr.InvalidTopicException.Code},
		{"create dot", three, CreateTopic{Name: ".", Partitions: 1, ReplicationFactor: -1}, kerr.InvalidTopicException.Code},
		{"create dotdot", three, CreateTopic{Name: "..", Partitions: 1, ReplicationFactor: -1}, kerr.InvalidTopicException.Code},
		{"create bad char", three, CreateTopic{Name: "a/b", Partitions: 1, ReplicationFactor: -1}, kerr.InvalidTopicException.Code},
		{"create name 249", three, CreateTopic{Name: strings.Repeat("x", 249), Partitions: 1, ReplicationFactor: -1}, 0},
		{"create collides", append(withBrokers(1), CreateTopic{Name: "a.b", Partitions: 1, ReplicationFactor: 1}),
			CreateTopic{Name: "a_b", Partitions: 1, ReplicationFactor: 1}, kerr.InvalidTopicException.Code},
		{"create exists", withTopic, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1}, kerr.TopicAlreadyExists.Code},
		{"create good configs", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{
			{"retention.ms", "-1"}, {"cleanup.policy", "delete"}, {"compression.type", "producer"}, {"unclean.leader.election.enable", "false"}, {"message.timestamp.type", "LogAppendTime"},
			{"segment.bytes", "1048576"}, {"segment.ms", "1000"}, {"max.message.bytes", "1000000"}, {"min.insync.replicas", "2"}, {"retention.bytes", "-1"},
		}}, 0},
		{"create unknown config", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"foo", "1"}}}, kerr.InvalidConfig.Code},
		{"create compact", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"cleanup.policy", "compact"}}}, kerr.InvalidConfig.Code},
		{"create bad int", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"retention.ms", "soon"}}}, kerr.InvalidConfig.Code},
		{"create recompression", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"compression.type", "zstd"}}}, kerr.InvalidConfig.Code},
		{"create unclean election", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"unclean.leader.election.enable", "true"}}}, kerr.InvalidConfig.Code},
		{"create unsupported kafka config", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"flush.ms", "1"}}}, kerr.InvalidConfig.Code},
		{"create segment below kafka 4 minimum", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"segment.bytes", "1048575"}}}, kerr.InvalidConfig.Code},
		{"create message limit above log limit", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"max.message.bytes", "67108865"}}}, kerr.InvalidConfig.Code},
		{"create small segment", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"segment.bytes", "13"}}}, kerr.InvalidConfig.Code},
		{"create duplicate config", three, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: []ConfigEntry{{"retention.ms", "1"}, {"retention.ms", "2"}}}, kerr.InvalidConfig.Code},

		{"delete by name", withTopic, DeleteTopic{Name: "t"}, 0},
		{"delete unknown name", withTopic, DeleteTopic{Name: "u"}, kerr.UnknownTopicOrPartition.Code},
		{"delete unknown id", withTopic, DeleteTopic{ID: TopicID{9}}, kerr.UnknownTopicID.Code},
		{"delete neither", withTopic, DeleteTopic{}, kerr.InvalidRequest.Code},

		{"partitions ok", withTopic, CreatePartitions{Topic: "t", Count: 5}, 0},
		{"partitions same", withTopic, CreatePartitions{Topic: "t", Count: 2}, kerr.InvalidPartitions.Code},
		{"partitions shrink", withTopic, CreatePartitions{Topic: "t", Count: 1}, kerr.InvalidPartitions.Code},
		{"partitions too many", withTopic, CreatePartitions{Topic: "t", Count: PartitionsPerTopicMax + 1}, kerr.InvalidPartitions.Code},
		{"partitions unknown", withTopic, CreatePartitions{Topic: "u", Count: 5}, kerr.UnknownTopicOrPartition.Code},
		{"partitions too few brokers", append(append([]Command{}, withTopic...), UnregisterBroker{NodeID: 3}),
			CreatePartitions{Topic: "t", Count: 5}, kerr.InvalidReplicationFactor.Code},

		{"alter set", withTopic, AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "retention.ms", Value: "10"}}}, 0},
		{"alter delete", withTopic, AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "retention.ms", Op: ConfigDelete}}}, 0},
		{"alter unknown key", withTopic, AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "x", Value: "1"}}}, kerr.InvalidConfig.Code},
		{"alter delete unknown key", withTopic, AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "x", Op: ConfigDelete}}}, kerr.InvalidConfig.Code},
		{"alter bad value", withTopic, AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "min.insync.replicas", Value: "0"}}}, kerr.InvalidConfig.Code},
		{"alter duplicate key", withTopic, AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "retention.ms", Value: "1"}, {Key: "retention.ms", Op: ConfigDelete}}}, kerr.InvalidRequest.Code},
		{"alter unknown topic", withTopic, AlterConfigs{Topic: "u"}, kerr.UnknownTopicOrPartition.Code},

		{"pid ok", nil, AllocateProducerIDs{Count: ProducerIDBlockMax}, 0},
		{"pid zero", nil, AllocateProducerIDs{Count: 0}, kerr.InvalidRequest.Code},
		{"pid too many", nil, AllocateProducerIDs{Count: ProducerIDBlockMax + 1}, kerr.InvalidRequest.Code},

		{"commit ok", withTopic, CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 1}}}, 0},
		{"commit unknown topic", withTopic, CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "u"}}}, kerr.UnknownTopicOrPartition.Code},
		{"commit unknown partition", withTopic, CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 2}}}, kerr.UnknownTopicOrPartition.Code},
		{"commit negative partition", withTopic, CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: -1}}}, kerr.UnknownTopicOrPartition.Code},
		{"commit empty group", withTopic, CommitOffsets{Offsets: []OffsetCommit{{Topic: "t"}}}, kerr.InvalidRequest.Code},
		{"commit nothing", withTopic, CommitOffsets{Group: "g"}, kerr.InvalidRequest.Code},

		{"delete groups ok", withOffsets, DeleteGroups{Groups: []string{"g"}}, 0},
		{"delete offsets ok", withOffsets, DeleteOffsets{Group: "g", Partitions: []TopicPartition{{"t", 0}}}, 0},
		{"delete offsets unknown group", withOffsets, DeleteOffsets{Group: "x", Partitions: []TopicPartition{{"t", 0}}}, kerr.GroupIDNotFound.Code},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			for _, s := range c.setup {
				h.must(s)
			}
			before := h.m.st.encodeSnapshot()
			r := h.apply(c.cmd)
			if r.Code != c.code {
				t.Fatalf("code %d (%s), want %d", r.Code, r.Message, c.code)
			}
			if r.Code != 0 {
				if r.Message == "" {
					t.Fatalf("failure without message")
				}
				// A failed command changes nothing but the applied index.
				h.m.st.applied--
				if after := h.m.st.encodeSnapshot(); string(after) != string(before) {
					t.Fatalf("failed command changed the state")
				}
			}
		})
	}
}

func TestCreateTopicPlacement(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(4) {
		h.must(c)
	}
	r := h.must(CreateTopic{Name: "a", Partitions: 5, ReplicationFactor: -1})
	want := [][]int32{{1, 2, 3}, {2, 3, 4}, {3, 4, 1}, {4, 1, 2}, {1, 2, 3}}
	for i, p := range r.Topic.Partitions {
		if p.Index != int32(i) || p.ShardID != FirstPartitionShardID+uint64(i) || !reflect.DeepEqual(p.Replicas, want[i]) {
			t.Fatalf("partition %d = %+v, want replicas %v", i, p, want[i])
		}
	}
	// The next topic starts where the last left off, so leaders spread.
	r = h.must(CreateTopic{Name: "b", Partitions: 2, ReplicationFactor: 1})
	if got := [][]int32{r.Topic.Partitions[0].Replicas, r.Topic.Partitions[1].Replicas}; !reflect.DeepEqual(got, [][]int32{{2}, {3}}) {
		t.Fatalf("topic b replicas %v", got)
	}
	if r.Topic.Partitions[0].ShardID != FirstPartitionShardID+5 {
		t.Fatalf("shard id %d", r.Topic.Partitions[0].ShardID)
	}
	if r.Topic.ID.IsZero() || r.Topic.ID == h.m.View().Topic("a").ID {
		t.Fatalf("topic ids not distinct: %s", r.Topic.ID)
	}
}

func TestDefaultReplicationFactor(t *testing.T) {
	for n := int32(1); n <= 5; n++ {
		h := newHarness(t)
		for _, c := range withBrokers(n) {
			h.must(c)
		}
		r := h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1})
		if got, want := len(r.Topic.Partitions[0].Replicas), min(3, int(n)); got != want {
			t.Fatalf("%d brokers: rf %d, want %d", n, got, want)
		}
	}
}

func TestShardIDsNeverReused(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 1})
	h.must(DeleteTopic{Name: "t"})
	r := h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1})
	if got := r.Topic.Partitions[0].ShardID; got != FirstPartitionShardID+2 {
		t.Fatalf("recreated topic got shard %d", got)
	}
	r = h.must(CreatePartitions{Topic: "t", Count: 3})
	if got := r.Topic.Partitions[2].ShardID; got != FirstPartitionShardID+4 || len(r.Topic.Partitions) != 3 {
		t.Fatalf("partitions %+v", r.Topic.Partitions)
	}
}

func TestDeleteTopicByIDDropsOffsets(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	id := h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1}).Topic.ID
	h.must(CreateTopic{Name: "u", Partitions: 1, ReplicationFactor: 1})
	h.must(CommitOffsets{Group: "g1", Offsets: []OffsetCommit{{Topic: "t", Offset: 1}, {Topic: "u", Offset: 2}}})
	h.must(CommitOffsets{Group: "g2", Offsets: []OffsetCommit{{Topic: "t", Offset: 3}}})
	r := h.must(DeleteTopic{ID: id})
	if r.Topic == nil || r.Topic.Name != "t" {
		t.Fatalf("deleted %+v", r.Topic)
	}
	groups, _ := h.m.Lookup(QueryGroups{})
	if !reflect.DeepEqual(groups, []string{"g1"}) {
		t.Fatalf("groups after delete: %v", groups)
	}
	got, _ := h.m.Lookup(QueryGroupOffsets{Group: "g1"})
	want := []GroupOffset{{Topic: "u", OffsetValue: OffsetValue{Offset: 2}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("g1 offsets %+v", got)
	}
}

func TestCommitOffsetsAllOrNothing(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 1})
	r := h.apply(CommitOffsets{Group: "g", CommitTimestampMs: 7, Offsets: []OffsetCommit{
		{Topic: "t", Partition: 0, Offset: 1}, {Topic: "t", Partition: 5, Offset: 1}, {Topic: "x", Partition: 0}}})
	want := []PartitionCode{{"t", 0, 0}, {"t", 5, kerr.UnknownTopicOrPartition.Code}, {"x", 0, kerr.UnknownTopicOrPartition.Code}}
	if r.Code != kerr.UnknownTopicOrPartition.Code || !reflect.DeepEqual(r.Partitions, want) {
		t.Fatalf("result %+v", r)
	}
	if got, _ := h.m.Lookup(QueryGroupOffsets{Group: "g"}); got.([]GroupOffset) != nil {
		t.Fatalf("partial commit: %+v", got)
	}
	h.must(CommitOffsets{Group: "g", CommitTimestampMs: 7, Offsets: []OffsetCommit{
		{Topic: "t", Partition: 1, Offset: 10, LeaderEpoch: 2, Metadata: "m"}}})
	got, _ := h.m.Lookup(QueryOffset{Group: "g", Topic: "t", Partition: 1})
	if want := (OffsetLookup{Value: OffsetValue{Offset: 10, LeaderEpoch: 2, Metadata: "m", CommitTimestampMs: 7}, Found: true}); got != want {
		t.Fatalf("offset %+v", got)
	}
}

func TestDeleteOffsetsAndGroups(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 1})
	h.must(CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}})
	r := h.must(DeleteOffsets{Group: "g", Partitions: []TopicPartition{{"t", 0}, {"t", 9}, {"t", 0}}})
	want := []PartitionCode{{"t", 0, 0}, {"t", 9, kerr.UnknownTopicOrPartition.Code}, {"t", 0, 0}}
	if !reflect.DeepEqual(r.Partitions, want) {
		t.Fatalf("delete offsets %+v", r.Partitions)
	}
	r = h.must(DeleteGroups{Groups: []string{"g", "nope"}})
	if want := []GroupCode{{"g", 0}, {"nope", kerr.GroupIDNotFound.Code}}; !reflect.DeepEqual(r.Groups, want) {
		t.Fatalf("delete groups %+v", r.Groups)
	}
	if got, _ := h.m.Lookup(QueryGroups{}); len(got.([]string)) != 0 {
		t.Fatalf("groups left: %v", got)
	}
}

func TestAllocateProducerIDsContiguous(t *testing.T) {
	h := newHarness(t)
	a := h.must(AllocateProducerIDs{Count: 10}).ProducerIDs
	b := h.must(AllocateProducerIDs{Count: 1}).ProducerIDs
	if a != (ProducerIDBlock{0, 10}) || b != (ProducerIDBlock{10, 1}) {
		t.Fatalf("blocks %+v %+v", a, b)
	}
}

func TestAlterConfigsAllOrNothingAndSorted(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1, Configs: []ConfigEntry{{"segment.ms", "5"}, {"retention.ms", "1"}}})
	r := h.apply(AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "retention.ms", Value: "2"}, {Key: "bogus", Value: "1"}}})
	if r.Code != kerr.InvalidConfig.Code {
		t.Fatalf("code %d", r.Code)
	}
	h.must(AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "segment.ms", Op: ConfigDelete}, {Key: "compression.type", Value: "producer"}, {Key: "retention.ms", Value: "3"}}})
	got := h.m.View().Topic("t").Configs
	want := []ConfigEntry{{"compression.type", "producer"}, {"retention.ms", "3"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("configs %+v", got)
	}
	if v, ok := h.m.View().Topic("t").Config("retention.ms"); !ok || v != "3" {
		t.Fatalf("Config = %q %v", v, ok)
	}
}

func TestRegisterBrokerUpsert(t *testing.T) {
	h := newHarness(t)
	h.must(broker(2))
	h.must(broker(1))
	v0 := h.m.Version()
	ch := h.m.Changed()
	h.must(broker(1)) // no change: no notification
	select {
	case <-ch:
		t.Fatal("notified without a change")
	default:
	}
	if h.m.Version() != v0+1 {
		t.Fatalf("version %d after %d", h.m.Version(), v0)
	}
	b := broker(1)
	b.Host = "other"
	h.must(b)
	<-ch
	v := h.m.View()
	if len(v.Brokers) != 2 || v.Brokers[0].NodeID != 1 || v.Brokers[0].Host != "other" || v.TopologyVersion != v.Version {
		t.Fatalf("view %+v", v)
	}
}

// TestApplyDefensiveLimits covers checks in apply that Decode already makes
// unreachable from the wire, and limits too large to reach in a table.
func TestApplyDefensiveLimits(t *testing.T) {
	s := newState()
	for i := int32(0); i < BrokersMax; i++ {
		if r, _ := s.apply(1, RegisterBroker{NodeID: i, Host: "h", Port: 1}); r.Code != 0 {
			t.Fatalf("broker %d: %+v", i, r)
		}
	}
	if r, _ := s.apply(2, RegisterBroker{NodeID: BrokersMax, Host: "h", Port: 1}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("broker beyond limit: %+v", r)
	}
	if r, _ := s.apply(2, RegisterBroker{NodeID: 0, Host: "h2", Port: 1}); r.Code != 0 {
		t.Fatalf("address change at the limit: %+v", r)
	}
	s.nextProducerID = math.MaxInt64 - 5
	if r, _ := s.apply(3, AllocateProducerIDs{Count: 6}); r.Code != kerr.UnknownServerError.Code {
		t.Fatalf("pid exhaustion: %+v", r)
	}
	if r, _ := s.apply(3, AllocateProducerIDs{Count: 5}); r.Code != 0 || r.ProducerIDs.First != math.MaxInt64-5 {
		t.Fatalf("last pids: %+v", r)
	}
	big := make([]OffsetCommit, CommitEntriesMax+1)
	if r, _ := s.apply(4, CommitOffsets{Group: "g", Offsets: big}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("big commit: %+v", r)
	}
	if r, _ := s.apply(4, DeleteOffsets{Group: "g", Partitions: make([]TopicPartition, CommitEntriesMax+1)}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("big offset delete: %+v", r)
	}
	if r, _ := s.apply(4, DeleteGroups{Groups: make([]string, DeleteGroupsMax+1)}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("big group delete: %+v", r)
	}
	if r, _ := s.apply(4, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1, Configs: make([]ConfigEntry, ConfigEntriesMax+1)}); r.Code != kerr.InvalidConfig.Code {
		t.Fatalf("many configs: %+v", r)
	}
	if r, _ := s.apply(4, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: ReplicationFactorMax + 1}); r.Code != kerr.InvalidReplicationFactor.Code {
		t.Fatalf("rf beyond max: %+v", r)
	}
	s.apply(5, CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1})
	if r, _ := s.apply(6, AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "retention.ms", Op: 9}}}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("bad op: %+v", r)
	}
	if r, _ := s.apply(6, AlterConfigs{Topic: "t", Ops: make([]ConfigOp, ConfigEntriesMax+1)}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("many ops: %+v", r)
	}
	if err := s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestFailMessageBounded(t *testing.T) {
	r := fail(1, "%s", strings.Repeat("\u00e9", ResultMessageLenMax))
	if len(r.Message) > ResultMessageLenMax || !utf8.ValidString(r.Message) {
		t.Fatalf("message of %d bytes, valid %v", len(r.Message), utf8.ValidString(r.Message))
	}
}
