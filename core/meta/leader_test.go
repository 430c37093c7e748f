package meta

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestSetPartitionLeader(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	tp := h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 2}).Topic
	p0 := tp.Partitions[0]
	if got := h.m.View().Topic("t").Partitions[0].LeaderID(); got != -1 {
		t.Fatalf("leader before any report: %d, want -1", got)
	}
	topo := h.m.View().TopologyVersion

	leader := func() (int32, uint64) {
		p := h.m.View().Topic("t").Partitions[0]
		return p.LeaderID(), p.LeaderEpoch
	}
	h.must(SetPartitionLeader{ShardID: p0.ShardID, Leader: p0.Replicas[1], Term: 3})
	if l, e := leader(); l != p0.Replicas[1] || e != 3 {
		t.Fatalf("leader %d epoch %d, want %d epoch 3", l, e, p0.Replicas[1])
	}
	if h.m.View().TopologyVersion != topo {
		t.Fatalf("a leader report moved the topology version")
	}
	// Stale: a lower term is a successful no-op.
	h.must(SetPartitionLeader{ShardID: p0.ShardID, Leader: p0.Replicas[0], Term: 2})
	if l, e := leader(); l != p0.Replicas[1] || e != 3 {
		t.Fatalf("stale report applied: leader %d epoch %d", l, e)
	}
	h.must(SetPartitionLeader{ShardID: p0.ShardID, Leader: p0.Replicas[0], Term: 5})
	if l, e := leader(); l != p0.Replicas[0] || e != 5 {
		t.Fatalf("leader %d epoch %d, want %d epoch 5", l, e, p0.Replicas[0])
	}
	// The other partition is untouched.
	if l := h.m.View().Topic("t").Partitions[1].LeaderID(); l != -1 {
		t.Fatalf("partition 1 leader %d, want -1", l)
	}
	for _, tc := range []struct {
		c    SetPartitionLeader
		code int16
	}{
		{SetPartitionLeader{ShardID: 999999, Leader: 1, Term: 1}, kerr.UnknownTopicOrPartition.Code},
		{SetPartitionLeader{ShardID: p0.ShardID, Leader: p0.Replicas[0], Term: 0}, kerr.InvalidRequest.Code},
		{SetPartitionLeader{ShardID: p0.ShardID, Leader: 77, Term: 9}, kerr.InvalidRequest.Code},
	} {
		if r := h.apply(tc.c); r.Code != tc.code {
			t.Errorf("%+v: code %d, want %d", tc.c, r.Code, tc.code)
		}
	}

	// Leaders survive a snapshot round trip byte for byte.
	var a, b bytes.Buffer
	if err := h.m.SaveSnapshot(&a, nil, nil); err != nil {
		t.Fatal(err)
	}
	r := New(slog.New(slog.DiscardHandler))
	if err := r.RecoverFromSnapshot(bytes.NewReader(a.Bytes()), nil, nil); err != nil {
		t.Fatal(err)
	}
	if p := r.View().Topic("t").Partitions[0]; p.Leader != p0.Replicas[0] || p.LeaderEpoch != 5 {
		t.Fatalf("restored leader %d epoch %d", p.Leader, p.LeaderEpoch)
	}
	if err := r.SaveSnapshot(&b, nil, nil); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("re-saved snapshot differs (err %v)", err)
	}
}
