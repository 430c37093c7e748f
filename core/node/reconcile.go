package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/lni/dragonboat/v4"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"github.com/pingcap/failpoint"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
)

// reconcileLoop runs the partition shards the controller places on this
// node and stops (and deletes) those it no longer does. It wakes on every
// controller change, and retries after failures on a timer.
func (n *Node) reconcileLoop() {
	n.awaitControllerReplay()
	swept := false
	n.watchView(reconcileRetryEvery, func(v *meta.View) bool {
		ok := n.reconcile(v)
		if !swept {
			swept = n.sweepDeleted(v)
		}
		return !ok || !swept
	})
}

// sweepDeleted removes, once per start, what this node still holds of
// partitions of deleted topics: the Raft data (dragonboat's node info,
// the WAL's entries) and the partition directory of every shard id that
// v knows was allocated (below v.NextShardID) but that no topic of v
// lists and that does not run here. Shard ids are never reused, so such
// a shard is never needed again, and a view that is behind knows fewer
// ids, never one still live. Covers a topic deleted while this node was
// down, and one deleted just before a stop whose replicas the reconciler
// had not removed yet. It reports whether everything succeeded.
func (n *Node) sweepDeleted(v *meta.View) bool {
	listed := map[uint64]bool{}
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			listed[p.ShardID] = true
		}
	}
	deleted := func(id uint64) bool {
		return id >= meta.FirstPartitionShardID && id < v.NextShardID && !listed[id] && !n.isHosted(id)
	}
	found := map[uint64]bool{}
	if info := n.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{}); info != nil {
		for _, ni := range info.LogInfo {
			if ni.ReplicaID == n.cfg.NodeID && deleted(ni.ShardID) {
				found[ni.ShardID] = true
			}
		}
	}
	names, err := n.cfg.FS.List(n.popts.Dir)
	if err != nil {
		n.log.Warn("sweep deleted partitions: list the partition directory", "dir", n.popts.Dir, "err", err)
		return false
	}
	for _, name := range names {
		if id, err := strconv.ParseUint(name, 10, 64); err == nil && deleted(id) {
			found[id] = true
		}
	}
	ok := true
	for _, id := range sortedIDs(found) {
		if err := n.stopPartition(id); err != nil {
			n.log.Warn("sweep deleted partitions: remove", "shard", id, "err", err)
			ok = false
			continue
		}
		n.log.Info("removed the data of a partition of a deleted topic", "shard", id)
	}
	return ok
}

// awaitControllerReplay returns once the local controller replica has
// applied the last command its Raft log held committed when this was
// called (a restart applies those from the log, no leader needed), or
// after controllerCatchUpMax. Without it the first reconcile acts on the
// view of the controller's snapshot: a restart soon after deleting a
// 1,000-partition topic started 220 of its replicas again, then stopped
// and removed them.
func (n *Node) awaitControllerReplay() {
	lr, err := n.nh.GetLogReader(meta.ControllerShardID)
	if err != nil {
		return
	}
	st, _ := lr.NodeState()
	target := n.lastCommand(lr, st.Commit)
	ctx, cancel := context.WithTimeout(n.ctx, controllerCatchUpMax)
	defer cancel()
	for n.meta.Load().Version() < target {
		if n.cfg.Clock.Sleep(ctx, controllerReplayPoll) != nil {
			n.log.Info("reconcile: starting before the controller replica applied its log", "applied", n.meta.Load().Version(), "committed_command", target)
			return
		}
	}
}

// controllerReplayPoll is awaitControllerReplay's pause between looks.
const controllerReplayPoll = 5 * time.Millisecond

// lastCommand returns the index of the last entry at or below commit that
// reaches the controller's state machine (a command: dragonboat applies
// no-op and membership entries without it, so the applied version never
// reaches those), or the version already applied if none is after it.
func (n *Node) lastCommand(lr dragonboat.ReadonlyLogReader, commit uint64) uint64 {
	applied := n.meta.Load().Version()
	first, _ := lr.GetRange()
	low := max(applied+1, first)
	if commit < low {
		return applied
	}
	ents, err := lr.Entries(low, commit+1, math.MaxUint64)
	if err != nil {
		return applied
	}
	for i := len(ents) - 1; i >= 0; i-- {
		if e := ents[i]; (e.Type == pb.ApplicationEntry || e.Type == pb.EncodedEntry) && len(e.Cmd) > 0 {
			return e.Index
		}
	}
	return applied
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
	failpoint.Inject("stopPartitionError", func() { failpoint.Return(errFailpoint) })
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
