package meta

import (
	"cmp"
	"slices"
	"sort"
)

// View is an immutable picture of the controller state after one applied
// entry: brokers sorted by NodeID, topics sorted by Name. Nothing reachable
// from a View is ever modified; callers must not modify it either. Views
// share unchanged slices and topics with their predecessors.
type View struct {
	// Version is the raft index of the last applied entry.
	Version uint64
	// TopologyVersion is the raft index of the last change to brokers or
	// topics; a reconciler can skip Views where it did not move.
	TopologyVersion uint64
	Brokers         []Broker
	Topics          []*Topic
	// BrokerConfigs are the cluster-wide dynamic broker defaults
	// (log.retention.ms, ...), sorted by key.
	BrokerConfigs []ConfigEntry
	// Scram are the SCRAM credentials sorted by user, then mechanism.
	Scram []ScramCredential
	// ACLs are the access control entries, sorted by CompareACLs.
	ACLs []ACL
	// PreparingTxns are the transactions in PrepareCommit or PrepareAbort,
	// sorted by id: partition leaders write their markers (core/node).
	PreparingTxns []*Txn
	// GroupShards are the group coordinator shards by index (nil until
	// created; groupshard.go). Shared between Views: do not modify.
	GroupShards []GroupShard
	// NextShardID is above every partition shard id ever allocated. Ids
	// are never reused, so an id from FirstPartitionShardID up to it that
	// no topic lists belonged to a deleted topic.
	NextShardID uint64
}

// BrokerConfig returns the cluster-wide dynamic value of key, if set.
func (v *View) BrokerConfig(key string) (string, bool) {
	i, ok := slices.BinarySearchFunc(v.BrokerConfigs, key, func(c ConfigEntry, k string) int { return cmp.Compare(c.Key, k) })
	if !ok {
		return "", false
	}
	return v.BrokerConfigs[i].Value, true
}

// Broker returns the broker with id.
func (v *View) Broker(id int32) (Broker, bool) {
	i := sort.Search(len(v.Brokers), func(i int) bool { return v.Brokers[i].NodeID >= id })
	if i < len(v.Brokers) && v.Brokers[i].NodeID == id {
		return v.Brokers[i], true
	}
	return Broker{}, false
}

// Topic returns the topic named name, or nil.
func (v *View) Topic(name string) *Topic {
	i := sort.Search(len(v.Topics), func(i int) bool { return v.Topics[i].Name >= name })
	if i < len(v.Topics) && v.Topics[i].Name == name {
		return v.Topics[i]
	}
	return nil
}

// TopicByID returns the topic with id, or nil. It scans: O(topics).
func (v *View) TopicByID(id TopicID) *Topic {
	for _, t := range v.Topics {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// HostedPartition is a partition that a node holds a replica of.
type HostedPartition struct {
	Topic     string
	TopicID   TopicID
	Partition int32
	ShardID   uint64
	Replicas  []int32 // shared with the View: do not modify
	// Target is a reassignment's target (nil: none); shared with the View.
	Target []int32
}

// HostedPartitions returns the partitions with a replica on node, sorted by
// ShardID: what a node's reconciler should run. During a reassignment a
// partition is hosted on Replicas and Target (AllReplicas). O(partitions).
func (v *View) HostedPartitions(node int32) []HostedPartition {
	var out []HostedPartition
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			if slices.Contains(p.Replicas, node) || slices.Contains(p.Target, node) {
				out = append(out, HostedPartition{Topic: t.Name, TopicID: t.ID, Partition: p.Index, ShardID: p.ShardID,
					Replicas: p.Replicas, Target: p.Target})
			}
		}
	}
	slices.SortFunc(out, func(a, b HostedPartition) int { return cmp.Compare(a.ShardID, b.ShardID) })
	return out
}
