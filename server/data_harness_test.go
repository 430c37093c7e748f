package server

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// anyBroker returns a running broker.
func (c *testCluster) anyBroker() *Broker {
	for id := uint64(1); id <= uint64(len(c.addrs)); id++ {
		if b := c.broker(id); b != nil {
			return b
		}
	}
	c.t.Fatal("no broker running")
	return nil
}

// createTopic creates a topic through core/node (CreateTopics is another
// API area) and waits until every partition has a leader that serves it.
func (c *testCluster) createTopic(name string, partitions int32, configs ...meta.ConfigEntry) {
	c.t.Helper()
	eventually(c.t, testWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r := c.anyBroker().Node.CreateTopics(ctx, []node.TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: -1, Configs: configs}}, false)[0]
		return r.ErrorCode == 0 || r.ErrorCode == kerr.TopicAlreadyExists.Code
	}, "create topic %s", name)
	for p := int32(0); p < partitions; p++ {
		c.leaderOf(name, p)
	}
}

// leaderOf waits until some broker serves topic/p as a ready leader and
// returns its id.
func (c *testCluster) leaderOf(topic string, p int32) uint64 {
	c.t.Helper()
	var leader uint64
	eventually(c.t, testWait, func() bool {
		for id := uint64(1); id <= uint64(len(c.addrs)); id++ {
			b := c.broker(id)
			if b == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r := b.Node.ListOffsets(ctx, topic, p, node.TimestampLatest)
			cancel()
			if r.ErrorCode == 0 {
				leader = id
				return true
			}
		}
		return false
	}, "a leader for %s/%d", topic, p)
	return leader
}
