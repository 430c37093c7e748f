package meta

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"pgregory.net/rapid"
)

// model is a deliberately simple re-statement of the controller rules, kept
// apart from the implementation: maps, no caches, no placement algorithm
// (placement is checked by its properties instead).
type model struct {
	brokers   map[int32]Broker
	topics    map[string]*modelTopic
	nextShard uint64
	nextPID   int64
	offsets   map[string]OffsetValue // "group\x00topic\x00partition"
}

type modelTopic struct {
	partitions int
	rf         int
	configs    map[string]string
	id         TopicID
}

func offKey(g, t string, p int32) string { return fmt.Sprintf("%s\x00%s\x00%d", g, t, p) }

var (
	poolTopics  = []string{"a", "b", "c.d", "c_d", "bad/name", "", ".."}
	poolGroups  = []string{"g1", "g2", "g3"}
	poolConfigs = []ConfigEntry{
		{"retention.ms", "100"}, {"retention.ms", "-2"}, {"segment.bytes", "1024"}, {"cleanup.policy", "delete"},
		{"cleanup.policy", "compact"}, {"compression.type", "zstd"}, {"unknown.key", "1"}, {"min.insync.replicas", "2"},
	}
)

func (md *model) partitionExists(t string, p int32) bool {
	mt, ok := md.topics[t]
	return ok && p >= 0 && int(p) < mt.partitions
}

func (md *model) rfFor(rf int16) (int, bool) {
	n := len(md.brokers)
	if rf == -1 {
		rf = int16(min(3, n))
	}
	return int(rf), rf >= 1 && int(rf) <= n
}

// expectCreate returns the expected code of c.
func (md *model) expectCreate(c CreateTopic) int16 {
	if !validTopicName(c.Name) {
		return kerr.InvalidTopicException.Code
	}
	if _, ok := md.topics[c.Name]; ok {
		return kerr.TopicAlreadyExists.Code
	}
	for other := range md.topics {
		if strings.ReplaceAll(other, ".", "_") == strings.ReplaceAll(c.Name, ".", "_") {
			return kerr.InvalidTopicException.Code
		}
	}
	if c.Partitions <= 0 {
		return kerr.InvalidPartitions.Code
	}
	if _, ok := md.rfFor(c.ReplicationFactor); !ok {
		return kerr.InvalidReplicationFactor.Code
	}
	seen := map[string]bool{}
	for _, e := range c.Configs {
		if checkConfig(e.Key, e.Value) != "" || seen[e.Key] {
			return kerr.InvalidConfig.Code
		}
		seen[e.Key] = true
	}
	return 0
}

type smTest struct {
	h    *harness
	twin *StateMachine // fed the same entries, for determinism
	md   *model
}

func (st *smTest) run(t *rapid.T, cmd Command) Result {
	b := Encode(cmd)
	r := st.h.applyBytes(b)
	tr, err := st.twin.Update(entry(st.h.index, b))
	if err != nil || !reflect.DeepEqual(tr, r.Pack()) {
		t.Fatalf("twin result differs: %v %+v vs %+v", err, tr, r.Pack())
	}
	return r
}

func expectCode(t *rapid.T, cmd Command, r Result, want int16) {
	if r.Code != want {
		t.Fatalf("%#v: code %d (%s), model wants %d", cmd, r.Code, r.Message, want)
	}
}

func (st *smTest) actions() map[string]func(*rapid.T) {
	md := st.md
	return map[string]func(*rapid.T){
		"register": func(t *rapid.T) {
			c := RegisterBroker{NodeID: rapid.Int32Range(-1, 5).Draw(t, "id"), Host: rapid.SampledFrom([]string{"h1", "h2", ""}).Draw(t, "host"),
				Port: rapid.SampledFrom([]int32{0, 9092, 9093}).Draw(t, "port")}
			want := int16(0)
			if c.NodeID < 0 || c.Host == "" || c.Port == 0 {
				want = kerr.InvalidRequest.Code
			} else {
				md.brokers[c.NodeID] = Broker(c)
			}
			expectCode(t, c, st.run(t, c), want)
		},
		"leader": func(t *rapid.T) {
			v := st.h.m.View()
			if len(v.Topics) == 0 {
				t.Skip("no topics")
			}
			tp := rapid.SampledFrom(v.Topics).Draw(t, "topic")
			p := rapid.SampledFrom(tp.Partitions).Draw(t, "partition")
			c := SetPartitionLeader{ShardID: p.ShardID, Leader: rapid.SampledFrom(append(slices.Clone(p.Replicas), 99)).Draw(t, "leader"),
				Term: rapid.Uint64Range(0, 4).Draw(t, "term")}
			want := int16(0)
			if c.Term == 0 || !slices.Contains(p.Replicas, c.Leader) {
				want = kerr.InvalidRequest.Code
			}
			expectCode(t, c, st.run(t, c), want)
			got := st.h.m.View().Topic(tp.Name).Partitions[p.Index]
			wantLeader, wantTerm := p.Leader, p.LeaderEpoch
			if want == 0 && c.Term >= p.LeaderEpoch {
				wantLeader, wantTerm = c.Leader, c.Term
			}
			if got.Leader != wantLeader || got.LeaderEpoch != wantTerm {
				t.Fatalf("after %+v: leader %d term %d, want %d term %d", c, got.Leader, got.LeaderEpoch, wantLeader, wantTerm)
			}
		},
		"unregister": func(t *rapid.T) {
			c := UnregisterBroker{NodeID: rapid.Int32Range(0, 5).Draw(t, "id")}
			want := kerr.BrokerIDNotRegistered.Code
			if _, ok := md.brokers[c.NodeID]; ok {
				want = 0
				delete(md.brokers, c.NodeID)
			}
			expectCode(t, c, st.run(t, c), want)
		},
		"create": func(t *rapid.T) {
			c := CreateTopic{Name: rapid.SampledFrom(poolTopics).Draw(t, "name"), Partitions: rapid.Int32Range(-1, 4).Draw(t, "parts"),
				ReplicationFactor: rapid.Int16Range(-2, 4).Draw(t, "rf")}
			for _, i := range rapid.SliceOfN(rapid.IntRange(0, len(poolConfigs)-1), 0, 3).Draw(t, "configs") {
				c.Configs = append(c.Configs, poolConfigs[i])
			}
			want := md.expectCreate(c)
			r := st.run(t, c)
			expectCode(t, c, r, want)
			if want != 0 {
				return
			}
			rf, _ := md.rfFor(c.ReplicationFactor)
			mt := &modelTopic{partitions: int(c.Partitions), rf: rf, configs: map[string]string{}, id: r.Topic.ID}
			for _, e := range c.Configs {
				mt.configs[e.Key] = e.Value
			}
			md.topics[c.Name] = mt
			md.checkNewPartitions(t, r.Topic, 0)
		},
		"delete": func(t *rapid.T) {
			name := rapid.SampledFrom(poolTopics).Draw(t, "name")
			c := DeleteTopic{Name: name}
			want := kerr.UnknownTopicOrPartition.Code
			if name == "" {
				want = kerr.InvalidRequest.Code
			}
			if mt, ok := md.topics[name]; ok {
				want = 0
				if rapid.Bool().Draw(t, "byID") {
					c = DeleteTopic{ID: mt.id}
				}
				delete(md.topics, name)
				md.dropTopicOffsets(name)
			}
			expectCode(t, c, st.run(t, c), want)
		},
		"partitions": func(t *rapid.T) {
			c := CreatePartitions{Topic: rapid.SampledFrom(poolTopics).Draw(t, "name"), Count: rapid.Int32Range(0, 6).Draw(t, "count")}
			mt, ok := md.topics[c.Topic]
			want := int16(0)
			switch {
			case !ok:
				want = kerr.UnknownTopicOrPartition.Code
			case int(c.Count) <= mt.partitions:
				want = kerr.InvalidPartitions.Code
			case mt.rf > len(md.brokers):
				want = kerr.InvalidReplicationFactor.Code
			}
			r := st.run(t, c)
			expectCode(t, c, r, want)
			if want == 0 {
				md.checkNewPartitions(t, r.Topic, mt.partitions)
				mt.partitions = int(c.Count)
			}
		},
		"alter": func(t *rapid.T) {
			c := AlterConfigs{Topic: rapid.SampledFrom(poolTopics).Draw(t, "name")}
			for _, i := range rapid.SliceOfN(rapid.IntRange(0, len(poolConfigs)-1), 0, 3).Draw(t, "ops") {
				c.Ops = append(c.Ops, ConfigOp{Key: poolConfigs[i].Key, Value: poolConfigs[i].Value,
					Op: ConfigOpType(rapid.IntRange(0, 1).Draw(t, "op"))})
			}
			mt, ok := md.topics[c.Topic]
			want := int16(0)
			if !ok {
				want = kerr.UnknownTopicOrPartition.Code
			} else {
				next := maps.Clone(mt.configs)
				seen := map[string]bool{}
				for _, op := range c.Ops {
					if seen[op.Key] {
						want = kerr.InvalidRequest.Code
						break
					}
					seen[op.Key] = true
					if _, known := topicConfigs[op.Key]; !known || op.Op == ConfigSet && checkConfig(op.Key, op.Value) != "" {
						want = kerr.InvalidConfig.Code
						break
					}
					if op.Op == ConfigSet {
						next[op.Key] = op.Value
					} else {
						delete(next, op.Key)
					}
				}
				if want == 0 {
					mt.configs = next
				}
			}
			expectCode(t, c, st.run(t, c), want)
		},
		"pids": func(t *rapid.T) {
			c := AllocateProducerIDs{Count: rapid.Int32Range(0, 3).Draw(t, "count")}
			r := st.run(t, c)
			if c.Count == 0 {
				expectCode(t, c, r, kerr.InvalidRequest.Code)
				return
			}
			expectCode(t, c, r, 0)
			if r.ProducerIDs != (ProducerIDBlock{First: md.nextPID, Count: c.Count}) {
				t.Fatalf("pid block %+v, model next %d", r.ProducerIDs, md.nextPID)
			}
			md.nextPID += int64(c.Count)
		},
		"commit": func(t *rapid.T) {
			c := CommitOffsets{Group: rapid.SampledFrom(poolGroups).Draw(t, "group"), CommitTimestampMs: rapid.Int64Range(0, 100).Draw(t, "ts")}
			want := int16(0)
			for i, n := 0, rapid.IntRange(1, 3).Draw(t, "n"); i < n; i++ {
				o := OffsetCommit{Topic: rapid.SampledFrom(poolTopics[:4]).Draw(t, "topic"), Partition: rapid.Int32Range(-1, 4).Draw(t, "p"),
					Offset: rapid.Int64Range(0, 1000).Draw(t, "off"), LeaderEpoch: rapid.Int32Range(0, 3).Draw(t, "epoch")}
				if !md.partitionExists(o.Topic, o.Partition) {
					want = kerr.UnknownTopicOrPartition.Code
				}
				c.Offsets = append(c.Offsets, o)
			}
			if want == 0 {
				for _, o := range c.Offsets {
					md.offsets[offKey(c.Group, o.Topic, o.Partition)] = OffsetValue{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch,
						CommitTimestampMs: c.CommitTimestampMs}
				}
			}
			expectCode(t, c, st.run(t, c), want)
		},
		"deleteGroups": func(t *rapid.T) {
			c := DeleteGroups{Groups: rapid.SliceOfNDistinct(rapid.SampledFrom(poolGroups), 1, 2, rapid.ID[string]).Draw(t, "groups")}
			r := st.run(t, c)
			expectCode(t, c, r, 0)
			for i, g := range c.Groups {
				want := kerr.GroupIDNotFound.Code
				if md.dropGroupOffsets(g) {
					want = 0
				}
				if r.Groups[i].Code != want {
					t.Fatalf("group %q code %d, want %d", g, r.Groups[i].Code, want)
				}
			}
		},
		"deleteOffsets": func(t *rapid.T) {
			c := DeleteOffsets{Group: rapid.SampledFrom(poolGroups).Draw(t, "group")}
			c.Partitions = append(c.Partitions, TopicPartition{Topic: rapid.SampledFrom(poolTopics[:4]).Draw(t, "topic"),
				Partition: rapid.Int32Range(-1, 4).Draw(t, "p")})
			want := kerr.GroupIDNotFound.Code
			if md.hasGroup(c.Group) {
				want = 0
				for _, tp := range c.Partitions {
					if md.partitionExists(tp.Topic, tp.Partition) {
						delete(md.offsets, offKey(c.Group, tp.Topic, tp.Partition))
					}
				}
			}
			expectCode(t, c, st.run(t, c), want)
		},
		"expireOffsets": func(t *rapid.T) {
			c := ExpireOffsets{Group: rapid.SampledFrom(poolGroups).Draw(t, "group"), CutoffMs: rapid.Int64Range(-1, 101).Draw(t, "cutoff")}
			for k, v := range md.offsets {
				if len(k) > len(c.Group) && k[:len(c.Group)+1] == c.Group+"\x00" && v.CommitTimestampMs < c.CutoffMs {
					delete(md.offsets, k)
				}
			}
			expectCode(t, c, st.run(t, c), 0)
		},
		"garbage": func(t *rapid.T) {
			b := rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "bytes")
			if _, err := Decode(b); err == nil {
				return // a valid command by chance: not what this action tests
			}
			r := st.h.applyBytes(b)
			if _, err := st.twin.Update(entry(st.h.index, b)); err != nil {
				t.Fatal(err)
			}
			if r.Code != kerr.InvalidRequest.Code {
				t.Fatalf("garbage gave code %d", r.Code)
			}
		},
		"snapshot": func(t *rapid.T) { st.checkSnapshot(t) },
	}
}

// checkNewPartitions checks the partitions of t from index from on: shard
// ids continue the model's counter, replicas are distinct registered
// brokers, rf of them.
func (md *model) checkNewPartitions(t *rapid.T, tp *Topic, from int) {
	rf := md.topics[tp.Name].rf
	for _, p := range tp.Partitions[from:] {
		if p.ShardID != md.nextShard {
			t.Fatalf("partition %s-%d shard %d, model expects %d", tp.Name, p.Index, p.ShardID, md.nextShard)
		}
		md.nextShard++
		seen := map[int32]bool{}
		for _, r := range p.Replicas {
			if _, ok := md.brokers[r]; !ok || seen[r] {
				t.Fatalf("partition %s-%d replicas %v: bad replica %d", tp.Name, p.Index, p.Replicas, r)
			}
			seen[r] = true
		}
		if len(p.Replicas) != rf {
			t.Fatalf("partition %s-%d has %d replicas, want %d", tp.Name, p.Index, len(p.Replicas), rf)
		}
	}
}

func (md *model) hasGroup(g string) bool {
	for k := range md.offsets {
		if len(k) > len(g) && k[:len(g)+1] == g+"\x00" {
			return true
		}
	}
	return false
}

func (md *model) dropGroupOffsets(g string) bool {
	found := false
	for k := range md.offsets {
		if len(k) > len(g) && k[:len(g)+1] == g+"\x00" {
			delete(md.offsets, k)
			found = true
		}
	}
	return found
}

func (md *model) dropTopicOffsets(topic string) {
	for _, g := range poolGroups {
		for p := int32(0); p < 10; p++ {
			delete(md.offsets, offKey(g, topic, p))
		}
	}
}

// check compares the implementation's View and offsets with the model.
func (st *smTest) check(t *rapid.T) {
	md := st.md
	v := st.h.m.View()
	var wantBrokers []Broker
	for _, id := range sortedKeys(md.brokers) {
		wantBrokers = append(wantBrokers, md.brokers[id])
	}
	if !(len(wantBrokers) == 0 && len(v.Brokers) == 0) && !reflect.DeepEqual(v.Brokers, wantBrokers) {
		t.Fatalf("brokers %+v, model %+v", v.Brokers, wantBrokers)
	}
	names := sortedKeys(md.topics)
	if len(v.Topics) != len(names) {
		t.Fatalf("%d topics, model %d", len(v.Topics), len(names))
	}
	for i, tp := range v.Topics {
		mt := md.topics[names[i]]
		if tp.Name != names[i] || len(tp.Partitions) != mt.partitions || tp.ID != mt.id {
			t.Fatalf("topic %+v, model %s %+v", tp, names[i], mt)
		}
		got := map[string]string{}
		for _, c := range tp.Configs {
			got[c.Key] = c.Value
		}
		if !reflect.DeepEqual(got, mt.configs) || !sort.SliceIsSorted(tp.Configs, func(a, b int) bool { return tp.Configs[a].Key < tp.Configs[b].Key }) {
			t.Fatalf("topic %s configs %+v, model %+v", tp.Name, tp.Configs, mt.configs)
		}
	}
	got := map[string]OffsetValue{}
	for _, g := range poolGroups {
		res, _ := st.h.m.Lookup(QueryGroupOffsets{Group: g})
		for _, o := range res.([]GroupOffset) {
			got[offKey(g, o.Topic, o.Partition)] = o.OffsetValue
		}
	}
	if !reflect.DeepEqual(got, md.offsets) {
		t.Fatalf("offsets %v, model %v", got, md.offsets)
	}
	if v.Version != st.h.index {
		t.Fatalf("view version %d at index %d", v.Version, st.h.index)
	}
}

// checkSnapshot checks that the twin's snapshot is byte-identical and that
// restoring it gives an equal View.
func (st *smTest) checkSnapshot(t *rapid.T) {
	var a, b bytes.Buffer
	if err := st.h.m.SaveSnapshot(&a, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.twin.SaveSnapshot(&b, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("twins' snapshots differ")
	}
	r := New(slog.New(slog.DiscardHandler))
	if err := r.RecoverFromSnapshot(bytes.NewReader(a.Bytes()), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normView(r.View()), normView(st.h.m.View())) {
		t.Fatalf("restored view differs:\n got %s\nwant %s", dumpView(r.View()), dumpView(st.h.m.View()))
	}
	var c bytes.Buffer
	if err := r.SaveSnapshot(&c, nil, nil); err != nil || !bytes.Equal(c.Bytes(), a.Bytes()) {
		t.Fatalf("re-saved snapshot differs (err %v)", err)
	}
	// The restored machine carries on as the original would.
	st.twin = r
}

// normView makes empty and nil slices compare equal.
func normView(v *View) View {
	out := *v
	out.Brokers = slices.Clip(append([]Broker{}, v.Brokers...))
	out.Topics = slices.Clip(append([]*Topic{}, v.Topics...))
	return out
}

// seed starts a run from three brokers, a topic and a committed offset,
// so that short runs reach the offset paths.
func (st *smTest) seed(t *rapid.T) {
	md := st.md
	for i := int32(1); i <= 3; i++ {
		md.brokers[i] = Broker(broker(i))
		expectCode(t, broker(i), st.run(t, broker(i)), 0)
	}
	r := st.run(t, CreateTopic{Name: "a", Partitions: 3, ReplicationFactor: -1})
	md.topics["a"] = &modelTopic{partitions: 3, rf: 3, configs: map[string]string{}, id: r.Topic.ID}
	md.checkNewPartitions(t, r.Topic, 0)
	c := CommitOffsets{Group: "g1", CommitTimestampMs: 1, Offsets: []OffsetCommit{{Topic: "a", Partition: 1, Offset: 9}}}
	expectCode(t, c, st.run(t, c), 0)
	md.offsets[offKey("g1", "a", 1)] = OffsetValue{Offset: 9, CommitTimestampMs: 1}
}

func TestStateMachineModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		st := &smTest{
			h:    newHarness(t),
			twin: New(slog.New(slog.DiscardHandler)),
			md: &model{brokers: map[int32]Broker{}, topics: map[string]*modelTopic{}, nextShard: FirstPartitionShardID,
				offsets: map[string]OffsetValue{}},
		}
		actions := st.actions()
		st.reassignActions(actions)
		actions[""] = st.check
		if rapid.Bool().Draw(t, "seeded") {
			st.seed(t)
		}
		t.Repeat(actions)
		st.checkSnapshot(t)
	})
}

func TestSnapshotRejectsCorruption(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 1, Configs: []ConfigEntry{{"retention.ms", "5"}}})
	h.must(CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 3}}})
	var buf bytes.Buffer
	if err := h.m.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		m := New(slog.New(slog.DiscardHandler))
		if err := m.RecoverFromSnapshot(bytes.NewReader(bad), nil, nil); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("flip at byte %d: err %v", i, err)
		}
		if m.Version() != 0 {
			t.Fatalf("failed recovery changed the state")
		}
	}
	for n := 0; n < len(good); n++ {
		if err := New(slog.New(slog.DiscardHandler)).RecoverFromSnapshot(bytes.NewReader(good[:n]), nil, nil); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("truncated to %d: err %v", n, err)
		}
	}
}

func dumpView(v *View) string {
	s := fmt.Sprintf("version %d/%d brokers %+v topics:", v.Version, v.TopologyVersion, v.Brokers)
	for _, t := range v.Topics {
		s += fmt.Sprintf(" %#v", *t)
	}
	return s
}
