package node

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/chronik-go/chronik/core/meta"
)

// Group coordinator support for the Kafka front end.
//
// The coordinator of a consumer group is the leader of the group's shard
// (groupshards.go): its committed offsets and membership records live
// there, so the coordinator's commits are local proposals to the leader
// and its offset reads come from a replica that has applied everything
// committed (GroupShardTerm's barrier).

// CoordinatorTerm reports whether this node leads the controller shard and
// in which Raft term, once it is ready to serve as transaction
// coordinator in that term: like a partition leader (see "Leader readiness" in doc.go) it
// first completes a linearizable read on the controller shard, so that its
// local replica covers every offset committed before the term. The
// barrier runs once per term (cached); afterwards the call is two map
// lookups. ok is false while this node is not the leader, is closed, or
// the barrier fails (ctx's deadline, lost leadership).
func (n *Node) CoordinatorTerm(ctx context.Context) (term uint64, ok bool) {
	if n.closed.Load() {
		return 0, false
	}
	term, ok = n.leaderTerm(meta.ControllerShardID)
	if !ok {
		return 0, false
	}
	n.mu.Lock()
	done := n.ready[meta.ControllerShardID] >= term
	n.mu.Unlock()
	if done {
		return term, true
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	if _, err := n.nh.SyncRead(ctx, meta.ControllerShardID, meta.QueryView{}); err != nil {
		return 0, false
	}
	if t, still := n.leaderTerm(meta.ControllerShardID); !still || t != term {
		return 0, false
	}
	n.mu.Lock()
	if n.ready[meta.ControllerShardID] < term {
		n.ready[meta.ControllerShardID] = term
	}
	n.mu.Unlock()
	return term, true
}

// OffsetGroups lists, sorted, every group with committed offsets or a
// membership record in the group shards this node holds a replica of
// (before group shards exist: those with offsets in the controller).
func (n *Node) OffsetGroups() ([]string, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	v := n.view()
	if len(v.GroupShards) == 0 {
		g, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryGroups{})
		if err != nil {
			return nil, err
		}
		return g.([]string), nil
	}
	var out []string
	for _, g := range v.GroupShards {
		if !n.isHosted(g.ShardID) {
			continue
		}
		gs, err := n.ShardGroups(g.Index)
		if err != nil {
			return nil, err
		}
		out = append(out, gs...)
	}
	slices.Sort(out)
	return out, nil
}

// GroupTopic is one topic as the consumer-protocol (KIP-848) assignors
// see it.
type GroupTopic struct {
	Name       string
	ID         meta.TopicID
	Partitions int32
}

// GroupTopics returns the topology version of this node's controller view
// and, when it differs from since, every topic sorted by name (nil
// otherwise: the caller keeps what it has). Cheap when nothing changed.
func (n *Node) GroupTopics(since uint64) (uint64, []GroupTopic) {
	v := n.view()
	if v.TopologyVersion == since {
		return since, nil
	}
	out := make([]GroupTopic, 0, len(v.Topics))
	for _, t := range v.Topics {
		out = append(out, GroupTopic{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions))})
	}
	return v.TopologyVersion, out
}

// TransferCoordinator asks the leader of group's shard, which must be
// this node, to hand leadership (and with it the coordinator of the
// shard's groups) to node target. It returns once the request is queued.
// Operators' tool and tests' coordinator move.
func (n *Node) TransferCoordinator(group string, target uint64) error {
	idx, ok := n.GroupShardOf(group)
	if !ok {
		return ErrNoGroupShards
	}
	return n.TransferGroupShard(idx, target)
}

// BeginGroupTenure fences the membership records of group shard index at
// term (the shard's Raft term in which this node now coordinates its
// groups, from GroupShardTerm) and returns them as this replica holds
// them after the fence: a record written by an earlier coordinator is
// either among them or, arriving later, refused (meta.FenceGroupStates).
// An error (lost leadership, timeout, a later fence) means this node must
// not coordinate the shard's groups in term.
func (n *Node) BeginGroupTenure(ctx context.Context, index int32, term uint64) ([]meta.GroupState, error) {
	g, ok := n.groupShardAt(index)
	if !ok {
		return nil, ErrNoGroupShards
	}
	if err := n.proposeGroupOK(ctx, g.ShardID, meta.FenceGroupStates{Term: term}); err != nil {
		return nil, fmt.Errorf("node: fence group records of shard %d at term %d: %w", index, term, err)
	}
	v, err := n.nh.StaleRead(g.ShardID, meta.QueryGroupStates{})
	if err != nil {
		return nil, err
	}
	return v.(meta.GroupStates).Groups, nil
}

// PutGroupState proposes one group membership record to the group's
// shard (written by the coordinator's tenure rec.Term; see
// meta.PutGroupState).
func (n *Node) PutGroupState(ctx context.Context, rec meta.PutGroupState) error {
	g, ok := n.view().GroupShardFor(rec.Group)
	if !ok {
		return ErrNoGroupShards
	}
	return n.proposeGroupOK(ctx, g.ShardID, rec)
}

// GroupStates returns the group membership records as this node's
// replicas of the group shards hold them, sorted by group (Fence: the
// highest of the shards'); operators' view, tests wait on it.
func (n *Node) GroupStates() (meta.GroupStates, error) {
	if n.closed.Load() {
		return meta.GroupStates{}, ErrClosed
	}
	var out meta.GroupStates
	for _, g := range n.view().GroupShards {
		if !n.isHosted(g.ShardID) {
			continue
		}
		v, err := n.nh.StaleRead(g.ShardID, meta.QueryGroupStates{})
		if err != nil {
			return meta.GroupStates{}, err
		}
		st := v.(meta.GroupStates)
		out.Fence = max(out.Fence, st.Fence)
		out.Groups = append(out.Groups, st.Groups...)
	}
	slices.SortFunc(out.Groups, func(a, b meta.GroupState) int { return strings.Compare(a.Group, b.Group) })
	return out, nil
}
