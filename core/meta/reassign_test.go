package meta

import (
	"bytes"
	"hash/crc32"
	"log/slog"
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"pgregory.net/rapid"
)

func TestReassignPartition(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(4) {
		h.must(c)
	}
	tp := h.must(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 3}).Topic
	p0 := tp.Partitions[0]
	shard := p0.ShardID
	part := func() Partition { return h.m.View().Topic("t").Partitions[0] }
	h.must(SetPartitionLeader{ShardID: shard, Leader: p0.Replicas[0], Term: 2})

	for _, tc := range []struct {
		name string
		c    Command
		code int16
	}{
		{"unknown shard", ReassignPartition{ShardID: 5, Target: []int32{1}}, kerr.UnknownTopicOrPartition.Code},
		{"cancel without move", ReassignPartition{ShardID: shard}, kerr.NoReassignmentInProgress.Code},
		{"duplicate", ReassignPartition{ShardID: shard, Target: []int32{1, 2, 1}}, kerr.InvalidReplicaAssignment.Code},
		{"unregistered", ReassignPartition{ShardID: shard, Target: []int32{1, 2, 9}}, kerr.InvalidReplicaAssignment.Code},
		{"negative", ReassignPartition{ShardID: shard, Target: []int32{-1}}, kerr.InvalidReplicaAssignment.Code},
		{"caught up without move", ReplicaCaughtUp{ShardID: shard, Node: 4}, kerr.NoReassignmentInProgress.Code},
		{"complete without move", CompleteReassignment{ShardID: shard, Target: []int32{1}}, kerr.NoReassignmentInProgress.Code},
	} {
		if r := h.apply(tc.c); r.Code != tc.code {
			t.Errorf("%s: code %d (%s), want %d", tc.name, r.Code, r.Message, tc.code)
		}
	}
	// Same replicas: a no-op.
	v0 := h.m.View().TopologyVersion
	h.must(ReassignPartition{ShardID: shard, Target: slices.Clone(p0.Replicas)})
	if part().Target != nil || h.m.View().TopologyVersion != v0 {
		t.Fatalf("no-op reassignment recorded a target")
	}

	// Replace the preferred leader's node by node 4.
	target := []int32{p0.Replicas[1], p0.Replicas[2], 4}
	if slices.Contains(p0.Replicas, 4) {
		t.Fatalf("placement %v already has node 4", p0.Replicas)
	}
	h.must(ReassignPartition{ShardID: shard, Target: target})
	p := part()
	if !slices.Equal(p.Target, target) || !slices.Equal(p.Adding(), []int32{4}) || !slices.Equal(p.Removing(), p0.Replicas[:1]) {
		t.Fatalf("target %v adding %v removing %v", p.Target, p.Adding(), p.Removing())
	}
	if got := p.AllReplicas(); !slices.Equal(got, append(slices.Clone(p0.Replicas), 4)) {
		t.Fatalf("all replicas %v", got)
	}
	if hp := h.m.View().HostedPartitions(4); len(hp) != 1 || !slices.Equal(hp[0].Target, target) {
		t.Fatalf("node 4 hosts %+v", hp)
	}
	// The joining node may lead (after a leadership transfer).
	h.must(SetPartitionLeader{ShardID: shard, Leader: 4, Term: 3})
	if r := h.apply(ReplicaCaughtUp{ShardID: shard, Node: p0.Replicas[1]}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("caught up of an old replica: code %d", r.Code)
	}
	h.must(ReplicaCaughtUp{ShardID: shard, Node: 4})
	h.must(ReplicaCaughtUp{ShardID: shard, Node: 4}) // idempotent
	if !slices.Equal(part().CaughtUp, []int32{4}) {
		t.Fatalf("caught up %v", part().CaughtUp)
	}
	if r := h.apply(CompleteReassignment{ShardID: shard, Target: p0.Replicas}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("stale completion: code %d", r.Code)
	}
	snapshotRoundTrip(t, h.m)
	h.must(CompleteReassignment{ShardID: shard, Target: target})
	p = part()
	if !slices.Equal(p.Replicas, target) || p.Target != nil || p.CaughtUp != nil || !slices.Equal(p.Retired, p0.Replicas[:1]) {
		t.Fatalf("after completion: %+v", p)
	}
	if p.LeaderID() != 4 || p.LeaderEpoch != 3 {
		t.Fatalf("leader %d epoch %d", p.LeaderID(), p.LeaderEpoch)
	}
	// A retired node can never come back.
	if r := h.apply(ReassignPartition{ShardID: shard, Target: append(slices.Clone(target), p0.Replicas[0])}); r.Code != kerr.InvalidReplicaAssignment.Code {
		t.Fatalf("retired node re-added: code %d", r.Code)
	}
	// Shrink to RF 1 on node 4... then cancel: back to the replicas, and
	// nothing retired since no node was being added.
	h.must(ReassignPartition{ShardID: shard, Target: []int32{4}})
	h.must(ReassignPartition{ShardID: shard})
	if p := part(); !slices.Equal(p.Target, target) {
		t.Fatalf("cancel: target %v, want %v", p.Target, target)
	}
	h.must(CompleteReassignment{ShardID: shard, Target: target})
	// Leader removed by a move: reported as unknown, epoch kept.
	h.must(ReassignPartition{ShardID: shard, Target: []int32{target[0]}})
	snapshotRoundTrip(t, h.m)
	h.must(CompleteReassignment{ShardID: shard, Target: []int32{target[0]}})
	if p := part(); p.LeaderID() != -1 || p.LeaderEpoch != 3 || !slices.Equal(p.Retired, sortedUnion(p0.Replicas[:1], target[1:])) {
		t.Fatalf("after shrink: %+v", p)
	}
	snapshotRoundTrip(t, h.m)
	// A target replaced while nodes were joining retires them.
	h2 := newHarness(t)
	for _, c := range withBrokers(5) {
		h2.must(c)
	}
	s2 := h2.must(CreateTopic{Name: "u", Partitions: 1, ReplicationFactor: 1}).Topic.Partitions[0]
	other := []int32{s2.Replicas[0]%5 + 1}
	h2.must(ReassignPartition{ShardID: s2.ShardID, Target: other})
	h2.must(ReassignPartition{ShardID: s2.ShardID})
	if p := h2.m.View().Topic("u").Partitions[0]; !slices.Equal(p.Retired, other) || !slices.Equal(p.Target, s2.Replicas) {
		t.Fatalf("cancelled joiner not retired: %+v", p)
	}
}

func snapshotRoundTrip(t *testing.T, m *StateMachine) {
	t.Helper()
	var a, b bytes.Buffer
	if err := m.SaveSnapshot(&a, nil, nil); err != nil {
		t.Fatal(err)
	}
	r := New(slog.New(slog.DiscardHandler))
	if err := r.RecoverFromSnapshot(bytes.NewReader(a.Bytes()), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normView(r.View()), normView(m.View())) {
		t.Fatalf("restored view differs:\n got %s\nwant %s", dumpView(r.View()), dumpView(m.View()))
	}
	if err := r.SaveSnapshot(&b, nil, nil); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("re-saved snapshot differs (err %v)", err)
	}
}

// A version 2 snapshot (no reassignments section) still restores.
func TestSnapshotV2Compatible(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	tp := h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 3}).Topic
	h.must(SetPartitionLeader{ShardID: tp.Partitions[1].ShardID, Leader: tp.Partitions[1].Replicas[0], Term: 4})
	var buf bytes.Buffer
	if err := h.m.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	v5 := buf.Bytes()
	// Without a reassignment, a broker config or a credential, v5 = v2 +
	// three count bytes (0) before the CRC.
	body := bytes.Clone(v5[:len(v5)-12])
	if v5[len(v5)-5] != 0 || v5[len(v5)-6] != 0 || v5[len(v5)-7] != 0 || v5[len(v5)-8] != 0 || v5[len(v5)-9] != 0 || v5[len(v5)-10] != 0 || v5[len(v5)-11] != 0 || body[len(snapshotMagic)] != SnapshotVersion {
		t.Fatalf("unexpected v5 layout")
	}
	body[len(snapshotMagic)] = snapshotVersionNoReassignments
	v2 := (&enc{b: body}).u32fixedAppend(crc32.Checksum(body, crcTable))
	r := New(slog.New(slog.DiscardHandler))
	if err := r.RecoverFromSnapshot(bytes.NewReader(v2), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normView(r.View()), normView(h.m.View())) {
		t.Fatalf("v2 restore differs:\n got %s\nwant %s", dumpView(r.View()), dumpView(h.m.View()))
	}
}

func (e *enc) u32fixedAppend(v uint32) []byte {
	e.u32fixed(v)
	return e.b
}

// reassignActions adds the reassignment commands to the model test: the
// expected codes are re-stated here, and the resulting partition checked.
func (st *smTest) reassignActions(actions map[string]func(*rapid.T)) {
	md := st.md
	pick := func(t *rapid.T) (*Topic, Partition) {
		v := st.h.m.View()
		if len(v.Topics) == 0 {
			t.Skip("no topics")
		}
		tp := rapid.SampledFrom(v.Topics).Draw(t, "topic")
		return tp, rapid.SampledFrom(tp.Partitions).Draw(t, "partition")
	}
	after := func(tp *Topic, p Partition) Partition { return st.h.m.View().Topic(tp.Name).Partitions[p.Index] }
	actions["reassign"] = func(t *rapid.T) {
		tp, p := pick(t)
		c := ReassignPartition{ShardID: p.ShardID, Target: rapid.SliceOfN(rapid.Int32Range(0, 5), 0, 4).Draw(t, "target")}
		want, target := int16(0), c.Target
		if len(target) == 0 {
			target = p.Replicas
			if p.Target == nil {
				want = kerr.NoReassignmentInProgress.Code
			}
		}
		for i, id := range target {
			_, reg := md.brokers[id]
			if want == 0 && (slices.Contains(target[:i], id) || (!reg && !slices.Contains(p.Replicas, id)) || slices.Contains(p.Retired, id)) {
				want = kerr.InvalidReplicaAssignment.Code
			}
		}
		expectCode(t, c, st.run(t, c), want)
		got := after(tp, p)
		switch {
		case want != 0 || (p.Target == nil && slices.Equal(target, p.Replicas)):
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("%+v changed %+v to %+v", c, p, got)
			}
		case !slices.Equal(got.Target, target) || !slices.Equal(got.Replicas, p.Replicas):
			t.Fatalf("%+v: partition %+v", c, got)
		}
	}
	actions["caughtUp"] = func(t *rapid.T) {
		tp, p := pick(t)
		c := ReplicaCaughtUp{ShardID: p.ShardID, Node: rapid.Int32Range(0, 5).Draw(t, "node")}
		want := int16(0)
		switch {
		case p.Target == nil:
			want = kerr.NoReassignmentInProgress.Code
		case !slices.Contains(p.Target, c.Node) || slices.Contains(p.Replicas, c.Node):
			want = kerr.InvalidRequest.Code
		}
		expectCode(t, c, st.run(t, c), want)
		if got := after(tp, p); want == 0 && !slices.Contains(got.CaughtUp, c.Node) {
			t.Fatalf("%+v: caught up %v", c, got.CaughtUp)
		}
	}
	actions["complete"] = func(t *rapid.T) {
		tp, p := pick(t)
		c := CompleteReassignment{ShardID: p.ShardID, Target: p.Target}
		if rapid.Bool().Draw(t, "stale") {
			c.Target = []int32{rapid.Int32Range(0, 5).Draw(t, "node")}
		}
		want := int16(0)
		switch {
		case p.Target == nil:
			want = kerr.NoReassignmentInProgress.Code
		case !slices.Equal(c.Target, p.Target):
			want = kerr.InvalidRequest.Code
		}
		expectCode(t, c, st.run(t, c), want)
		if want != 0 {
			return
		}
		got := after(tp, p)
		if !slices.Equal(got.Replicas, c.Target) || got.Target != nil {
			t.Fatalf("%+v: partition %+v", c, got)
		}
		for _, id := range p.Replicas {
			if !slices.Contains(c.Target, id) && !slices.Contains(got.Retired, id) {
				t.Fatalf("%+v: removed %d not retired (%v)", c, id, got.Retired)
			}
		}
		if p.Index == 0 {
			md.topics[tp.Name].rf = len(c.Target) // CreatePartitions follows partition 0
		}
	}
}
