package server

import (
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// offsetsTopic is Kafka's internal topic of group offsets and metadata.
// Chronik keeps committed offsets and group records in its group
// coordinator shards (core/meta/groupshard.go), one Raft group each, the
// way Kafka keeps them in this topic's partitions; Metadata lists it,
// flagged internal, with one partition per group shard, whose leader,
// replicas and ISR are the shard's (partition i is shard i, the group's
// partition by Kafka's formula, so tools that compute a group's partition
// find its coordinator as its leader). Before the shards exist it is
// listed with one partition led by the controller leader. Regex consumers
// (franz-go's ConsumeRegex, Java's pattern subscription) see it and skip
// it as internal. It holds no records a client can read and cannot be
// created, deleted, extended or produced to:
//
//   - CreateTopics: TOPIC_ALREADY_EXISTS (it exists, as in Kafka);
//   - DeleteTopics, CreatePartitions: INVALID_REQUEST ("internal topic");
//   - Produce: INVALID_TOPIC_EXCEPTION, as Kafka answers an append to an
//     internal topic from a client;
//   - Metadata by name never auto-creates it.
const offsetsTopic = "__consumer_offsets"

// offsetsTopicID is its fixed topic id ("__consumer_offset" in ASCII,
// truncated to 16 bytes): never drawn by the controller, which derives ids
// from a hash.
var offsetsTopicID = [16]byte{'_', '_', 'c', 'o', 'n', 's', 'u', 'm', 'e', 'r', '_', 'o', 'f', 'f', 's', 'e'}

const internalTopicMsg = offsetsTopic + " is an internal topic: Chronik keeps committed group offsets in its group coordinator shards, not in a topic"

// offsetsTopicMetadata is offsetsTopic as Metadata reports it in cv: a
// partition per group shard (leader -1 and LEADER_NOT_AVAILABLE while
// none is reported), or, before the shards exist, one partition whose
// leader, replicas and ISR are the controller leader.
func offsetsTopicMetadata(cv node.ClusterView) node.TopicMetadata {
	registered := func(id int32) bool {
		return slices.ContainsFunc(cv.Brokers, func(b meta.Broker) bool { return b.NodeID == id })
	}
	if len(cv.GroupShards) > 0 {
		parts := make([]node.PartitionMetadata, 0, len(cv.GroupShards))
		for _, g := range cv.GroupShards {
			p := node.PartitionMetadata{Partition: g.Index, Leader: -1, ErrorCode: kerr.LeaderNotAvailable.Code,
				Replicas: slices.Clone(g.Replicas), ISR: slices.Clone(g.Replicas)}
			if g.LeaderEpoch > 0 && registered(g.Leader) {
				p.Leader, p.ErrorCode, p.LeaderEpoch = g.Leader, 0, int32(min(g.LeaderEpoch, math.MaxInt32))
			}
			parts = append(parts, p)
		}
		return node.TopicMetadata{Name: offsetsTopic, ID: offsetsTopicID, Partitions: parts}
	}
	p := node.PartitionMetadata{Partition: 0, Leader: -1, ErrorCode: kerr.LeaderNotAvailable.Code, Replicas: []int32{}, ISR: []int32{}}
	if cv.ControllerID >= 0 && registered(cv.ControllerID) {
		p.Leader, p.ErrorCode = cv.ControllerID, 0
		p.Replicas, p.ISR = []int32{cv.ControllerID}, []int32{cv.ControllerID}
	}
	return node.TopicMetadata{Name: offsetsTopic, ID: offsetsTopicID, Partitions: []node.PartitionMetadata{p}}
}
