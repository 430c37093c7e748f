package meta

import (
	"cmp"
	"encoding/hex"
	"slices"
)

// TopicID is a topic's Kafka UUID, derived in apply from (raft index, name).
type TopicID [16]byte

func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the all-zero id (Kafka's "no id").
func (id TopicID) IsZero() bool { return id == TopicID{} }

// Broker is a registered node and its advertised addresses.
type Broker struct {
	NodeID   int32
	Host     string
	Port     int32
	Rack     string
	RaftAddr string
}

// Partition is one partition of a topic and the dragonboat shard that
// replicates it. Replicas[0] is the preferred leader.
type Partition struct {
	Index    int32
	ShardID  uint64
	Replicas []int32
	// Leader and LeaderEpoch are the last leader reported for the shard by
	// SetPartitionLeader and the Raft term it leads in. LeaderEpoch 0 means
	// none reported yet (Leader is then 0 and meaningless): use LeaderID.
	Leader      int32
	LeaderEpoch uint64
	// Target is the replica set a reassignment in progress moves to (nil:
	// none); CaughtUp the target nodes not in Replicas whose replica
	// caught up; Retired (sorted) the nodes that left the partition's Raft
	// group and can never rejoin it. See reassign.go.
	Target   []int32
	CaughtUp []int32
	Retired  []int32
}

// LeaderID returns the reported leader, or -1 if none was reported (or
// the reported one left the partition in a reassignment).
func (p Partition) LeaderID() int32 {
	if p.LeaderEpoch == 0 {
		return -1
	}
	return p.Leader
}

// Topic is a topic as the controller knows it. Partitions are sorted by
// Index (Index == position); Configs are sorted by Key with unique keys.
//
// A *Topic published in a View or returned by Lookup is never modified
// afterwards, by this package or by its users.
type Topic struct {
	Name       string
	ID         TopicID
	Partitions []Partition
	Configs    []ConfigEntry
}

// Config returns the value of key and whether it is set.
func (t *Topic) Config(key string) (string, bool) {
	i, ok := slices.BinarySearchFunc(t.Configs, key, func(c ConfigEntry, k string) int { return cmp.Compare(c.Key, k) })
	if !ok {
		return "", false
	}
	return t.Configs[i].Value, true
}

// clone returns a deep copy.
func (t *Topic) clone() *Topic {
	c := &Topic{Name: t.Name, ID: t.ID, Configs: slices.Clone(t.Configs)}
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		c.Partitions[i] = Partition{Index: p.Index, ShardID: p.ShardID, Replicas: slices.Clone(p.Replicas),
			Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Target: slices.Clone(p.Target), CaughtUp: slices.Clone(p.CaughtUp), Retired: slices.Clone(p.Retired)}
	}
	return c
}

// OffsetValue is one committed offset.
type OffsetValue struct {
	Offset            int64
	LeaderEpoch       int32
	Metadata          string
	CommitTimestampMs int64
}

// GroupOffset is one committed offset with the partition it belongs to.
type GroupOffset struct {
	Topic     string
	Partition int32
	OffsetValue
}

// sortedKeys returns m's keys in ascending order; every map walk whose order
// can reach output goes through it.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
