package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lni/dragonboat/v4"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

// Group coordinator shards (core/meta/groupshard.go).
//
// The coordinator of a group is the leader of its group shard,
// meta.GroupShardIndex(group, N). The shards are created once: the
// controller leader proposes meta.CreateGroupShards{Config.GroupShards}
// as soon as min(3, configured peers) brokers are registered, or at the
// first group request that finds none (Kafka creates __consumer_offsets
// at its first FindCoordinator too); the first one fixes N. The
// reconciler starts the replicas placed here, and their leaders report
// themselves like partition leaders (SetPartitionLeader), so every node
// names every shard's leader.
//
// Readiness (GroupShardTerm): as for a partition, a new leader first
// completes a linearizable read on its shard, so its replica covers every
// commit of earlier terms; at the shard's first ready leader it also
// imports the shard's groups from the controller's legacy state (a data
// dir of a release before group shards; meta.ImportOffsets, which never
// overwrites) and marks the import done, before it serves anything.

var (
	// ErrNoGroupShards: the group shards do not exist yet (retriable).
	ErrNoGroupShards = errors.New("node: group shards not created yet")
	// ErrGroupShardNotHosted: this node holds no replica of the group's
	// shard.
	ErrGroupShardNotHosted = errors.New("node: group shard not hosted here")
)

// groupImportBatchMax bounds the offsets one ImportOffsets carries.
const groupImportBatchMax = 1000

// ensureGroupShards proposes CreateGroupShards when this node leads the
// controller, none exist, and enough brokers registered (or a group
// request asked for them). It reports whether to look again later.
func (n *Node) ensureGroupShards(v *meta.View) (again bool) {
	if len(v.GroupShards) > 0 || n.cfg.legacyGroups {
		return false
	}
	if _, ok := n.leaderTerm(meta.ControllerShardID); !ok {
		return true
	}
	if len(v.Brokers) < min(3, len(n.cfg.Peers)) && !n.groupDemand.Load() || len(v.Brokers) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	defer cancel()
	r, err := n.proposeMeta(ctx, meta.CreateGroupShards{Count: n.cfg.GroupShards})
	if err != nil || r.Code != 0 {
		n.log.Warn("create group shards", "count", n.cfg.GroupShards, "err", err, "code", r.Code)
		return true
	}
	n.log.Info("group shards created", "count", n.cfg.GroupShards)
	return false
}

// reconcileGroupShards starts the group shard replicas placed here; their
// ids go into want. It reports whether everything succeeded.
func (n *Node) reconcileGroupShards(v *meta.View, want map[uint64]bool) bool {
	ok := true
	for _, g := range v.GroupShards {
		if !slices.Contains(g.Replicas, int32(n.cfg.NodeID)) {
			continue
		}
		want[g.ShardID] = true
		if n.isHosted(g.ShardID) {
			continue
		}
		if err := n.startGroupShard(v, g); err != nil {
			n.log.Warn("start group shard", "index", g.Index, "shard", g.ShardID, "err", err)
			ok = false
			continue
		}
		n.setHosted(g.ShardID, true)
	}
	return ok
}

func (n *Node) startGroupShard(v *meta.View, g meta.GroupShard) error {
	var members map[uint64]dragonboat.Target
	if !n.nh.HasNodeInfo(g.ShardID, n.cfg.NodeID) {
		members = map[uint64]dragonboat.Target{}
		for _, r := range g.Replicas {
			b, ok := v.Broker(r)
			if !ok {
				return fmt.Errorf("replica %d is not a registered broker", r)
			}
			members[uint64(r)] = b.RaftAddr
		}
	}
	rc := n.raftConfig(g.ShardID)
	rc.SnapshotEntries, rc.CompactionOverhead = 1000, 500
	if g.Replicas[0] == int32(n.cfg.NodeID) {
		rc.ElectionRTT = preferredElectionRTT(rc.ElectionRTT, rc.HeartbeatRTT)
	}
	factory := func(shardID, replicaID uint64) sm.IStateMachine {
		return meta.NewGroupStateMachine(n.log.With("shard", shardID))
	}
	err := n.nh.StartReplica(members, false, factory, rc)
	if errors.Is(err, dragonboat.ErrShardAlreadyExist) {
		return nil
	}
	if err == nil {
		n.log.Info("group shard started", "index", g.Index, "shard", g.ShardID)
	}
	return err
}

// preferredElectionRTT is the election timeout of a group shard's first
// replica: half the others' (their randomized timeouts are in [E, 2E), its
// own in [E/2, E)), so that while it is up it wins the elections without
// a leader, and the shards' leaders, with them the groups' coordinators,
// spread as the placement spreads first replicas (elections alone may put
// every shard on one node; a leadership transfer after the fact loses
// proposals in flight). It cannot unseat a live leader: followers that
// hear from the leader refuse votes (CheckQuorum), and PreVote keeps its
// term. At least 2*heartbeat+1, dragonboat's minimum.
func preferredElectionRTT(election, heartbeat uint64) uint64 {
	return max(election/2, 2*heartbeat+1)
}

// GroupShardCount is N, 0 while the group shards do not exist.
func (n *Node) GroupShardCount() int { return len(n.view().GroupShards) }

// GroupShardOf returns group's shard index, false while no shard exists
// (a request for the group then asks for their creation).
func (n *Node) GroupShardOf(group string) (int32, bool) {
	g, ok := n.view().GroupShardFor(group)
	if !ok {
		n.groupDemand.Store(true)
		return 0, false
	}
	return g.Index, true
}

// GroupShardOfIndex returns the shard at index.
func (n *Node) groupShardAt(index int32) (meta.GroupShard, bool) {
	v := n.view()
	if index < 0 || int(index) >= len(v.GroupShards) {
		n.groupDemand.Store(true)
		return meta.GroupShard{}, false
	}
	return v.GroupShards[index], true
}

// GroupShardLeader is the node id that leads group shard index as the
// controller view shows it (-1: none known).
func (n *Node) GroupShardLeader(index int32) int32 {
	g, ok := n.groupShardAt(index)
	if !ok || g.LeaderEpoch == 0 {
		return -1
	}
	return g.Leader
}

// GroupShardTerm reports whether this node leads group shard index, and
// in which Raft term, once it is ready to coordinate the shard's groups in
// that term (the read barrier and, at the shard's first ready leader, the
// legacy import: see the top of this file). Cached per term.
func (n *Node) GroupShardTerm(ctx context.Context, index int32) (uint64, bool) {
	if n.closed.Load() {
		return 0, false
	}
	g, ok := n.groupShardAt(index)
	if !ok {
		return 0, false
	}
	term, ok := n.leaderTerm(g.ShardID)
	if !ok {
		return 0, false
	}
	n.mu.Lock()
	done := n.ready[g.ShardID] >= term
	n.mu.Unlock()
	if done {
		return term, true
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	v, err := n.nh.SyncRead(ctx, g.ShardID, meta.QueryImported{})
	if err != nil {
		return 0, false
	}
	if imported, _ := v.(bool); !imported {
		if err := n.importLegacyGroups(ctx, g); err != nil {
			n.log.Warn("group shard: legacy import", "index", g.Index, "err", err)
			return 0, false
		}
	}
	if t, still := n.leaderTerm(g.ShardID); !still || t != term {
		return 0, false
	}
	n.mu.Lock()
	if n.ready[g.ShardID] < term {
		n.ready[g.ShardID] = term
	}
	n.mu.Unlock()
	return term, true
}

// importLegacyGroups copies shard g's groups (offsets and membership
// records) from the local controller replica, which has applied
// everything the controller ever held for groups: legacy group commands
// are refused from CreateGroupShards on, and this replica applied that.
func (n *Node) importLegacyGroups(ctx context.Context, g meta.GroupShard) error {
	count := len(n.view().GroupShards)
	mine := func(group string) bool { return meta.GroupShardIndex(group, count) == g.Index }
	v, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryGroups{})
	if err != nil {
		return err
	}
	imported := 0
	for _, group := range v.([]string) {
		if !mine(group) {
			continue
		}
		o, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryGroupOffsets{Group: group})
		if err != nil {
			return err
		}
		offs := o.([]meta.GroupOffset)
		for len(offs) > 0 {
			k := min(len(offs), groupImportBatchMax)
			if err := n.proposeGroupOK(ctx, g.ShardID, meta.ImportOffsets{Group: group, Offsets: offs[:k]}); err != nil {
				return err
			}
			offs = offs[k:]
		}
		imported++
	}
	s, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryGroupStates{})
	if err != nil {
		return err
	}
	for _, st := range s.(meta.GroupStates).Groups {
		if !mine(st.Group) {
			continue
		}
		if err := n.proposeGroupOK(ctx, g.ShardID, meta.ImportGroupState{State: st}); err != nil {
			return err
		}
	}
	if err := n.proposeGroupOK(ctx, g.ShardID, meta.FinishImport{}); err != nil {
		return err
	}
	n.log.Info("group shard: legacy groups imported", "index", g.Index, "groupsWithOffsets", imported)
	return nil
}

// proposeGroup proposes cmd on group shard shardID (forwarded to its
// leader by dragonboat), retrying (bounded) only while dragonboat says it
// was not proposed at all.
func (n *Node) proposeGroup(ctx context.Context, shardID uint64, cmd meta.Command) (meta.Result, error) {
	if n.closed.Load() {
		return meta.Result{}, ErrClosed
	}
	if !n.isHosted(shardID) {
		return meta.Result{}, ErrGroupShardNotHosted
	}
	return n.proposeMetaTo(ctx, shardID, cmd)
}

func (n *Node) proposeGroupOK(ctx context.Context, shardID uint64, cmd meta.Command) error {
	r, err := n.proposeGroup(ctx, shardID, cmd)
	if err == nil && r.Code != 0 {
		err = r.Err()
	}
	return err
}

// awaitGroupShard returns group's shard, waiting (bounded by ctx) for the
// group shards to be created.
func (n *Node) awaitGroupShard(ctx context.Context, group string) (meta.GroupShard, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	for {
		ch := n.meta.Load().Changed()
		if g, ok := n.view().GroupShardFor(group); ok {
			n.awaitHosted(ctx, g)
			return g, nil
		}
		n.groupDemand.Store(true)
		select {
		case <-ch:
		case <-ctx.Done():
			return meta.GroupShard{}, ErrNoGroupShards
		case <-n.ctx.Done():
			return meta.GroupShard{}, ErrClosed
		}
	}
}

// awaitHosted waits, bounded by ctx, while g names this node among its
// replicas but the reconciler has not started that replica yet (just
// after the shards were created, or after a restart): a proposal needs
// the local replica, and without the wait it would answer NOT_COORDINATOR
// for a shard this node is about to host. The reconciler's start is not
// signalled, so this polls the node's clock every 10 ms.
func (n *Node) awaitHosted(ctx context.Context, g meta.GroupShard) {
	if !slices.Contains(g.Replicas, int32(n.cfg.NodeID)) {
		return
	}
	for !n.isHosted(g.ShardID) && !n.closed.Load() {
		if n.cfg.Clock.Sleep(ctx, 10*time.Millisecond) != nil {
			return
		}
	}
}

// groupCode maps a group shard proposal's Go error to a Kafka code.
func groupCode(ctx context.Context, err error) int16 {
	switch {
	case errors.Is(err, ErrNoGroupShards):
		return kerr.CoordinatorNotAvailable.Code
	case errors.Is(err, ErrGroupShardNotHosted), errors.Is(err, ErrClosed):
		return kerr.NotCoordinator.Code
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, dragonboat.ErrTimeout):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.NotCoordinator.Code
	}
}

// groupRead reads q from the local replica of group's shard; before the
// group shards exist, from the controller's legacy state.
func (n *Node) groupRead(group string, q any) (any, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	g, ok := n.view().GroupShardFor(group)
	if !ok {
		return n.nh.StaleRead(meta.ControllerShardID, q)
	}
	if !n.isHosted(g.ShardID) {
		return nil, ErrGroupShardNotHosted
	}
	return n.nh.StaleRead(g.ShardID, q)
}

// liveOffsets drops offsets of deleted topics and partitions (group
// shards hold no topics, see meta/groupshard.go).
func (n *Node) liveOffsets(offs []meta.GroupOffset) []meta.GroupOffset {
	v := n.view()
	var out []meta.GroupOffset
	for _, o := range offs {
		if _, ok := partitionOf(v, o.Topic, o.Partition); ok {
			out = append(out, o)
		}
	}
	return out
}

// checkCommitTopics answers UNKNOWN_TOPIC_OR_PARTITION for c's partitions
// missing from the view (nil: all exist): the shard cannot check. A
// partition missing from the local controller replica, which may lag
// (the topic was just created through another node), is looked for again
// after a linearizable read.
func (n *Node) checkCommitTopics(ctx context.Context, c meta.CommitOffsets) []meta.PartitionCode {
	bad := n.missingPartitions(c)
	if bad == nil {
		return nil
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	if _, err := n.nh.SyncRead(ctx, meta.ControllerShardID, meta.QueryView{}); err != nil {
		return bad
	}
	return n.missingPartitions(c)
}

func (n *Node) missingPartitions(c meta.CommitOffsets) []meta.PartitionCode {
	v := n.view()
	var out []meta.PartitionCode
	bad := false
	for _, o := range c.Offsets {
		pc := meta.PartitionCode{Topic: o.Topic, Partition: o.Partition}
		if _, ok := partitionOf(v, o.Topic, o.Partition); !ok {
			pc.Code, bad = kerr.UnknownTopicOrPartition.Code, true
		}
		out = append(out, pc)
	}
	if !bad {
		return nil
	}
	return out
}

// TransferGroupShard asks group shard index's leader, which must be this
// node, to hand leadership (and with it its groups' coordinator) to node
// target. Operators' tool and tests' coordinator move.
func (n *Node) TransferGroupShard(index int32, target uint64) error {
	if n.closed.Load() {
		return ErrClosed
	}
	g, ok := n.groupShardAt(index)
	if !ok {
		return ErrNoGroupShards
	}
	return n.nh.RequestLeaderTransfer(g.ShardID, target)
}

// LedGroupShards lists the indexes of the group shards this node leads
// (not necessarily ready), ascending.
func (n *Node) LedGroupShards() []int32 {
	var out []int32
	for _, g := range n.view().GroupShards {
		if _, ok := n.leaderTerm(g.ShardID); ok {
			out = append(out, g.Index)
		}
	}
	return out
}

// ShardGroups lists, sorted, the groups with committed offsets or a
// membership record in group shard index, from the local replica.
func (n *Node) ShardGroups(index int32) ([]string, error) {
	g, ok := n.groupShardAt(index)
	if !ok {
		return nil, ErrNoGroupShards
	}
	if !n.isHosted(g.ShardID) {
		return nil, ErrGroupShardNotHosted
	}
	v, err := n.nh.StaleRead(g.ShardID, meta.QueryGroups{})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// groupTopicsLoop deletes, in the group shards led here, the offsets of
// topics the controller deleted (the controller used to delete them with
// the topic, in the same apply; the shards hold no topics). It runs when
// the topology or the set of shards led here changed.
func (n *Node) groupTopicsLoop() {
	var topo uint64
	var led []int32
	n.watchView(reconcileRetryEvery, func(v *meta.View) bool {
		now := n.LedGroupShards()
		if v.TopologyVersion == topo && slices.Equal(now, led) {
			return false
		}
		if !n.cleanGroupTopics(v, now) {
			return true
		}
		topo, led = v.TopologyVersion, now
		return false
	})
}

// cleanGroupTopics proposes meta.DeleteTopicOffsets to each shard in led
// for each topic it holds offsets of that the controller, read
// linearizably (this replica may lag a topic just created elsewhere),
// does not have. It reports whether every step succeeded.
func (n *Node) cleanGroupTopics(v *meta.View, led []int32) bool {
	if len(led) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	defer cancel()
	var synced bool
	for _, idx := range led {
		g := v.GroupShards[idx]
		t, err := n.nh.StaleRead(g.ShardID, meta.QueryOffsetTopics{})
		if err != nil {
			return false
		}
		for _, topic := range t.([]string) {
			if n.view().Topic(topic) != nil {
				continue
			}
			if !synced {
				if _, err := n.nh.SyncRead(ctx, meta.ControllerShardID, meta.QueryView{}); err != nil {
					return false
				}
				synced = true
				if n.view().Topic(topic) != nil {
					continue
				}
			}
			if err := n.proposeGroupOK(ctx, g.ShardID, meta.DeleteTopicOffsets{Topic: topic}); err != nil {
				n.log.Debug("group shard: deleted topic's offsets", "shard", g.Index, "topic", topic, "err", err)
				return false
			}
			n.log.Info("group shard: offsets of a deleted topic deleted", "shard", g.Index, "topic", topic)
		}
	}
	return true
}
