package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/netio"
)

type fakeApplied struct{ v atomic.Uint64 }

func (f *fakeApplied) AppliedIndex() uint64 { return f.v.Load() }

// TestISRTrackerRules drives the tracker directly (leader 1 of replicas
// 1, 2, 3 in term 4) through the rules of doc.go's "In-sync replicas".
func TestISRTrackerRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lag = 2 * time.Second
		tr := newISRTracker(clock.Real(), lag)
		rep := &fakeApplied{}
		tr.track(9, 4, 1, rep, []int32{1, 2, 3})
		isr := func() []int32 {
			out, ok := tr.isr(9, 4, 1)
			if !ok {
				t.Fatal("shard not tracked")
			}
			return out
		}
		term := uint64(4)
		ack := func(from, index uint64) {
			tr.observe(netio.RaftAck{Kind: netio.AckReplicate, ShardID: 9, Follower: from, Term: term, LogIndex: index})
		}
		beat := func(from uint64) {
			tr.observe(netio.RaftAck{Kind: netio.AckHeartbeat, ShardID: 9, Follower: from, Term: term})
		}
		leaderBeat := func(to, index uint64) {
			tr.observe(netio.RaftAck{Kind: netio.AckLeaderHeartbeat, ShardID: 9, Follower: to, Term: term, LogIndex: index})
		}
		want := func(what string, w ...int32) {
			t.Helper()
			if got := isr(); !slices.Equal(got, w) || tr.isrSize(9, 4) != len(w) {
				t.Fatalf("%s: ISR %v (size %d), want %v", what, got, tr.isrSize(9, 4), w)
			}
		}
		want("new term: the leader alone", 1)

		rep.v.Store(5)
		ack(2, 5)
		beat(3) // alive, but its log position is unknown
		want("2 acknowledged the applied index", 1, 2)

		// Ignored: another term, another shard, a non-replica, the controller.
		tr.observe(netio.RaftAck{Kind: netio.AckReplicate, ShardID: 9, Follower: 3, Term: 3, LogIndex: 50})
		tr.observe(netio.RaftAck{Kind: netio.AckReplicate, ShardID: 8, Follower: 3, Term: 4, LogIndex: 50})
		tr.observe(netio.RaftAck{Kind: netio.AckReplicate, ShardID: 9, Follower: 7, Term: 4, LogIndex: 50})
		tr.observe(netio.RaftAck{Kind: netio.AckReplicate, ShardID: meta.ControllerShardID, Follower: 3, Term: 4, LogIndex: 50})
		want("foreign answers", 1, 2)

		// Kafka's rule under load: 3 trails the latest apply, but holds
		// what the leader had applied at its previous answer.
		ack(3, 4) // applied 5: behind
		want("3 behind", 1, 2)
		time.Sleep(100 * time.Millisecond)
		rep.v.Store(7)
		ack(3, 5) // applied 7, but 5 was all the leader had at the previous answer
		want("3 caught up as of its previous answer", 1, 2, 3)

		// Silence: both leave after lag; a heartbeat with the applied
		// index acknowledged brings an idle follower back.
		ack(2, 7)
		time.Sleep(lag + time.Millisecond)
		want("silent followers", 1)
		beat(2)
		want("2 alive and holding the applied index", 1, 2)

		// A follower stuck behind stays out even while it answers.
		rep.v.Store(20)
		for i := 0; i < 30; i++ {
			time.Sleep(100 * time.Millisecond)
			beat(3)
			ack(2, 20)
		}
		want("3 stuck at 5", 1, 2)

		// waitAcked: the leader counts itself; wakes on acks; bounded.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := tr.waitAcked(ctx, 9, 4, 20, 2); err != nil {
			t.Fatalf("2 of 3 hold 20: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- tr.waitAcked(ctx, 9, 4, 21, 3) }()
		synctest.Wait()
		ack(2, 21)
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("returned %v with 2 of 3 holding 21", err)
		default:
		}
		ack(3, 25)
		if err := <-done; err != nil {
			t.Fatalf("3 of 3 hold 21: %v", err)
		}
		if err := tr.waitAcked(ctx, 9, 4, 26, 3); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("nobody holds 26: %v", err)
		}
		go func() { done <- tr.waitAcked(context.Background(), 9, 4, 26, 3) }()
		synctest.Wait()
		tr.track(9, 5, 1, rep, []int32{1, 2, 3}) // a new term ends the old term's waits
		if err := <-done; !errors.Is(err, errNotLeader) {
			t.Fatalf("after a new term: %v", err)
		}
		want2 := []int32{1}
		if got, _ := tr.isr(9, 5, 1); !slices.Equal(got, want2) {
			t.Fatalf("new term ISR %v", got)
		}
		ack(2, 30) // term 4: ignored in term 5
		if got, _ := tr.isr(9, 5, 1); !slices.Equal(got, want2) {
			t.Fatalf("old-term answer counted: ISR %v", got)
		}

		// An idle follower whose replicate answers came before tracking
		// began: the leader's heartbeats carry its match index, its own
		// heartbeat answers prove it alive.
		term = 5
		rep.v.Store(30)
		beat(2)
		leaderBeat(2, 30) // a leader heartbeat alone is no answer
		if got, _ := tr.isr(9, 5, 1); !slices.Equal(got, want2) {
			t.Fatalf("before an answer: ISR %v", got)
		}
		beat(2)
		if got, _ := tr.isr(9, 5, 1); !slices.Equal(got, []int32{1, 2}) {
			t.Fatalf("idle follower known from the leader's heartbeats: ISR %v", got)
		}
		tr.untrack(9)
		if _, ok := tr.isr(9, 5, 1); ok || tr.isrSize(9, 5) != 1 || len(tr.shards) != 0 {
			t.Fatal("untracked shard still known")
		}
	})
}

// createTopicConfigs creates a one-partition topic with configs.
func (c *cluster) createTopicConfigs(name string, rf int16, configs ...meta.ConfigEntry) {
	c.t.Helper()
	n := c.node(c.ids()[0])
	waitFor(c.t, 20*time.Second, "brokers registered", func() bool { return len(n.view().Brokers) == len(c.peers) })
	waitFor(c.t, 20*time.Second, "create topic", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r := n.CreateTopics(ctx, []TopicSpec{{Name: name, Partitions: 1, ReplicationFactor: rf, Configs: configs}}, false)[0]
		return r.ErrorCode == 0 || r.ErrorCode == kerr.TopicAlreadyExists.Code
	})
}

// leaderISR is the ISR the partition's leader reports in Metadata.
func (c *cluster) leaderISR(topic string) []int32 {
	l := c.leaderOf(topic, 0)
	if l == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cv := l.Metadata(ctx, []string{topic})
	if len(cv.Topics) != 1 || len(cv.Topics[0].Partitions) != 1 {
		return nil
	}
	return cv.Topics[0].Partitions[0].ISR
}

func (c *cluster) waitISR(topic string, size int, d time.Duration) {
	c.t.Helper()
	waitFor(c.t, d, topic+" ISR size", func() bool { return len(c.leaderISR(topic)) == size })
}

// produceAcks sends one batch to the leader once.
func (c *cluster) produceAcks(topic string, acks int16, timeout time.Duration) (ProduceResult, int64) {
	l := c.leaderOf(topic, 0)
	if l == nil {
		return ProduceResult{ErrorCode: kerr.NotLeaderForPartition.Code}, -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := l.ProduceWith(ctx, topic, 0, batch(-1, 0, 1, 10, 0), ProduceOptions{Acks: acks})
	return r, l.FetchLocal(topic, 0, 0, 1).HighWatermark
}

func (c *cluster) mustProduceAcks(topic string, acks int16) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, fmt.Sprintf("produce acks=%d to %s", acks, topic), func() bool {
		r, _ := c.produceAcks(topic, acks, 2*time.Second)
		return r.ErrorCode == 0
	})
}

// otherThan returns a live node that leads none of topics' partitions.
func (c *cluster) otherThan(topics ...string) uint64 {
	c.t.Helper()
	for _, id := range c.ids() {
		leads := false
		for _, tp := range topics {
			if l := c.leaderOf(tp, 0); l == nil || l.ID() == id {
				leads = true
			}
		}
		if !leads {
			return id
		}
	}
	c.t.Fatalf("every node leads one of %v", topics)
	return 0
}

// TestISRShrinksAndMinInsync: a stopped follower leaves the ISR after
// ReplicaLagMax; acks=-1 then fails fast with NOT_ENOUGH_REPLICAS where
// min.insync.replicas=3 (nothing appended), acks=1 still succeeds, and
// min.insync.replicas=2 is unaffected; the restarted follower rejoins.
func TestISRShrinksAndMinInsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lag = 2 * time.Second
		c := newClusterWith(t, 5, 3, func(cfg *Config) { cfg.ReplicaLagMax = lag })
		defer c.closeAll()
		c.createTopicConfigs("m3", 3, meta.ConfigEntry{Key: "min.insync.replicas", Value: "3"})
		c.createTopicConfigs("m2", 3, meta.ConfigEntry{Key: "min.insync.replicas", Value: "2"})
		c.waitISR("m3", 3, 20*time.Second)
		c.waitISR("m2", 3, 20*time.Second)
		c.mustProduceAcks("m3", -1) // 3 > majority: waits for the third ack
		c.mustProduceAcks("m2", -1)

		down := c.otherThan("m3", "m2")
		stopping := time.Now()
		c.stop(down)
		c.waitISR("m3", 2, lag+10*time.Second)
		shrunk := time.Since(stopping)
		t.Logf("ISR shrank %v after the follower began to stop (ReplicaLagMax %v)", shrunk, lag)
		if shrunk < lag-100*time.Millisecond {
			t.Fatalf("ISR shrank after %v, before ReplicaLagMax %v", shrunk, lag)
		}
		if isr := c.leaderISR("m3"); slices.Contains(isr, int32(down)) {
			t.Fatalf("ISR %v still lists the stopped node %d", isr, down)
		}

		_, before := c.produceAcks("m3", 1, 2*time.Second) // also settles the high watermark
		r, after := c.produceAcks("m3", -1, 2*time.Second)
		if r.ErrorCode != kerr.NotEnoughReplicas.Code {
			t.Fatalf("acks=-1, min.insync=3, ISR 2: code %d, want NOT_ENOUGH_REPLICAS", r.ErrorCode)
		}
		if after != before {
			t.Fatalf("refused produce appended: high watermark %d -> %d", before, after)
		}
		c.mustProduceAcks("m3", 1)
		c.mustProduceAcks("m2", -1)

		c.start(down)
		c.waitISR("m3", 3, 20*time.Second)
		c.mustProduceAcks("m3", -1)
	})
}

// TestMinInsyncAfterAppend: min.insync.replicas above the Raft majority
// waits for that many acknowledgements; a follower cut off while still in
// the ISR makes the wait time out with NOT_ENOUGH_REPLICAS_AFTER_APPEND,
// and the records stay in the log.
func TestMinInsyncAfterAppend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterWith(t, 6, 3, func(cfg *Config) { cfg.ReplicaLagMax = 10 * time.Second })
		defer c.closeAll()
		c.createTopicConfigs("m3", 3, meta.ConfigEntry{Key: "min.insync.replicas", Value: "3"})
		c.waitISR("m3", 3, 20*time.Second)
		c.mustProduceAcks("m3", -1)

		cut := c.otherThan("m3")
		c.net.Isolate(hostName(cut))
		_, before := c.produceAcks("m3", 1, 2*time.Second)
		r, after := c.produceAcks("m3", -1, time.Second)
		if r.ErrorCode != kerr.NotEnoughReplicasAfterAppend.Code {
			t.Fatalf("acks=-1 with a cut follower still in the ISR: code %d, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", r.ErrorCode)
		}
		if after != before+1 {
			t.Fatalf("high watermark %d -> %d: the records should stay in the log", before, after)
		}
		c.net.Heal()
		c.mustProduceAcks("m3", -1)
	})
}
