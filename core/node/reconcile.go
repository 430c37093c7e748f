package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/pingcap/failpoint"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
)

// reconcileLoop runs the partition shards the controller places on this
// node and stops (and deletes) those it no longer does. It wakes on every
// controller change, and retries after failures on a timer.
func (n *Node) reconcileLoop() {
	n.watchView(reconcileRetryEvery, func(v *meta.View) bool { return !n.reconcile(v) })
}

// watchView runs step with the current controller view on every controller
// change, and also after every when the last step asked for it (returned
// true), until the node closes.
func (n *Node) watchView(every time.Duration, step func(*meta.View) (again bool)) {
	for {
		ch := n.meta.Load().Changed()
		var retry <-chan time.Time
		var t clock.Timer
		if step(n.view()) {
			t = n.cfg.Clock.NewTimer(every)
			retry = t.C()
		}
		select {
		case <-n.ctx.Done():
		case <-ch:
		case <-retry:
		}
		if t != nil {
			t.Stop()
		}
		if n.ctx.Err() != nil {
			return
		}
	}
}

// reconcile brings the running shards in line with v, in shard-id order.
// It reports whether everything succeeded.
func (n *Node) reconcile(v *meta.View) bool {
	hosted := v.HostedPartitions(int32(n.cfg.NodeID))
	want := make(map[uint64]bool, len(hosted))
	ok := true
	for _, h := range hosted {
		want[h.ShardID] = true
		if n.isHosted(h.ShardID) {
			continue
		}
		if err := n.startPartition(v, h); err != nil {
			n.log.Warn("start partition shard", "topic", h.Topic, "partition", h.Partition, "shard", h.ShardID, "err", err)
			ok = false
			continue
		}
		n.setHosted(h.ShardID, true)
	}
	ok = n.reconcileGroupShards(v, want) && ok
	if n.ensureGroupShards(v) {
		ok = false // look again
	}
	n.mu.Lock()
	var drop []uint64
	for _, id := range sortedIDs(n.hosted) {
		if !want[id] {
			drop = append(drop, id)
		}
	}
	n.mu.Unlock()
	for _, id := range drop {
		if err := n.stopPartition(id); err != nil {
			n.log.Warn("remove partition shard", "shard", id, "err", err)
			ok = false
		}
	}
	return n.sweepRetired(v) && ok
}

func (n *Node) isHosted(id uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hosted[id]
}

func (n *Node) setHosted(id uint64, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if on {
		n.hosted[id] = true
	} else {
		delete(n.hosted, id)
		delete(n.ready, id)
	}
}

// startPartition starts this node's replica of h: with the replicas as
// initial members (first start of a placed partition), as a joiner (first
// start on a node a reassignment adds: no members, join; the leader adds
// it to the group), or from dragonboat's bootstrap record (a restart).
func (n *Node) startPartition(v *meta.View, h meta.HostedPartition) error {
	failpoint.Inject("startPartitionError", func() { failpoint.Return(errFailpoint) })
	var members map[uint64]dragonboat.Target // nil: joiner or restart
	restart := n.nh.HasNodeInfo(h.ShardID, n.cfg.NodeID)
	join := !restart && !slices.Contains(h.Replicas, int32(n.cfg.NodeID))
	if !restart && !join {
		members = map[uint64]dragonboat.Target{}
		for _, r := range h.Replicas {
			b, ok := v.Broker(r)
			if !ok {
				return fmt.Errorf("replica %d is not a registered broker", r)
			}
			members[uint64(r)] = b.RaftAddr
		}
	}
	err := n.nh.StartOnDiskReplica(members, join, n.pf, n.raftConfig(h.ShardID))
	if errors.Is(err, dragonboat.ErrShardAlreadyExist) {
		return nil
	}
	if err == nil {
		n.log.Info("partition shard started", "topic", h.Topic, "partition", h.Partition, "shard", h.ShardID)
	}
	return err
}

// stopPartition stops a shard for good and deletes its data: its topic was
// deleted, or a reassignment moved it away from this node (shard ids are
// never reused and a removed replica id can never rejoin its shard, so the
// data can never be needed).
func (n *Node) stopPartition(id uint64) error {
	n.isr.untrack(id)
	rep, open := n.reg.Get(id)
	if err := n.nh.StopShard(id); err != nil && !errors.Is(err, dragonboat.ErrShardNotFound) {
		return err
	}
	ctx, cancel := context.WithTimeout(n.ctx, removeDataTimeout)
	defer cancel()
	if open {
		// StopShard returns before the state machine has closed, and
		// SyncRemoveData does not wait for a close that dragonboat's
		// worker has not picked up yet: wait until the replica released
		// its files, or removing them would fail its closing checkpoint
		// (and dragonboat panics on a failed Close).
		select {
		case <-rep.Released():
		case <-ctx.Done():
			return fmt.Errorf("stop partition shard %d: waiting for its state machine to close: %w", id, ctx.Err())
		}
	}
	if err := n.nh.SyncRemoveData(ctx, id, n.cfg.NodeID); err != nil {
		return err
	}
	if err := partition.RemoveData(n.popts, id); err != nil {
		return err
	}
	n.setHosted(id, false)
	n.log.Info("partition shard removed", "shard", id)
	return nil
}
