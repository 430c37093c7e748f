package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

// TestDataAPIAccessors: TopicName/TopicID round-trip, Producers lists an
// idempotent producer after a produce and answers unknown partitions.
func TestDataAPIAccessors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 11, 1)
		defer c.closeAll()
		c.createTopic("t", 1, -1)
		n := c.node(1)
		id, ok := n.TopicID("t")
		if !ok || id.IsZero() {
			t.Fatalf("TopicID: %v %v", id, ok)
		}
		if name, ok := n.TopicName(id); !ok || name != "t" {
			t.Fatalf("TopicName: %q %v", name, ok)
		}
		if _, ok := n.TopicName(meta.TopicID{1}); ok {
			t.Fatal("TopicName of an unknown id")
		}
		if _, ok := n.TopicName(meta.TopicID{}); ok {
			t.Fatal("TopicName of the zero id")
		}
		if _, ok := n.TopicID("nope"); ok {
			t.Fatal("TopicID of an unknown topic")
		}
		ctx := context.Background()
		pid, _, code := n.InitProducerID(ctx)
		if code != 0 {
			t.Fatalf("InitProducerID: %d", code)
		}
		c.produce("t", 0, batch(pid, 0, 3, 10, 1000), 20*time.Second)
		ps, code := n.Producers(ctx, "t", 0)
		if code != 0 || len(ps) != 1 || ps[0].ProducerID != pid || ps[0].LastSequence != 2 {
			t.Fatalf("Producers: %+v code %d", ps, code)
		}
		if _, code := n.Producers(ctx, "t", 5); code != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("Producers of an unknown partition: code %d", code)
		}
	})
}
