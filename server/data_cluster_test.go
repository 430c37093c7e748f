package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDataThreeNodes runs the kgo round trip with every codec, leader-only
// serving and a leader failover under an idempotent producer on three
// brokers.
func TestDataThreeNodes(t *testing.T) {
	c := startCluster(t, 3, nil)
	t.Run("codecs", func(t *testing.T) { testRoundTripCodecs(t, c) })
	t.Run("followers", func(t *testing.T) { testFollowersRefuse(t, c) })
	t.Run("describe-producers", func(t *testing.T) { testDescribeProducers(t, c) })
	t.Run("fetch-sessions", func(t *testing.T) { testFetchSessionsKgo(t, c) })
	t.Run("failover", func(t *testing.T) { testLeaderFailover(t, c) })
}

// testFetchSessionsKgo: a kgo consumer, with fetch sessions (its default),
// reads 16 partitions led by three brokers while records are produced in
// rounds: every record arrives exactly once and in order, and the brokers
// served incremental fetches. A consumer with DisableFetchSessions reads
// the same records.
func testFetchSessionsKgo(t *testing.T, c *testCluster) {
	topic := "fsk"
	const partitions = 16
	c.createTopic(topic, partitions)
	incremental := func() uint64 {
		var n uint64
		for id := uint64(1); id <= 3; id++ {
			n += c.broker(id).Metrics().fetchIncremental.Load()
		}
		return n
	}
	before := incremental()
	prod := c.client(kgo.ProducerLinger(time.Millisecond))
	offs := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		offs[p] = kgo.NewOffset().AtStart()
	}
	consume := func(opts ...kgo.Opt) *sessionConsumer {
		return &sessionConsumer{t: t, cl: c.client(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}), kgo.FetchMaxWait(200*time.Millisecond))...), next: map[int32]int64{}}
	}
	withSessions := consume()
	var want []produced
	for round := range 5 {
		want = append(want, produceN(t, prod, topic, 150, fmt.Sprint("round", round))...)
		withSessions.until(want)
	}
	withSessions.noMore()
	if got := incremental() - before; got == 0 {
		t.Fatal("no incremental fetch was served")
	}
	without := consume(kgo.DisableFetchSessions())
	without.until(want)
}

// sessionConsumer reads records and checks each against what was produced:
// every offset of each partition once, in order.
type sessionConsumer struct {
	t    *testing.T
	cl   *kgo.Client
	next map[int32]int64
	got  int
}

// until polls until every record of want has arrived.
func (s *sessionConsumer) until(want []produced) {
	s.t.Helper()
	type po struct {
		p int32
		o int64
	}
	byPos := map[po]produced{}
	for _, w := range want {
		byPos[po{w.partition, w.offset}] = w
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWait)
	defer cancel()
	for s.got < len(want) {
		fs := s.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			s.t.Fatalf("consumed %d of %d records", s.got, len(want))
		}
		fs.EachError(func(tp string, p int32, err error) { s.t.Errorf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != s.next[r.Partition] {
				s.t.Fatalf("p%d: offset %d, want %d (gap or duplicate)", r.Partition, r.Offset, s.next[r.Partition])
			}
			s.next[r.Partition]++
			if w, ok := byPos[po{r.Partition, r.Offset}]; !ok || string(r.Value) != w.value || string(r.Key) != w.key {
				s.t.Fatalf("p%d/%d: %q=%q, want %+v", r.Partition, r.Offset, r.Key, r.Value, w)
			}
			s.got++
		})
	}
}

// noMore checks that nothing more arrives for a while.
func (s *sessionConsumer) noMore() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if fs := s.cl.PollFetches(ctx); fs.NumRecords() > 0 {
		s.t.Fatalf("%d records more than produced", fs.NumRecords())
	}
}

// testFollowersRefuse: Produce and Fetch on a follower answer
// NOT_LEADER_OR_FOLLOWER (Produce v10+ names the current leader, KIP-951).
func testFollowersRefuse(t *testing.T, c *testCluster) {
	topic := "fol"
	c.createTopic(topic, 1)
	leader := c.leaderOf(topic, 0)
	for id := uint64(1); id <= 3; id++ {
		if id == leader {
			continue
		}
		resp := rawRoundTripProduce(t, c.addrs[id], 11, topic)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("produce on follower %d: %+v", id, p)
		}
		if p.CurrentLeader.LeaderID != int32(leader) || len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != int32(leader) {
			t.Fatalf("follower %d: current leader %+v brokers %+v, want %d", id, p.CurrentLeader, resp.Brokers, leader)
		}
		fr, fp := fetchOne(t, c.addrs[id], rawFetchReq(16, 0, 1, 1<<20, fetchSpec{topicID: c.topicID(topic)}))
		if fp.ErrorCode != kerr.NotLeaderForPartition.Code || fp.CurrentLeader.LeaderID != int32(leader) ||
			len(fr.Brokers) != 1 || fr.Brokers[0].NodeID != int32(leader) || fr.Brokers[0].Port == 0 {
			t.Fatalf("fetch on follower %d: %+v", id, fr)
		}
		if _, fp := fetchOne(t, c.addrs[id], rawFetchReq(12, 0, 1, 1<<20, fetchSpec{topic: topic})); fp.ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("fetch v12 on follower %d: %+v", id, fp)
		}
	}
}

// testLeaderFailover: while an idempotent producer is producing, the
// partition leader's broker stops; every acknowledged record is then read
// back exactly once, in order.
func testLeaderFailover(t *testing.T, c *testCluster) {
	topic := "fo"
	c.createTopic(topic, 1)
	leader := c.leaderOf(topic, 0)
	cl := c.client(kgo.ProducerLinger(2*time.Millisecond), kgo.MetadataMinAge(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()

	// A producer loop, one record at a time (so one is always in flight),
	// runs across the leader's shutdown and goes on for afterStop records
	// once the shutdown is over.
	const afterStop = 100
	stopped := make(chan struct{})
	var acked []string
	loopDone := make(chan error, 1)
	sent50 := make(chan struct{})
	go func() {
		extra := -1
		for i := 0; extra < afterStop; i++ {
			v := fmt.Sprintf("v%04d", i)
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
				loopDone <- fmt.Errorf("record %d: %w", i, err)
				return
			}
			acked = append(acked, v)
			if len(acked) == 50 {
				close(sent50)
			}
			select {
			case <-stopped:
				extra++
			default:
			}
		}
		loopDone <- nil
	}()
	select {
	case <-sent50:
	case <-ctx.Done():
		t.Fatal("no acknowledgements")
	}
	c.stop(leader)
	close(stopped)
	if err := <-loopDone; err != nil {
		t.Fatal(err)
	}
	total := len(acked)
	if newLeader := c.leaderOf(topic, 0); newLeader == leader {
		t.Fatalf("leader still %d", leader)
	}
	t.Logf("%d records acknowledged across the failover of leader %d", total, leader)

	cons := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxWait(500*time.Millisecond), kgo.MetadataMinAge(100*time.Millisecond))
	var got []string
	for len(got) < total {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d", len(got), total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if int64(len(got)) != r.Offset {
				t.Fatalf("offset %d at position %d", r.Offset, len(got))
			}
			got = append(got, string(r.Value))
		})
	}
	for i, v := range got {
		if want := acked[i]; v != want {
			t.Fatalf("position %d: %s, want %s (loss, duplicate or reorder)", i, v, want)
		}
	}
}
