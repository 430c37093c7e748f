package node

import (
	"context"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
)

// Accessors for the Kafka data-path handlers (Fetch by topic id,
// DescribeProducers). Additive: they only read existing state.

// TopicName: see admin_api.go (both branches added it; merged once).

// TopicID returns the id of the topic named name.
func (n *Node) TopicID(name string) (meta.TopicID, bool) {
	t := n.view().Topic(name)
	if t == nil {
		return meta.TopicID{}, false
	}
	return t.ID, true
}

// Producers lists the idempotent producers the partition's replica knows
// (DescribeProducers), as leader only: code is NOT_LEADER_OR_FOLLOWER on a
// follower, UNKNOWN_TOPIC_OR_PARTITION for an unknown partition.
func (n *Node) Producers(ctx context.Context, topic string, part int32) ([]partition.ProducerState, int16) {
	_, rep, _, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		return nil, code
	}
	return rep.Producers(), 0
}
