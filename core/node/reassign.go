package node

import (
	"context"
	"slices"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
)

// Partition moves (reassignment). See doc.go, "Partition moves", for the
// protocol and its states.

// Bounds of the reassignment driver.
const (
	reassignPollEvery   = 200 * time.Millisecond // while a move involving this node is in progress
	reassignStepTimeout = 3 * time.Second        // one membership read/change/proposal
)

// MovePartition records replicas as the target replica set of
// topic/partition in the controller; the partition's leader then moves
// the Raft group there (asynchronously: watch PartitionReassignments or
// Metadata). replicas nil or empty cancels a move in progress. Kafka
// codes: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT (a
// duplicate, an unregistered broker, a node that left the partition
// before), INVALID_REPLICATION_FACTOR, NO_REASSIGNMENT_IN_PROGRESS (cancel
// without a move), or a retriable code when the controller is unreachable.
func (n *Node) MovePartition(ctx context.Context, topic string, part int32, replicas []int32) TopicResult {
	p, ok := partitionOf(n.view(), topic, part)
	if !ok {
		return TopicResult{Name: topic, ErrorCode: kerr.UnknownTopicOrPartition.Code, Message: "unknown topic or partition"}
	}
	if len(replicas) > meta.ReplicationFactorMax {
		return TopicResult{Name: topic, ErrorCode: kerr.InvalidReplicationFactor.Code, Message: "too many replicas"}
	}
	return n.topicResult(ctx, topic, meta.ReassignPartition{ShardID: p.ShardID, Target: slices.Clone(replicas)})
}

// Reassignment is one partition move in progress.
type Reassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32 // every replica now: Replicas then Adding
	Adding    []int32
	Removing  []int32
}

// PartitionReassignments lists the moves in progress (local view), by
// topic name and partition.
func (n *Node) PartitionReassignments() []Reassignment {
	var out []Reassignment
	for _, t := range n.view().Topics {
		for _, p := range t.Partitions {
			if p.Target != nil {
				out = append(out, Reassignment{Topic: t.Name, Partition: p.Index, Replicas: p.AllReplicas(),
					Adding: p.Adding(), Removing: p.Removing()})
			}
		}
	}
	return out
}

// reassignLoop drives the moves of the partitions hosted here: it wakes on
// every controller change and, while a move involving this node is in
// progress, every reassignPollEvery (Raft membership changes do not show
// in the controller). Each step is bounded by reassignStepTimeout; nothing
// here runs on a dragonboat callback.
func (n *Node) reassignLoop() {
	n.watchView(reassignPollEvery, n.driveReassignments)
}

// driveReassignments takes at most one step per moving partition hosted
// here, in shard-id order, and reports whether any is moving.
func (n *Node) driveReassignments(v *meta.View) bool {
	active := false
	for _, h := range v.HostedPartitions(int32(n.cfg.NodeID)) {
		if h.Target == nil {
			continue
		}
		active = true // also while not started yet: hosting is no controller change
		if !n.isHosted(h.ShardID) {
			continue
		}
		p, ok := partitionOf(v, h.Topic, h.Partition)
		if !ok {
			continue
		}
		n.reportCaughtUp(p)
		if _, leads := n.leaderTerm(p.ShardID); leads {
			n.leaderStep(v, p)
		}
		if n.ctx.Err() != nil {
			break
		}
	}
	return active
}

// localVoters returns the voters of shardID as this replica last applied
// them (no network round trip), and whether the shard runs here.
func (n *Node) localVoters(shardID uint64) (map[uint64]string, bool) {
	for _, si := range n.nh.GetNodeHostInfo(dragonboat.NodeHostInfoOption{SkipLogInfo: true}).ShardInfoList {
		if si.ShardID == shardID {
			return si.Replicas, true
		}
	}
	return nil, false
}

// reportCaughtUp: a node being added, once a voter, reports to the
// controller that its replica caught up, which it knows when a
// linearizable read on it completes (ReadIndex: applied up to the
// leader's commit index as of the read).
func (n *Node) reportCaughtUp(p meta.Partition) {
	self := int32(n.cfg.NodeID)
	if !slices.Contains(p.Adding(), self) || slices.Contains(p.CaughtUp, self) {
		return
	}
	if voters, ok := n.localVoters(p.ShardID); !ok || voters[n.cfg.NodeID] == "" {
		n.log.Debug("reassignment: not a voter yet", "shard", p.ShardID, "voters", voters, "running", ok)
		return // not added yet
	}
	ctx, cancel := context.WithTimeout(n.ctx, reassignStepTimeout)
	defer cancel()
	if _, err := n.nh.SyncRead(ctx, p.ShardID, partition.QueryAppliedIndex); err != nil {
		n.log.Debug("reassignment: catch-up read", "shard", p.ShardID, "err", err)
		return
	}
	r, err := n.proposeMeta(ctx, meta.ReplicaCaughtUp{ShardID: p.ShardID, Node: self})
	if err != nil || r.Code != 0 {
		n.log.Debug("reassignment: caught-up report", "shard", p.ShardID, "err", err, "code", r.Code)
		return
	}
	n.log.Info("reassignment: replica caught up", "shard", p.ShardID)
}

// leaderStep is one step of the move of p, taken by the shard's leader
// from the controller's target and the shard's Raft membership only, so
// that any leader (also a new one after a crash) resumes where the move
// stands:
//
//  1. an added voter has not caught up yet: wait;
//  2. more voters than the target, or every target node is a voter: remove
//     one voter outside the target (others before this node; this node
//     hands leadership to a caught-up target voter first);
//  3. a target node is not a voter: add it (SyncRequestAddReplica);
//  4. voters == target: CompleteReassignment.
func (n *Node) leaderStep(v *meta.View, p meta.Partition) {
	ctx, cancel := context.WithTimeout(n.ctx, reassignStepTimeout)
	defer cancel()
	m, err := n.nh.SyncGetShardMembership(ctx, p.ShardID)
	if err != nil {
		n.log.Debug("reassignment: membership", "shard", p.ShardID, "err", err)
		return
	}
	self := n.cfg.NodeID
	voters := sortedIDs(m.Nodes)
	var remove []uint64
	for _, id := range voters {
		if !slices.Contains(p.Target, int32(id)) && id != self {
			remove = append(remove, id)
		}
	}
	if !slices.Contains(p.Target, int32(self)) {
		remove = append(remove, self) // last: leadership moves only when it must
	}
	var missing []int32
	for _, id := range p.Target {
		if _, ok := m.Nodes[uint64(id)]; !ok {
			missing = append(missing, id)
		}
	}
	for _, id := range p.Adding() {
		if _, voter := m.Nodes[uint64(id)]; voter && !slices.Contains(p.CaughtUp, id) {
			return // 1: catching up
		}
	}
	switch {
	case len(remove) > 0 && (len(voters) > len(p.Target) || len(missing) == 0):
		if remove[0] == self {
			n.handOff(p, m)
			return
		}
		err = n.nh.SyncRequestDeleteReplica(ctx, p.ShardID, remove[0], m.ConfigChangeID)
		n.logStep("removed replica", p, remove[0], err)
	case len(missing) > 0:
		id := missing[0]
		b, ok := v.Broker(id)
		if _, gone := m.Removed[uint64(id)]; !ok || gone {
			n.log.Warn("reassignment: target node cannot join", "shard", p.ShardID, "node", id, "registered", ok, "removed", gone)
			return
		}
		err = n.nh.SyncRequestAddReplica(ctx, p.ShardID, uint64(id), b.RaftAddr, m.ConfigChangeID)
		n.logStep("added replica", p, uint64(id), err)
	default:
		r, err := n.proposeMeta(ctx, meta.CompleteReassignment{ShardID: p.ShardID, Target: p.Target})
		if err == nil && r.Code != 0 {
			n.log.Warn("reassignment: completion rejected", "shard", p.ShardID, "code", r.Code, "msg", r.Message)
			return
		}
		n.logStep("completed", p, 0, err)
	}
}

// handOff asks a target voter that has caught up (an old replica, or an
// added one that reported) to take over the shard before this node, the
// leader, is removed.
func (n *Node) handOff(p meta.Partition, m *dragonboat.Membership) {
	for _, id := range p.Target {
		_, voter := m.Nodes[uint64(id)]
		if voter && (slices.Contains(p.Replicas, id) || slices.Contains(p.CaughtUp, id)) {
			err := n.nh.RequestLeaderTransfer(p.ShardID, uint64(id))
			n.logStep("leadership transfer requested", p, uint64(id), err)
			return
		}
	}
}

func (n *Node) logStep(what string, p meta.Partition, id uint64, err error) {
	if err != nil {
		n.log.Debug("reassignment: "+what, "shard", p.ShardID, "replica", id, "target", p.Target, "err", err)
		return
	}
	n.log.Info("reassignment: "+what, "shard", p.ShardID, "replica", id, "target", p.Target)
}

// sweepRetired deletes the data of shards this node left in a move while
// it was down (the running case is the reconciler's drop), in shard-id
// order. It reports whether everything succeeded.
func (n *Node) sweepRetired(v *meta.View) bool {
	self := int32(n.cfg.NodeID)
	var shards []uint64
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			if slices.Contains(p.Retired, self) && !n.isHosted(p.ShardID) && n.nh.HasNodeInfo(p.ShardID, n.cfg.NodeID) {
				shards = append(shards, p.ShardID)
			}
		}
	}
	slices.Sort(shards)
	ok := true
	for _, id := range shards {
		if err := n.stopPartition(id); err != nil {
			n.log.Warn("remove retired partition shard", "shard", id, "err", err)
			ok = false
		}
	}
	return ok
}
