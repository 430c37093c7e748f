package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

// TestGroupShardsUpgrade: a cluster of the release before group shards
// (legacyGroups) commits offsets and writes a membership record in the
// controller; restarted as nodes of this release on the same data dirs,
// it creates the group shards, and every shard's first ready leader
// imports its groups: every committed offset and the record are still
// there, read from the group shards. The controller then refuses legacy
// group commands, a later commit wins over the import, and a later leader
// of the shard does not import again.
func TestGroupShardsUpgrade(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		legacy := true
		c := newClusterWith(t, 11, 3, func(cfg *Config) { cfg.legacyGroups = legacy })
		defer c.closeAll()
		ctx := context.Background()
		c.createTopic("t", 2, -1)
		groups := make([]string, 12)
		for i := range groups {
			groups[i] = fmt.Sprintf("old-%d", i)
		}
		var ctl *Node
		waitFor(t, 30*time.Second, "legacy commits", func() bool {
			for _, id := range c.ids() {
				if _, ok := c.node(id).CoordinatorTerm(ctx); ok {
					ctl = c.node(id)
					return true
				}
			}
			return false
		})
		for i, g := range groups {
			r, err := ctl.proposeMeta(ctx, meta.CommitOffsets{Group: g, CommitTimestampMs: 1, Offsets: []meta.OffsetCommit{
				{Topic: "t", Partition: int32(i % 2), Offset: int64(10 + i), Metadata: "m"}}})
			if err != nil || r.Code != 0 {
				t.Fatalf("legacy commit %s: %v %+v", g, err, r)
			}
		}
		if r, err := ctl.proposeMeta(ctx, meta.PutGroupState{Group: groups[3], Term: 2, Seq: 1, Data: []byte("record")}); err != nil || r.Code != 0 {
			t.Fatalf("legacy record: %v %+v", err, r)
		}
		if n := ctl.GroupShardCount(); n != 0 {
			t.Fatalf("legacy cluster has %d group shards", n)
		}

		// The upgrade: every node restarts with this release.
		for _, id := range c.ids() {
			c.stop(id)
		}
		legacy = false
		for id := uint64(1); id <= 3; id++ {
			c.start(id)
		}
		n := c.node(1)
		waitFor(t, 30*time.Second, "group shards", func() bool { return n.GroupShardCount() == meta.DefaultGroupShards })
		// Ready leaders (as every group request makes sure) have imported.
		leaderOf := func(g string) *Node {
			idx, _ := n.GroupShardOf(g)
			var l *Node
			waitFor(t, 30*time.Second, "a ready leader of "+g, func() bool {
				for _, id := range c.ids() {
					if _, ok := c.node(id).GroupShardTerm(ctx, idx); ok {
						l = c.node(id)
						return true
					}
				}
				return false
			})
			return l
		}
		for i, g := range groups {
			l := leaderOf(g)
			got, err := l.FetchOffsets(g)
			if err != nil || len(got) != 1 || got[0].Offset != int64(10+i) || got[0].Partition != int32(i%2) || got[0].Metadata != "m" {
				t.Fatalf("%s after the upgrade: %+v %v", g, got, err)
			}
		}
		st, err := leaderOf(groups[3]).GroupStates()
		if err != nil || !slices.ContainsFunc(st.Groups, func(s meta.GroupState) bool { return s.Group == groups[3] && string(s.Data) == "record" }) {
			t.Fatalf("record after the upgrade: %+v %v", st, err)
		}
		if r, err := n.proposeMeta(ctx, meta.CommitOffsets{Group: groups[0], Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 1}}}); err != nil || r.Code != kerr.NotCoordinator.Code {
			t.Fatalf("legacy commit after the upgrade: %v %+v", err, r)
		}

		// A commit after the import wins; the next leader keeps it.
		l := leaderOf(groups[0])
		if codes := l.CommitOffsets(ctx, meta.CommitOffsets{Group: groups[0], Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: 99}}}); codes[0].Code != 0 {
			t.Fatalf("commit: %+v", codes)
		}
		idx, _ := n.GroupShardOf(groups[0])
		target := l.ID()%3 + 1
		waitFor(t, 30*time.Second, "the shard moved", func() bool {
			if _, ok := l.leaderTerm(meta.FirstGroupShardID + uint64(idx)); ok {
				_ = l.TransferGroupShard(idx, target)
				return false
			}
			_, ok := c.node(target).GroupShardTerm(ctx, idx)
			return ok
		})
		if got, err := leaderOf(groups[0]).FetchOffsets(groups[0]); err != nil || len(got) != 1 || got[0].Offset != 99 {
			t.Fatalf("after the move: %+v %v", got, err)
		}
	})
}

// TestGroupShardsDeletedTopicOffsets: deleting a topic deletes its
// committed offsets from the group shards, so that a topic recreated
// under the same name starts without them.
func TestGroupShardsDeletedTopicOffsets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 13, 1)
		defer c.closeAll()
		ctx := context.Background()
		n := c.node(1)
		c.createTopic("t", 1, -1)
		c.createTopic("keep", 1, -1)
		if codes := n.CommitOffsets(ctx, meta.CommitOffsets{Group: "g", Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 5}, {Topic: "keep", Offset: 6}}}); codes[0].Code != 0 || codes[1].Code != 0 {
			t.Fatalf("commit: %+v", codes)
		}
		if r := n.DeleteTopics(ctx, []string{"t"}); r[0].ErrorCode != 0 {
			t.Fatalf("delete: %+v", r)
		}
		idx, _ := n.GroupShardOf("g")
		waitFor(t, 30*time.Second, "offsets of t deleted", func() bool {
			v, err := n.nh.StaleRead(meta.FirstGroupShardID+uint64(idx), meta.QueryOffsetTopics{})
			return err == nil && slices.Equal(v.([]string), []string{"keep"})
		})
		c.createTopic("t", 1, -1)
		got, err := n.FetchOffsets("g")
		if err != nil || len(got) != 1 || got[0].Topic != "keep" || got[0].Offset != 6 {
			t.Fatalf("offsets after the topic was recreated: %+v %v", got, err)
		}
	})
}
