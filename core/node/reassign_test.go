package node

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// addFourth starts node 4, adds it to the cluster and waits until it is a
// registered broker in everyone's view.
func (c *cluster) addFourth(seed int64) *Node {
	c.t.Helper()
	c.mu.Lock()
	c.peers[4] = raftAddr(4)
	c.disks[4] = diskio.NewSim(seed)
	c.mu.Unlock()
	n4 := c.start(4)
	waitFor(c.t, 20*time.Second, "AddNode", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return c.node(1).AddNode(ctx, 4, raftAddr(4)) == nil
	})
	waitFor(c.t, 20*time.Second, "node 4 registered everywhere", func() bool {
		for _, id := range c.ids() {
			if _, ok := c.node(id).view().Broker(4); !ok {
				return false
			}
		}
		return true
	})
	return n4
}

// move records target for t/0, retrying retriable failures.
func (c *cluster) move(topic string, target []int32) {
	c.t.Helper()
	waitFor(c.t, 20*time.Second, "MovePartition", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r := c.node(c.ids()[0]).MovePartition(ctx, topic, 0, target)
		if r.ErrorCode != 0 && r.ErrorCode != kerr.RequestTimedOut.Code && r.ErrorCode != kerr.NotController.Code {
			c.t.Logf("MovePartition: code %d %s", r.ErrorCode, r.Message)
		}
		return r.ErrorCode == 0
	})
}

// waitMoved waits until every live node's view shows the move of topic/0
// to target completed and the nodes outside target no longer host the
// shard nor hold its data.
func (c *cluster) waitMoved(topic string, target []int32, d time.Duration) meta.Partition {
	c.t.Helper()
	var p meta.Partition
	waitFor(c.t, d, "move completed", func() bool {
		for _, id := range c.ids() {
			n := c.node(id)
			pt, ok := partitionOf(n.view(), topic, 0)
			if !ok || pt.Target != nil || !slices.Equal(pt.Replicas, target) {
				return false
			}
			p = pt
			if !slices.Contains(target, int32(id)) && (n.isHosted(pt.ShardID) || n.nh.HasNodeInfo(pt.ShardID, id) || hasShardDir(c, id, pt.ShardID)) {
				return false
			}
		}
		return true
	})
	return p
}

func hasShardDir(c *cluster, id, shard uint64) bool {
	c.mu.Lock()
	disk := c.disks[id]
	c.mu.Unlock()
	names, _ := disk.List("/data/partitions")
	for _, name := range names {
		if name == itoa(shard) {
			return true
		}
	}
	return false
}

func itoa(v uint64) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
		if v == 0 {
			return string(b)
		}
	}
}

// replaceIn returns replicas with old replaced by new.
func replaceIn(replicas []int32, old, new int32) []int32 {
	out := slices.Clone(replicas)
	out[slices.Index(out, old)] = new
	return out
}

// background runs p.next until stop is closed; done is closed when it
// returns.
func (p *idemProducer) background(stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			p.next()
			time.Sleep(20 * time.Millisecond) // let virtual time move

		}
	}()
	return done
}

// checkMoved verifies, after a move to target: Metadata on every live
// node lists target, every target replica's Fetch output equals the
// leader's, and the producer's acknowledged batches are all there, once.
func checkMoved(t *testing.T, c *cluster, p *idemProducer, target []int32) {
	t.Helper()
	for _, id := range c.ids() {
		md := c.node(id).Metadata(context.Background(), []string{p.topic})
		if got := md.Topics[0].Partitions[0].Replicas; !slices.Equal(got, target) {
			t.Fatalf("node %d Metadata replicas %v, want %v", id, got, target)
		}
	}
	waitFor(t, 20*time.Second, "target replicas converge", func() bool {
		l := c.leaderOf(p.topic, 0)
		if l == nil || !slices.Contains(target, int32(l.ID())) {
			return false
		}
		want, hw, code := tryFetchAll(t, l, p.topic, 0)
		if code != 0 {
			return false
		}
		for _, id := range target {
			got, h, code := tryFetchAll(t, c.node(uint64(id)), p.topic, 0)
			if code != 0 || h != hw || !bytes.Equal(got, want) {
				return false
			}
		}
		return true
	})
	waitFor(t, 10*time.Second, "Metadata names a leader in the target", func() bool {
		md := c.node(uint64(target[0])).Metadata(context.Background(), []string{p.topic})
		return slices.Contains(target, md.Topics[0].Partitions[0].Leader)
	})
	for _, id := range target {
		p.check(t, c.node(uint64(id)))
	}
}

func TestMovePartitionReplacesNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := newCluster(t, 11, 3)
		defer c.closeAll()
		c.createTopic("t", 1, 3)
		p := newProducer(t, c, "t")
		for acked := 0; acked < 30; {
			if p.next() {
				acked++
			}
		}
		c.addFourth(111)
		pt, _ := partitionOf(c.node(1).view(), "t", 0)
		target := replaceIn(pt.Replicas, 1, 4)
		stop := make(chan struct{})
		done := p.background(stop)
		c.move("t", target)
		waitFor(t, 10*time.Second, "Metadata shows the move", func() bool {
			md := c.node(2).Metadata(context.Background(), []string{"t"})
			return len(md.Topics[0].Partitions[0].Replicas) == 4
		})
		c.waitMoved("t", target, 60*time.Second)
		acked := p.ackedCount()
		for p.ackedCount() < acked+10 { // producing carries on after the move
			time.Sleep(10 * time.Millisecond)
		}
		close(stop)
		<-done
		checkMoved(t, c, p, target)
		if n := len(c.node(1).PartitionReassignments()); n != 0 {
			t.Fatalf("%d reassignments still listed", n)
		}
		t.Logf("moved with %d batches acknowledged; %v virtual", p.ackedCount(), time.Since(start))
	})
}

func TestMovePartitionAwayFromLeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 12, 3)
		defer c.closeAll()
		c.createTopic("t", 1, 3)
		p := newProducer(t, c, "t")
		for acked := 0; acked < 20; {
			if p.next() {
				acked++
			}
		}
		c.addFourth(112)
		leader := c.leaderOf("t", 0).ID()
		pt, _ := partitionOf(c.node(1).view(), "t", 0)
		target := replaceIn(pt.Replicas, int32(leader), 4)
		stop := make(chan struct{})
		done := p.background(stop)
		c.move("t", target)
		c.waitMoved("t", target, 60*time.Second)
		close(stop)
		<-done
		if l := c.leaderOf("t", 0); l == nil || l.ID() == leader {
			t.Fatalf("leader after the move: %v (old %d)", l, leader)
		}
		checkMoved(t, c, p, target)
	})
}

func TestMovePartitionNewNodeCrashesDuringCatchUp(t *testing.T) {
	for _, mode := range []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashTornPrefix} {
		t.Run(mode.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, 13, 3)
				defer c.closeAll()
				c.createTopic("t", 1, 3)
				p := newProducer(t, c, "t")
				for i := int32(0); i < 60; i++ { // ~1.2 MB to catch up
					c.produce("t", 0, batch(-1, 0, 20, 1000, time.Now().UnixMilli()), 10*time.Second)
				}
				c.addFourth(113)
				for id := uint64(1); id <= 3; id++ { // a slow way in: catching up takes a while
					c.net.SetLink(hostName(id), hostName(4), netio.LinkRule{BandwidthBytesPerSec: 256 << 10})
				}
				pt, _ := partitionOf(c.node(1).view(), "t", 0)
				target := replaceIn(pt.Replicas, 1, 4)
				stop := make(chan struct{})
				done := p.background(stop)
				c.move("t", target)
				// Crash node 4 once it is a voter that has not caught up.
				caught := false
				waitFor(t, 30*time.Second, "node 4 joined", func() bool {
					v, ok := c.node(4).localVoters(pt.ShardID)
					cur, _ := partitionOf(c.node(1).view(), "t", 0)
					caught = slices.Contains(cur.CaughtUp, 4)
					return ok && v[4] != ""
				})
				if caught {
					t.Logf("node 4 caught up before the crash")
				}
				c.crash(4, mode)
				time.Sleep(2 * time.Second)
				for id := uint64(1); id <= 3; id++ {
					c.net.SetLink(hostName(id), hostName(4), netio.LinkRule{})
				}
				c.start(4)
				c.waitMoved("t", target, 60*time.Second)
				close(stop)
				<-done
				checkMoved(t, c, p, target)
			})
		})
	}
}

func TestMovePartitionRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 14, 3)
		defer c.closeAll()
		c.createTopic("t", 1, 3)
		ctx := context.Background()
		n := c.node(2)
		waitFor(t, 10*time.Second, "node 2 sees the topic", func() bool { return n.view().Topic("t") != nil })
		for _, tc := range []struct {
			name    string
			topic   string
			target  []int32
			code    int16
			partNum int32
		}{
			{"unknown topic", "nope", []int32{1}, kerr.UnknownTopicOrPartition.Code, 0},
			{"unknown partition", "t", []int32{1}, kerr.UnknownTopicOrPartition.Code, 5},
			{"duplicate", "t", []int32{1, 2, 2}, kerr.InvalidReplicaAssignment.Code, 0},
			{"unregistered broker", "t", []int32{1, 2, 9}, kerr.InvalidReplicaAssignment.Code, 0},
			{"negative id", "t", []int32{-1}, kerr.InvalidReplicaAssignment.Code, 0},
			{"too many", "t", make([]int32, meta.ReplicationFactorMax+1), kerr.InvalidReplicationFactor.Code, 0},
			{"cancel without move", "t", nil, kerr.NoReassignmentInProgress.Code, 0},
		} {
			if r := n.MovePartition(ctx, tc.topic, tc.partNum, tc.target); r.ErrorCode != tc.code {
				t.Errorf("%s: code %d (%s), want %d", tc.name, r.ErrorCode, r.Message, tc.code)
			}
		}
		// Same replicas: accepted, nothing to do.
		pt, _ := partitionOf(n.view(), "t", 0)
		if r := n.MovePartition(ctx, "t", 0, pt.Replicas); r.ErrorCode != 0 || len(n.PartitionReassignments()) != 0 {
			t.Fatalf("no-op move: code %d, %d in progress", r.ErrorCode, len(n.PartitionReassignments()))
		}
	})
}

// A node that is down while a move takes its replica away deletes that
// replica's data when it comes back (the retired sweep).
func TestMovePartitionRemovedNodeDownThenRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 15, 3)
		defer c.closeAll()
		c.createTopic("t", 1, 3)
		p := newProducer(t, c, "t")
		for acked := 0; acked < 20; {
			if p.next() {
				acked++
			}
		}
		c.addFourth(115)
		pt, _ := partitionOf(c.node(2).view(), "t", 0)
		target := replaceIn(pt.Replicas, 1, 4)
		c.crash(1, diskio.CrashSyncedOnly)
		c.move("t", target)
		c.waitMoved("t", target, 60*time.Second) // nodes 2, 3, 4
		if !hasShardDir(c, 1, pt.ShardID) {
			t.Fatalf("node 1's image lost the shard before it restarted")
		}
		c.start(1)
		c.waitMoved("t", target, 30*time.Second) // now node 1 too
		for i := 0; i < 10; i++ {
			p.next()
		}
		checkMoved(t, c, p, target)
	})
}
