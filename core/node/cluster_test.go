package node

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/diskio"
)

func TestThreeNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 2, 3)
		defer c.closeAll()
		c.createTopic("t", 3, 3)
		basicProduceFetch(t, c, "t", 3)
	})
}

// idemProducer produces numbered idempotent batches to one partition
// through whichever node leads it, retrying the same batch after any
// error, and records what was acknowledged.
type idemProducer struct {
	c     *cluster
	topic string
	pid   int64
	seq   int32
	mu    sync.Mutex      // guards acked: a background producer writes it while the test reads
	acked map[int32]int64 // base sequence -> base offset
}

// ackedCount is how many batches have been acknowledged so far.
func (p *idemProducer) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// next sends the next batch once, to the current leader; it reports
// whether it was acknowledged (the sequence advances only then).
func (p *idemProducer) next() bool {
	n := p.c.leaderOf(p.topic, 0)
	if n == nil {
		time.Sleep(20 * time.Millisecond)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r := n.Produce(ctx, p.topic, 0, batch(p.pid, p.seq, 2, 50, 0))
	if r.ErrorCode != 0 {
		time.Sleep(20 * time.Millisecond)
		return false
	}
	p.mu.Lock()
	p.acked[p.seq] = r.BaseOffset
	p.mu.Unlock()
	p.seq += 2
	return true
}

// check verifies that n's replica holds every acknowledged batch at its
// acknowledged offset, and no producer batch twice.
func (p *idemProducer) check(t *testing.T, n *Node) {
	t.Helper()
	all, _ := fetchAll(t, n, p.topic, 0)
	seen := map[int32]int64{}
	for _, b := range splitBatches(t, all) {
		if b.pid != p.pid {
			continue
		}
		if off, dup := seen[b.seq]; dup {
			t.Fatalf("node %d: sequence %d at offsets %d and %d", n.ID(), b.seq, off, b.baseOffset)
		}
		seen[b.seq] = b.baseOffset
	}
	for seq, off := range p.acked {
		if got, ok := seen[seq]; !ok || got != off {
			t.Fatalf("node %d: acknowledged sequence %d at %d is at %d (present %v)", n.ID(), seq, off, got, ok)
		}
	}
}

func newProducer(t *testing.T, c *cluster, topic string) *idemProducer {
	pid, _, code := c.node(c.ids()[0]).InitProducerID(context.Background())
	if code != 0 {
		t.Fatalf("InitProducerID: %d", code)
	}
	return &idemProducer{c: c, topic: topic, pid: pid, acked: map[int32]int64{}}
}

// sameReplicas waits until every live node's replica equals the leader's.
func sameReplicas(t *testing.T, c *cluster, topic string) {
	t.Helper()
	waitFor(t, 20*time.Second, "replicas converge", func() bool {
		l := c.leaderOf(topic, 0)
		if l == nil {
			return false
		}
		want, hw, code := tryFetchAll(t, l, topic, 0)
		if code != 0 {
			return false
		}
		for _, id := range c.ids() {
			got, h, code := tryFetchAll(t, c.node(id), topic, 0)
			if code != 0 || h != hw || !bytes.Equal(got, want) {
				return false
			}
		}
		return true
	})
}

func TestLeaderCrashDuringProduce(t *testing.T) {
	for _, mode := range []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashTornPrefix} {
		t.Run(mode.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, 3, 3)
				defer c.closeAll()
				c.createTopic("t", 1, 3)
				p := newProducer(t, c, "t")
				for acked := 0; acked < 20; {
					if p.next() {
						acked++
					}
				}
				leader := c.leaderOf("t", 0).ID()
				done := make(chan struct{})
				go func() { // crash mid-stream
					defer close(done)
					time.Sleep(15 * time.Millisecond)
					c.crash(leader, mode)
				}()
				for i := 0; i < 10; i++ {
					p.next()
				}
				<-done
				crashed := time.Now()
				for !p.next() {
					if time.Since(crashed) > 10*time.Second {
						t.Fatalf("no acknowledged produce within 10 s of the leader crash")
					}
				}
				t.Logf("first ack %v after the crash", time.Since(crashed))
				for i := 0; i < 20; i++ {
					p.next()
				}
				c.start(leader)
				for i := 0; i < 20; i++ {
					p.next()
				}
				sameReplicas(t, c, "t")
				for _, id := range c.ids() {
					p.check(t, c.node(id))
				}
			})
		})
	}
}

func TestFollowerCrashAndRejoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 4, 3)
		defer c.closeAll()
		c.createTopic("t", 1, 3)
		p := newProducer(t, c, "t")
		for i := 0; i < 20; i++ {
			p.next()
		}
		leader := c.leaderOf("t", 0).ID()
		follower := leader%3 + 1
		c.crash(follower, diskio.CrashRandomPrefix)
		for acked := 0; acked < 40; {
			if p.next() {
				acked++
			}
		}
		c.start(follower)
		for i := 0; i < 10; i++ {
			p.next()
		}
		sameReplicas(t, c, "t")
		p.check(t, c.node(follower))
	})
}

func TestMinorityPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 5, 3)
		defer c.closeAll()
		c.createTopic("t", 1, 3)
		p := newProducer(t, c, "t")
		for i := 0; i < 10; i++ {
			p.next()
		}
		old := c.leaderOf("t", 0)
		c.net.Isolate(hostName(old.ID()))
		isolated := time.Now()
		// The isolated old leader never acknowledges again.
		oldDone := make(chan int, 1) // buffered: a failing test must not strand the sender
		go func() {
			successes := 0
			for i := 0; i < 20; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
				if r := old.Produce(ctx, "t", 0, batch(-1, 0, 1, 10, 0)); r.ErrorCode == 0 {
					successes++
				}
				cancel()
				time.Sleep(100 * time.Millisecond)
			}
			oldDone <- successes
		}()
		// The majority elects a new leader and keeps acknowledging.
		others := func() *Node {
			for _, id := range c.ids() {
				if id == old.ID() {
					continue
				}
				if pt, ok := partitionOf(c.node(id).view(), "t", 0); ok {
					if _, ok := c.node(id).leaderTerm(pt.ShardID); ok {
						return c.node(id)
					}
				}
			}
			return nil
		}
		var nl *Node
		waitFor(t, 10*time.Second, "new leader on the majority side", func() bool { nl = others(); return nl != nil })
		// Leadership may still move between the two majority nodes (a
		// leader that loses its peer steps down under CheckQuorum), so
		// each attempt asks who leads now, as a client would.
		acks := 0
		var codes []int16
		for i := 0; i < 20; i++ {
			if l := others(); l != nil {
				nl = l
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if r := nl.Produce(ctx, "t", 0, batch(-1, 0, 1, 10, 0)); r.ErrorCode == 0 {
				acks++
			} else {
				codes = append(codes, r.ErrorCode)
				time.Sleep(100 * time.Millisecond) // virtual: a client's retry backoff
			}
			cancel()
		}
		if acks == 0 {
			t.Fatalf("majority side (last leader node %d) acknowledged nothing; error codes %v", nl.ID(), codes)
		}
		if s := <-oldDone; s != 0 {
			t.Fatalf("isolated old leader acknowledged %d produces", s)
		}
		t.Logf("new leader %d after %v; %d acks on the majority", nl.ID(), time.Since(isolated), acks)
		c.net.Heal()
		sameReplicas(t, c, "t")
	})
}

func TestAddNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 6, 3)
		defer c.closeAll()
		c.createTopic("t", 2, 3)
		c.peers[4] = raftAddr(4)
		c.mu.Lock()
		c.disks[4] = diskio.NewSim(64)
		c.mu.Unlock()
		n4 := c.start(4)
		waitFor(t, 20*time.Second, "AddNode", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return c.node(1).AddNode(ctx, 4, raftAddr(4)) == nil
		})
		waitFor(t, 20*time.Second, "node 4 sees the cluster", func() bool {
			md := n4.Metadata(context.Background(), nil)
			if len(md.Brokers) != 4 || len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 2 {
				return false
			}
			for _, p := range md.Topics[0].Partitions {
				if p.Leader < 0 {
					return false
				}
			}
			return true
		})
	})
}

func TestRestartAllNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 7, 3)
		defer c.closeAll()
		c.createTopic("t", 1, 3)
		p := newProducer(t, c, "t")
		for i := 0; i < 30; i++ {
			p.next()
		}
		sameReplicas(t, c, "t")
		want, _ := fetchAll(t, c.leaderOf("t", 0), "t", 0)
		for _, id := range c.ids() {
			c.crash(id, diskio.CrashSyncedOnly)
		}
		c.net.Heal()
		for id := uint64(1); id <= 3; id++ {
			c.start(id)
		}
		waitFor(t, 20*time.Second, "a leader after restart", func() bool { return c.leaderOf("t", 0) != nil })
		sameReplicas(t, c, "t")
		got, _ := fetchAll(t, c.leaderOf("t", 0), "t", 0)
		if !bytes.Equal(got, want) {
			t.Fatalf("data after restart differs: %d bytes, want %d", len(got), len(want))
		}
		for _, id := range c.ids() {
			p.check(t, c.node(id))
		}
		for i := 0; i < 5; i++ {
			p.next()
		}
	})
}

// TestMetadataNoStaleLeader: when a replica knows its partition has no
// leader (here: the other two replicas are down, so an election cannot
// succeed), Metadata on that node answers LEADER_NOT_AVAILABLE instead of
// the controller's last report, which would send clients to a broker that
// answers NOT_LEADER_OR_FOLLOWER at once (a fetch storm seen in the
// simulator).
func TestMetadataNoStaleLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 11, 3)
		defer c.closeAll()
		c.createTopic("t", 1, 3)
		c.produce("t", 0, batch(-1, 0, 1, 10, 0), 20*time.Second)
		leader := c.leaderOf("t", 0).ID()
		survivor := leader%3 + 1
		for _, id := range c.ids() {
			if id != survivor {
				c.crash(id, diskio.CrashSyncedOnly)
			}
		}
		n := c.node(survivor)
		ctx := context.Background()
		waitFor(t, 20*time.Second, "no leader reported for t/0", func() bool {
			md := n.Metadata(ctx, []string{"t"})
			p := md.Topics[0].Partitions[0]
			return p.Leader == -1 && p.ErrorCode == kerr.LeaderNotAvailable.Code
		})
	})
}
