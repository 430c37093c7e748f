package server

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-go/chronik/core/node"
)

// TestMinInsyncReplicasKgo: with a follower stopped, the partition's
// leader reports the shrunk ISR (kadm) once ReplicaLagMax passed, and a
// kgo acks=all producer to a topic with min.insync.replicas=3 gets
// NOT_ENOUGH_REPLICAS while acks=1 goes on; after the follower restarts,
// acks=all succeeds again.
func TestMinInsyncReplicasKgo(t *testing.T) {
	const lag = time.Second
	c := startCluster(t, 3, func(nc *node.Config) { nc.ReplicaLagMax = lag })
	ctx, cancel := context.WithTimeout(context.Background(), 4*testWait)
	defer cancel()
	adm := c.admin()
	three := "3"
	if r, err := adm.CreateTopics(ctx, 1, 3, map[string]*string{"min.insync.replicas": &three}, "misr"); err != nil || r["misr"].Err != nil {
		t.Fatalf("create: %+v %v", r, err)
	}
	var leader int32 = -1
	eventually(t, testWait, func() bool {
		td, err := adm.ListTopics(ctx, "misr")
		if err != nil || td["misr"].Err != nil || len(td["misr"].Partitions) != 1 {
			return false
		}
		leader = td["misr"].Partitions[0].Leader
		return leader > 0
	}, "misr has a leader")
	isr := leaderISR(ctx, t, c, leader)
	eventually(t, testWait, func() bool { return len(isr()) == 3 }, "ISR of 3")

	// kgo retries NOT_ENOUGH_REPLICAS; one retry bounds the attempt and
	// lets the error reach the promise. (With RecordRetries(3) this kgo
	// version resent nothing after the third answer and the record ended
	// on the context deadline instead: client-side, the broker had
	// answered NOT_ENOUGH_REPLICAS every time.)
	all := c.client(kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("misr"),
		kgo.RecordRetries(1), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	one := c.client(kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DefaultProduceTopic("misr"))
	if err := all.ProduceSync(ctx, kgo.StringRecord("healthy")).FirstErr(); err != nil {
		t.Fatalf("acks=all, ISR 3: %v", err)
	}

	down := uint64(1)
	for down == uint64(leader) {
		down++
	}
	c.stop(down)
	eventually(t, testWait, func() bool { return len(isr()) == 2 }, "ISR shrinks to 2")
	if got := isr(); slices.Contains(got, int32(down)) {
		t.Fatalf("ISR %v lists the stopped broker %d", got, down)
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	err := all.ProduceSync(pctx, kgo.StringRecord("refused")).FirstErr()
	pcancel()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all, min.insync.replicas=3, ISR 2: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	if err := one.ProduceSync(ctx, kgo.StringRecord("acks=1")).FirstErr(); err != nil {
		t.Fatalf("acks=1 with ISR 2: %v", err)
	}

	c.restart(down)
	eventually(t, testWait, func() bool { return len(isr()) == 3 }, "ISR back to 3")
	eventually(t, testWait, func() bool {
		return all.ProduceSync(ctx, kgo.StringRecord("again")).FirstErr() == nil
	}, "acks=all succeeds after the follower is back")
}

// leaderISR returns a function reading misr's ISR through kadm from the
// partition's leader: only the leader measures its followers, other
// brokers report the replica list (core/node, "In-sync replicas"), so the
// admin client's connections all go to the leader whatever broker kgo
// picks.
func leaderISR(ctx context.Context, t *testing.T, c *testCluster, leader int32) func() []int32 {
	addr := c.addrs[uint64(leader)]
	var d net.Dialer
	adm := kadm.NewClient(c.client(kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	})))
	return func() []int32 {
		td, err := adm.ListTopics(ctx, "misr")
		if err != nil || td["misr"].Err != nil || len(td["misr"].Partitions) != 1 {
			return nil
		}
		p := td["misr"].Partitions[0]
		if p.Leader != leader {
			t.Fatalf("leader moved from %d to %d", leader, p.Leader)
		}
		return p.ISR
	}
}
