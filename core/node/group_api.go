package node

import (
	"context"
	"fmt"

	"github.com/chronik-go/chronik/core/meta"
)

// Group coordinator support for the Kafka front end.
//
// Chronik places the coordinator of every consumer group on the leader of
// the controller shard: committed offsets live in the controller shard, so
// the coordinator's commits are local proposals to the leader and its
// offset reads come from a replica that has applied everything committed.

// CoordinatorTerm reports whether this node leads the controller shard and
// in which Raft term, once it is ready to serve as group coordinator in
// that term: like a partition leader (see "Leader readiness" in doc.go) it
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

// OffsetGroups lists, sorted, every group that has committed offsets, from
// the local controller replica (ListGroups merges it with the groups that
// have members).
func (n *Node) OffsetGroups() ([]string, error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	v, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryGroups{})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
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

// TransferCoordinator asks the controller shard's leader, which must be
// this node, to hand leadership (and with it every group's coordinator)
// to node target. It returns once the request is queued; the move shows
// in CoordinatorTerm. Operators' tool and tests' coordinator move.
func (n *Node) TransferCoordinator(target uint64) error {
	if n.closed.Load() {
		return ErrClosed
	}
	return n.nh.RequestLeaderTransfer(meta.ControllerShardID, target)
}

// BeginGroupTenure fences the group membership records at term (the
// controller term in which this node now coordinates, from
// CoordinatorTerm) and returns them as this replica holds them after the
// fence: a record written by an earlier coordinator is either among them
// or, arriving later, refused (meta.FenceGroupStates). An error (lost
// leadership, timeout, a later fence) means this node must not coordinate
// in term.
func (n *Node) BeginGroupTenure(ctx context.Context, term uint64) ([]meta.GroupState, error) {
	r, err := n.proposeMeta(ctx, meta.FenceGroupStates{Term: term})
	if err == nil && r.Code != 0 {
		err = r.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("node: fence group records at term %d: %w", term, err)
	}
	v, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryGroupStates{})
	if err != nil {
		return nil, err
	}
	return v.(meta.GroupStates).Groups, nil
}

// PutGroupState proposes one group membership record (written by the
// coordinator's tenure rec.Term; see meta.PutGroupState).
func (n *Node) PutGroupState(ctx context.Context, rec meta.PutGroupState) error {
	r, err := n.proposeMeta(ctx, rec)
	if err == nil && r.Code != 0 {
		err = r.Err()
	}
	return err
}

// GroupStates returns the group membership records as this node's
// controller replica holds them (operators' view; tests wait on it).
func (n *Node) GroupStates() (meta.GroupStates, error) {
	if n.closed.Load() {
		return meta.GroupStates{}, ErrClosed
	}
	v, err := n.nh.StaleRead(meta.ControllerShardID, meta.QueryGroupStates{})
	if err != nil {
		return meta.GroupStates{}, err
	}
	return v.(meta.GroupStates), nil
}
