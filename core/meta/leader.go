package meta

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// SetPartitionLeader records that Leader leads partition shard ShardID in
// Raft term Term, so that every node (also those not hosting the shard)
// can name partition leaders in Metadata. Nodes propose it when dragonboat
// reports a leader change.
//
// Apply rules (deterministic: state and command only):
//   - an unknown shard: UNKNOWN_TOPIC_OR_PARTITION;
//   - Term 0, or a Leader that is not one of the partition's replicas
//     (AllReplicas: Replicas and a reassignment's Target):
//     INVALID_REQUEST;
//   - Term below the recorded term: a stale report, a successful no-op;
//   - otherwise Leader and LeaderEpoch = Term are stored on the partition
//     (copy on write). The topology version does not move: hosting is
//     unchanged.
//
// Invariant: a partition's LeaderEpoch never decreases.
type SetPartitionLeader struct {
	ShardID uint64
	Leader  int32
	Term    uint64
}

func (SetPartitionLeader) Kind() Kind { return KindSetPartitionLeader }

func (c SetPartitionLeader) encode(e *enc) {
	e.uvar(c.ShardID)
	e.svar(int64(c.Leader))
	e.uvar(c.Term)
}

// partitionByShard finds the topic and partition index of shardID. Shard
// ids are unique, so at most one matches; the walk is over sorted names all
// the same. O(partitions).
func (s *state) partitionByShard(shardID uint64) (*Topic, int, bool) {
	for _, name := range sortedKeys(s.topics) {
		t := s.topics[name]
		for i, p := range t.Partitions {
			if p.ShardID == shardID {
				return t, i, true
			}
		}
	}
	return nil, 0, false
}

func (s *state) setPartitionLeader(c SetPartitionLeader) (Result, bool) {
	t, i, ok := s.partitionByShard(c.ShardID)
	if !ok {
		return fail(kerr.UnknownTopicOrPartition.Code, "no partition with shard %d", c.ShardID), false
	}
	p := t.Partitions[i]
	if c.Term == 0 || !slices.Contains(p.AllReplicas(), c.Leader) {
		return fail(kerr.InvalidRequest.Code, "leader %d term %d is not valid for shard %d (replicas %v)",
			c.Leader, c.Term, c.ShardID, p.Replicas), false
	}
	if c.Term < p.LeaderEpoch || (c.Term == p.LeaderEpoch && c.Leader == p.Leader) {
		return Result{}, false
	}
	nt := t.clone()
	nt.Partitions[i].Leader, nt.Partitions[i].LeaderEpoch = c.Leader, c.Term
	s.topics[nt.Name] = nt
	s.cacheValid = false // the View's topic slice must show the new value
	return Result{}, true
}

// checkLeader is checkInvariants' part for leadership fields.
func checkLeader(p Partition) bool {
	if p.LeaderEpoch == 0 {
		return p.Leader == 0
	}
	return slices.Contains(p.AllReplicas(), p.Leader) || p.Leader == -1 // -1: left in a reassignment
}

// encodeSnapshotLeaders writes the leadership section of a version 2
// snapshot: the count, then (shard id, leader, term) of every partition
// with a reported leader, topics by name, partitions by index.
func (s *state) encodeSnapshotLeaders(e *enc) {
	var ps []Partition
	for _, name := range sortedKeys(s.topics) {
		for _, p := range s.topics[name].Partitions {
			if p.LeaderEpoch != 0 {
				ps = append(ps, p)
			}
		}
	}
	e.uvar(uint64(len(ps)))
	for _, p := range ps {
		SetPartitionLeader{ShardID: p.ShardID, Leader: p.Leader, Term: p.LeaderEpoch}.encode(e)
	}
}

// decodeSnapshotLeaders reads what encodeSnapshotLeaders wrote into the
// (not yet published) topics of s.
func decodeSnapshotLeaders(d *dec, s *state) {
	n := d.count(SnapshotBytesMax)
	for i := 0; i < n && d.err == nil; i++ {
		c := SetPartitionLeader{ShardID: d.uvar(), Leader: d.i32(), Term: d.uvar()}
		if d.err != nil {
			return
		}
		t, j, ok := s.partitionByShard(c.ShardID)
		if !ok || c.Term == 0 || t.Partitions[j].LeaderEpoch != 0 {
			d.fail("bad leader entry for shard %d", c.ShardID)
			return
		}
		t.Partitions[j].Leader, t.Partitions[j].LeaderEpoch = c.Leader, c.Term
	}
}
