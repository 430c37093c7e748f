package meta

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Partition reassignment (moving a partition's replicas between nodes).
//
// The controller records the target; the partition shard's Raft leader
// drives the membership change one replica at a time (core/node), and the
// move ends with CompleteReassignment once the shard's Raft voters are
// exactly the target. Three commands:
//
//   - ReassignPartition{ShardID, Target}: records Target on the partition.
//     An empty Target cancels a move in progress (the target becomes the
//     current Replicas, so the driver undoes what it added). A Target equal
//     to Replicas with no move in progress is a successful no-op. A new
//     Target replaces one in progress; nodes of the old target that are in
//     neither the new target nor Replicas may already have joined the Raft
//     group, so they are retired (see below).
//   - ReplicaCaughtUp{ShardID, Node}: a node of Target that is not in
//     Replicas reports that its replica caught up with the leader (a
//     linearizable read completed on it). The driver removes old replicas
//     only after every added one has caught up.
//   - CompleteReassignment{ShardID, Target}: the driver saw Raft voters ==
//     Target. Replicas = Target (Target[0] becomes the preferred leader),
//     old replicas that left are retired, Target and CaughtUp are cleared.
//     A reported leader outside the new replicas becomes -1 (unknown) with
//     its epoch kept, so epochs never decrease.
//
// Retired: dragonboat never lets a replica id rejoin a shard it was removed
// from, and replica id = node id, so a node that left a partition can never
// be in its target again (INVALID_REPLICA_ASSIGNMENT).
//
// While a move is in progress, the partition is hosted on Replicas ∪
// Target (AllReplicas) and a leader from that set is accepted.
type ReassignPartition struct {
	ShardID uint64
	Target  []int32
}

// ReplicaCaughtUp: see ReassignPartition.
type ReplicaCaughtUp struct {
	ShardID uint64
	Node    int32
}

// CompleteReassignment: see ReassignPartition.
type CompleteReassignment struct {
	ShardID uint64
	Target  []int32
}

// RetiredReplicasMax bounds a partition's retired-node list: a
// reassignment that would retire more is rejected.
const RetiredReplicasMax = 256

func (ReassignPartition) Kind() Kind    { return KindReassignPartition }
func (ReplicaCaughtUp) Kind() Kind      { return KindReplicaCaughtUp }
func (CompleteReassignment) Kind() Kind { return KindCompleteReassignment }

func (c ReassignPartition) encode(e *enc) {
	e.uvar(c.ShardID)
	encodeIDs(e, c.Target)
}

func (c ReplicaCaughtUp) encode(e *enc) {
	e.uvar(c.ShardID)
	e.svar(int64(c.Node))
}

func (c CompleteReassignment) encode(e *enc) {
	e.uvar(c.ShardID)
	encodeIDs(e, c.Target)
}

func encodeIDs(e *enc, ids []int32) {
	e.uvar(uint64(len(ids)))
	for _, id := range ids {
		e.svar(int64(id))
	}
}

// decodeIDs reads a list of at most maxLen node ids; an empty list is nil.
func decodeIDs(d *dec, maxLen int) []int32 {
	n := d.count(maxLen)
	var out []int32
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.i32())
	}
	return out
}

func decodeReassignBody(d *dec, k Kind) Command {
	switch k {
	case KindReassignPartition:
		return ReassignPartition{ShardID: d.uvar(), Target: decodeIDs(d, ReplicationFactorMax)}
	case KindReplicaCaughtUp:
		return ReplicaCaughtUp{ShardID: d.uvar(), Node: d.i32()}
	default: // KindCompleteReassignment
		return CompleteReassignment{ShardID: d.uvar(), Target: decodeIDs(d, ReplicationFactorMax)}
	}
}

// AllReplicas returns Replicas followed by the target nodes not in
// Replicas: every node hosting the partition while a move is in progress
// (what Kafka's Metadata reports as replicas during a reassignment).
func (p Partition) AllReplicas() []int32 {
	if p.Target == nil {
		return p.Replicas
	}
	out := slices.Clone(p.Replicas)
	for _, t := range p.Target {
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// Adding returns the target nodes not in Replicas; Removing the replicas
// not in the target. Both nil without a move in progress.
func (p Partition) Adding() []int32   { return minus(p.Target, p.Replicas) }
func (p Partition) Removing() []int32 { return minusIf(p.Replicas, p.Target, p.Target != nil) }

func minus(a, b []int32) []int32 {
	var out []int32
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func minusIf(a, b []int32, on bool) []int32 {
	if !on {
		return nil
	}
	return minus(a, b)
}

// sortedUnion returns the sorted distinct union of a and b.
func sortedUnion(a, b []int32) []int32 {
	out := slices.Concat(a, b)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func (s *state) reassignPartition(index uint64, c ReassignPartition) (Result, bool) {
	t, i, ok := s.partitionByShard(c.ShardID)
	if !ok {
		return fail(kerr.UnknownTopicOrPartition.Code, "no partition with shard %d", c.ShardID), false
	}
	p := t.Partitions[i]
	target := c.Target
	if len(target) == 0 {
		if p.Target == nil {
			return fail(kerr.NoReassignmentInProgress.Code, "no reassignment of shard %d in progress", c.ShardID), false
		}
		target = p.Replicas // cancel: go back to where we started
	}
	if len(target) > ReplicationFactorMax {
		return fail(kerr.InvalidReplicationFactor.Code, "%d replicas beyond limit %d", len(target), ReplicationFactorMax), false
	}
	for j, id := range target {
		if slices.Contains(target[:j], id) {
			return fail(kerr.InvalidReplicaAssignment.Code, "replica %d appears twice in %v", id, target), false
		}
		if _, ok := s.brokers[id]; !ok && !slices.Contains(p.Replicas, id) {
			return fail(kerr.InvalidReplicaAssignment.Code, "replica %d is not a registered broker", id), false
		}
		if slices.Contains(p.Retired, id) {
			return fail(kerr.InvalidReplicaAssignment.Code, "node %d left shard %d before and cannot rejoin it", id, c.ShardID), false
		}
	}
	if p.Target == nil && slices.Equal(target, p.Replicas) {
		return Result{}, false
	}
	if slices.Equal(target, p.Target) {
		return Result{}, false
	}
	// Nodes of the old target that are in neither the new one nor
	// Replicas may have joined the Raft group already: retire them.
	retired := sortedUnion(p.Retired, minus(minus(p.Target, target), p.Replicas))
	if len(retired) > RetiredReplicasMax {
		return fail(kerr.InvalidReplicaAssignment.Code, "shard %d would retire %d nodes, limit %d", c.ShardID, len(retired), RetiredReplicasMax), false
	}
	nt := t.clone()
	np := &nt.Partitions[i]
	np.Target, np.Retired = slices.Clone(target), retired
	var caught []int32
	for _, id := range np.CaughtUp {
		if slices.Contains(np.Adding(), id) {
			caught = append(caught, id)
		}
	}
	np.CaughtUp = caught
	s.topics[nt.Name] = nt
	s.topologyChanged(index) // hosting changes
	return Result{}, true
}

func (s *state) replicaCaughtUp(c ReplicaCaughtUp) (Result, bool) {
	t, i, ok := s.partitionByShard(c.ShardID)
	if !ok {
		return fail(kerr.UnknownTopicOrPartition.Code, "no partition with shard %d", c.ShardID), false
	}
	p := t.Partitions[i]
	if p.Target == nil {
		return fail(kerr.NoReassignmentInProgress.Code, "no reassignment of shard %d in progress", c.ShardID), false
	}
	if !slices.Contains(p.Adding(), c.Node) {
		return fail(kerr.InvalidRequest.Code, "node %d is not being added to shard %d (target %v, replicas %v)",
			c.Node, c.ShardID, p.Target, p.Replicas), false
	}
	if slices.Contains(p.CaughtUp, c.Node) {
		return Result{}, false
	}
	nt := t.clone()
	nt.Partitions[i].CaughtUp = sortedUnion(p.CaughtUp, []int32{c.Node})
	s.topics[nt.Name] = nt
	s.cacheValid = false // the View must show it; hosting is unchanged
	return Result{}, true
}

func (s *state) completeReassignment(index uint64, c CompleteReassignment) (Result, bool) {
	t, i, ok := s.partitionByShard(c.ShardID)
	if !ok {
		return fail(kerr.UnknownTopicOrPartition.Code, "no partition with shard %d", c.ShardID), false
	}
	p := t.Partitions[i]
	if p.Target == nil {
		return fail(kerr.NoReassignmentInProgress.Code, "no reassignment of shard %d in progress", c.ShardID), false
	}
	if !slices.Equal(c.Target, p.Target) {
		return fail(kerr.InvalidRequest.Code, "shard %d: completion for target %v, recorded target %v", c.ShardID, c.Target, p.Target), false
	}
	nt := t.clone()
	np := &nt.Partitions[i]
	np.Retired = sortedUnion(p.Retired, p.Removing())
	np.Replicas, np.Target, np.CaughtUp = slices.Clone(p.Target), nil, nil
	if np.LeaderEpoch != 0 && !slices.Contains(np.Replicas, np.Leader) {
		np.Leader = -1
	}
	s.topics[nt.Name] = nt
	s.topologyChanged(index)
	return Result{}, true
}

// checkReassignment is checkInvariants' part for the reassignment fields.
func checkReassignment(p Partition) bool {
	distinct := func(ids []int32) bool {
		c := slices.Clone(ids)
		slices.Sort(c)
		return len(slices.Compact(c)) == len(ids)
	}
	if p.Target == nil && p.CaughtUp != nil {
		return false
	}
	if !distinct(p.Target) || !distinct(p.Replicas) || !slices.IsSorted(p.CaughtUp) || !distinct(p.CaughtUp) ||
		!slices.IsSorted(p.Retired) || !distinct(p.Retired) || len(p.Retired) > RetiredReplicasMax {
		return false
	}
	for _, id := range p.CaughtUp {
		if !slices.Contains(p.Adding(), id) {
			return false
		}
	}
	for _, id := range p.Retired {
		if slices.Contains(p.Replicas, id) || slices.Contains(p.Target, id) {
			return false
		}
	}
	return true
}

// encodeSnapshotReassignments writes the reassignment section of a
// version 3 snapshot: the count, then (shard id, target, caught up,
// retired) of every partition with any of them set, topics by name,
// partitions by index.
func (s *state) encodeSnapshotReassignments(e *enc) {
	var ps []Partition
	for _, name := range sortedKeys(s.topics) {
		for _, p := range s.topics[name].Partitions {
			if p.Target != nil || p.Retired != nil {
				ps = append(ps, p)
			}
		}
	}
	e.uvar(uint64(len(ps)))
	for _, p := range ps {
		e.uvar(p.ShardID)
		encodeIDs(e, p.Target)
		encodeIDs(e, p.CaughtUp)
		encodeIDs(e, p.Retired)
	}
}

// decodeSnapshotReassignments reads what encodeSnapshotReassignments wrote
// into the (not yet published) topics of s.
func decodeSnapshotReassignments(d *dec, s *state) {
	n := d.count(SnapshotBytesMax)
	for i := 0; i < n && d.err == nil; i++ {
		shard := d.uvar()
		target, caught, retired := decodeIDs(d, ReplicationFactorMax), decodeIDs(d, ReplicationFactorMax), decodeIDs(d, RetiredReplicasMax)
		if d.err != nil {
			return
		}
		t, j, ok := s.partitionByShard(shard)
		if !ok || (target == nil && retired == nil) || t.Partitions[j].Target != nil || t.Partitions[j].Retired != nil {
			d.fail("bad reassignment entry for shard %d", shard)
			return
		}
		t.Partitions[j].Target, t.Partitions[j].CaughtUp, t.Partitions[j].Retired = target, caught, retired
	}
}
