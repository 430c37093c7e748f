package node

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

// TestAdminAPI covers admin_api.go on one node: cluster id, metadata
// without auto-creation, validate-only dry runs, config defaults, delete
// by id, fenced ListOffsets (incl. max timestamp) and OffsetForLeaderEpoch.
func TestAdminAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, 1)
		c.auto = true
		c.stop(1)
		n := c.start(1)
		defer c.closeAll()
		ctx := context.Background()
		id := n.ClusterID()
		if len(id) < 10 || id != n.ClusterID() {
			t.Fatalf("cluster id %q", id)
		}

		// No auto-creation when the request forbids it.
		waitFor(t, 20*time.Second, "broker registered", func() bool { return len(n.Metadata(ctx, []string{}).Brokers) == 1 })
		if md := n.MetadataWith(ctx, []string{"nope"}, false); md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || n.view().Topic("nope") != nil {
			t.Fatalf("metadata created a topic: %+v", md.Topics)
		}

		c.createTopic("t", 2, 1)
		for _, tc := range []struct {
			spec TopicSpec
			code int16
		}{
			{TopicSpec{Name: "new", Partitions: 3, ReplicationFactor: -1, Configs: []meta.ConfigEntry{{Key: "retention.ms", Value: "5"}}}, 0},
			{TopicSpec{Name: "t"}, kerr.TopicAlreadyExists.Code},
			{TopicSpec{Name: "bad name"}, kerr.InvalidTopicException.Code},
			{TopicSpec{Name: "x", ReplicationFactor: 2}, kerr.InvalidReplicationFactor.Code},
			{TopicSpec{Name: "x", Partitions: meta.PartitionsPerTopicMax + 1}, kerr.InvalidPartitions.Code},
			{TopicSpec{Name: "x", Configs: []meta.ConfigEntry{{Key: "retention.ms", Value: "abc"}}}, kerr.InvalidConfig.Code},
			{TopicSpec{Name: "x", Configs: []meta.ConfigEntry{{Key: "unknown.key", Value: "1"}}}, kerr.InvalidConfig.Code},
		} {
			r := n.ValidateCreateTopics([]TopicSpec{tc.spec})[0]
			if r.ErrorCode != tc.code {
				t.Errorf("validate %+v: code %d (%s), want %d", tc.spec, r.ErrorCode, r.Message, tc.code)
			}
			if tc.code == 0 && (r.Topic == nil || len(r.Topic.Partitions) != 3) {
				t.Errorf("validate %+v: topic %+v", tc.spec, r.Topic)
			}
		}
		if err := n.SyncController(ctx); err != nil {
			t.Fatalf("SyncController: %v", err)
		}
		if n.view().Topic("new") != nil {
			t.Fatal("validate-only created a topic")
		}
		if r := n.ValidateAlterConfigs(meta.AlterConfigs{Topic: "t", Ops: []meta.ConfigOp{{Key: "segment.bytes", Value: "1"}}}); r.ErrorCode != kerr.InvalidConfig.Code {
			t.Fatalf("validate alter: %+v", r)
		}
		if r := n.ValidateCreatePartitions(meta.CreatePartitions{Topic: "t", Count: 2}); r.ErrorCode != kerr.InvalidPartitions.Code {
			t.Fatalf("validate partitions: %+v", r)
		}
		if r := n.ValidateCreatePartitions(meta.CreatePartitions{Topic: "t", Count: 4}); r.ErrorCode != 0 {
			t.Fatalf("validate partitions: %+v", r)
		}
		var keys []string
		vals, ok := n.TopicConfigValues("t")
		if !ok {
			t.Fatal("topic t has no config values")
		}
		for _, d := range vals {
			keys = append(keys, d.Key)
		}
		if !slices.Equal(keys, meta.AllowedTopicConfigs()) {
			t.Fatalf("defaults %v, allowed %v", keys, meta.AllowedTopicConfigs())
		}

		// Fencing and special timestamps.
		waitFor(t, 20*time.Second, "a leader for t/1", func() bool { return c.leaderOf("t", 1) != nil })
		c.produce("t", 0, batch(-1, 0, 2, 10, 1000), 20*time.Second)
		c.produce("t", 0, batch(-1, 0, 1, 10, 5000), 20*time.Second)
		c.produce("t", 0, batch(-1, 0, 1, 10, 3000), 20*time.Second)
		cur := n.ListOffsetsFenced(ctx, "t", 0, TimestampLatest, -1)
		if cur.ErrorCode != 0 || cur.Offset != 4 || cur.LeaderEpoch < 1 {
			t.Fatalf("latest: %+v", cur)
		}
		if r := n.ListOffsetsFenced(ctx, "t", 0, TimestampLatest, cur.LeaderEpoch-1); r.ErrorCode != kerr.FencedLeaderEpoch.Code {
			t.Fatalf("older epoch: %+v", r)
		}
		if r := n.ListOffsetsFenced(ctx, "t", 0, TimestampLatest, cur.LeaderEpoch+1); r.ErrorCode != kerr.UnknownLeaderEpoch.Code {
			t.Fatalf("newer epoch: %+v", r)
		}
		if r := n.ListOffsetsFenced(ctx, "t", 0, TimestampMaxTimestamp, cur.LeaderEpoch); r.ErrorCode != 0 || r.Offset != 2 || r.Timestamp != 5000 {
			t.Fatalf("max timestamp: %+v", r)
		}
		if r := n.ListOffsetsFenced(ctx, "t", 1, TimestampMaxTimestamp, -1); r.ErrorCode != 0 || r.Offset != -1 {
			t.Fatalf("max timestamp, empty: %+v", r)
		}
		if r := n.OffsetForLeaderEpochFenced(ctx, "t", 0, cur.LeaderEpoch-1, cur.LeaderEpoch); r.ErrorCode != kerr.FencedLeaderEpoch.Code {
			t.Fatalf("epoch fenced: %+v", r)
		}
		if r := n.OffsetForLeaderEpochFenced(ctx, "t", 0, -1, cur.LeaderEpoch); r.ErrorCode != 0 || r.EndOffset != 4 {
			t.Fatalf("epoch end: %+v", r)
		}
		e1 := n.ListOffsetsFenced(ctx, "t", 1, TimestampLatest, -1).LeaderEpoch
		if r := n.OffsetForLeaderEpochFenced(ctx, "t", 1, e1, e1); r.ErrorCode != 0 || r.EndOffset != 0 || r.LeaderEpoch != e1 {
			t.Fatalf("epoch end, empty log: %+v", r)
		}
		if r := n.OffsetForLeaderEpochFenced(ctx, "t", 0, -1, cur.LeaderEpoch+5); r.ErrorCode != 0 || r.EndOffset != -1 {
			t.Fatalf("epoch above: %+v", r)
		}

		// Delete by id.
		tid := n.view().Topic("t").ID
		if name, ok := n.TopicName(tid); !ok || name != "t" {
			t.Fatalf("TopicName: %q %v", name, ok)
		}
		if r := n.DeleteTopicsByID(ctx, []meta.TopicID{tid, {1}}); r[0].ErrorCode != 0 || r[0].Name != "t" || r[1].ErrorCode != kerr.UnknownTopicID.Code {
			t.Fatalf("delete by id: %+v", r)
		}
		c.stop(1)
		if n2 := c.start(1); n2.ClusterID() != id {
			t.Fatalf("cluster id changed across restart")
		}
	})
}
