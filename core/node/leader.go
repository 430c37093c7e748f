package node

import (
	"context"
	"errors"
	"math"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
)

var errNotLeader = errors.New("node: not the leader")

// leaderLoop drains dragonboat's leader events (one goroutine; the
// listener never blocks) and reports to the controller each partition
// shard this node leads. A periodic resync re-reports what the view does
// not show yet (failed proposals, dropped events).
func (n *Node) leaderLoop() {
	timer := n.cfg.Clock.NewTimer(leaderResyncEvery)
	defer timer.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case info := <-n.events:
			switch {
			case info.ShardID == meta.ControllerShardID:
			case info.LeaderID == n.cfg.NodeID && info.Term > 0:
				if !meta.IsGroupShard(info.ShardID) {
					n.trackLeader(n.view(), info.ShardID, info.Term)
				}
				n.reportLeader(info.ShardID, info.Term)
			default:
				n.isr.untrack(info.ShardID)
			}
		case <-timer.C():
			n.overflow.Store(false)
			n.resyncLeaders()
			timer.Reset(leaderResyncEvery)
		}
	}
}

// resyncLeaders reports every hosted shard this node leads whose term the
// controller view does not show yet. Sorted by shard id.
func (n *Node) resyncLeaders() {
	v := n.view()
	n.resyncISR(v)
	for _, h := range v.HostedPartitions(int32(n.cfg.NodeID)) {
		term, ok := n.leaderTerm(h.ShardID)
		if !ok {
			continue
		}
		if p, ok := partitionOf(v, h.Topic, h.Partition); ok && p.LeaderEpoch >= term && p.Leader == int32(n.cfg.NodeID) {
			continue
		}
		n.reportLeader(h.ShardID, term)
		if n.ctx.Err() != nil {
			return
		}
	}
	for _, g := range v.GroupShards {
		term, ok := n.leaderTerm(g.ShardID)
		if !ok {
			continue
		}
		if g.LeaderEpoch >= term && g.Leader == int32(n.cfg.NodeID) {
			continue
		}
		n.reportLeader(g.ShardID, term)
		if n.ctx.Err() != nil {
			return
		}
	}
}

// reportLeader proposes SetPartitionLeader once; failures are retried by
// the resync.
func (n *Node) reportLeader(shardID, term uint64) {
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	defer cancel()
	r, err := n.proposeMeta(ctx, meta.SetPartitionLeader{ShardID: shardID, Leader: int32(n.cfg.NodeID), Term: term})
	if err != nil || r.Code != 0 {
		n.log.Debug("leader report failed", "shard", shardID, "term", term, "err", err, "code", r.Code)
	}
}

// ensureReady makes sure this node, leader of shardID in term, has applied
// everything committed before term: a linearizable read (ReadIndex) on the
// shard completes only once the leader committed an entry of its own term
// and applied up to the read index. Until it has, the node must not serve
// the partition as leader, or a high watermark it reports could be lower
// than one the previous leader already served.
func (n *Node) ensureReady(ctx context.Context, shardID, term uint64) error {
	n.mu.Lock()
	done := n.ready[shardID] >= term
	n.mu.Unlock()
	if done {
		return nil
	}
	if _, err := n.nh.SyncRead(ctx, shardID, partition.QueryAppliedIndex); err != nil {
		return err
	}
	if t, ok := n.leaderTerm(shardID); !ok || t != term {
		return errNotLeader
	}
	n.mu.Lock()
	if n.ready[shardID] < term {
		n.ready[shardID] = term
	}
	n.mu.Unlock()
	return nil
}

func epochOf(term uint64) int32 {
	if term > math.MaxInt32 {
		panic("node: raft term beyond the Kafka leader epoch range")
	}
	return int32(term)
}

func partitionOf(v *meta.View, topic string, p int32) (meta.Partition, bool) {
	t := v.Topic(topic)
	if t == nil || p < 0 || int(p) >= len(t.Partitions) {
		return meta.Partition{}, false
	}
	return t.Partitions[p], true
}
