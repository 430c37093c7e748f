package server

import (
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/node"
)

// offsetsTopic is Kafka's internal topic of group offsets and metadata.
// Chronik keeps committed offsets in the controller shard instead, and has
// no such topic; Metadata still lists it, flagged internal, because Kafka
// clients expect it there: a regex consumer (franz-go's ConsumeRegex,
// Java's pattern subscription) sees it and skips it as internal, and tools
// list it. It is reported with one partition led by the group coordinator
// (the controller leader, see FindCoordinator), so that clients parse a
// live leader. It holds no records and cannot be created, deleted,
// extended or produced to:
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

const internalTopicMsg = offsetsTopic + " is an internal topic: Chronik keeps committed group offsets in its controller, not in a topic"

// offsetsTopicMetadata is offsetsTopic as Metadata reports it in cv: one
// partition whose leader, replicas and ISR are the controller leader (or
// LEADER_NOT_AVAILABLE while there is none).
func offsetsTopicMetadata(cv node.ClusterView) node.TopicMetadata {
	p := node.PartitionMetadata{Partition: 0, Leader: -1, ErrorCode: kerr.LeaderNotAvailable.Code, Replicas: []int32{}, ISR: []int32{}}
	for _, b := range cv.Brokers {
		if cv.ControllerID >= 0 && b.NodeID == cv.ControllerID {
			p.Leader, p.ErrorCode = b.NodeID, 0
			p.Replicas, p.ISR = []int32{b.NodeID}, []int32{b.NodeID}
		}
	}
	return node.TopicMetadata{Name: offsetsTopic, ID: offsetsTopicID, Partitions: []node.PartitionMetadata{p}}
}
