package node

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

// basicProduceFetch produces idempotent batches to every partition, checks
// offsets, an idempotent retry, Metadata on every node, and a fetch.
func basicProduceFetch(t *testing.T, c *cluster, topic string, partitions int32) {
	n0 := c.node(c.ids()[0])
	ctx := context.Background()
	pid, _, code := n0.InitProducerID(ctx)
	if code != 0 {
		t.Fatalf("InitProducerID: code %d", code)
	}
	for p := int32(0); p < partitions; p++ {
		var off int64
		for i := int32(0); i < 5; i++ {
			r := c.produce(topic, p, batch(pid, i*4, 4, 100, 1000), 20*time.Second)
			if r.BaseOffset != off || r.LastOffset != off+3 || r.Duplicate {
				t.Fatalf("p%d batch %d: offsets [%d, %d] dup %v, want from %d", p, i, r.BaseOffset, r.LastOffset, r.Duplicate, off)
			}
			off += 4
		}
		// Idempotent retry of batch 3: same offset, nothing appended.
		r := c.produce(topic, p, batch(pid, 12, 4, 100, 1000), 20*time.Second)
		if r.BaseOffset != 12 || !r.Duplicate {
			t.Fatalf("p%d retry: base %d dup %v, want 12 true", p, r.BaseOffset, r.Duplicate)
		}
		l := c.leaderOf(topic, p)
		f := l.Fetch(ctx, topic, p, 5, 1<<20)
		if f.ErrorCode != 0 || f.HighWatermark != 20 || f.LastStableOffset != 20 || f.LogStartOffset != 0 {
			t.Fatalf("p%d fetch: %+v", p, f)
		}
		bs := splitBatches(t, f.Records)
		if len(bs) != 4 || bs[0].baseOffset != 4 || bs[0].seq != 4 {
			t.Fatalf("p%d fetch at 5 returned %+v, want 4 batches from the one at 4", p, bs)
		}
		if f := l.Fetch(ctx, topic, p, 21, 1<<20); f.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("fetch beyond HW: code %d", f.ErrorCode)
		}
		if lo := l.ListOffsets(ctx, topic, p, TimestampLatest); lo.Offset != 20 {
			t.Fatalf("latest offset %d", lo.Offset)
		}
		// Invalid batches are never proposed.
		bad := batch(-1, 0, 1, 10, 0)
		bad[30] ^= 1
		if r := l.Produce(ctx, topic, p, bad); r.ErrorCode != kerr.CorruptMessage.Code {
			t.Fatalf("corrupt batch: code %d", r.ErrorCode)
		}
	}
	checkMetadata(t, c, topic, partitions)
}

// checkMetadata waits until every node names the same leader for every
// partition and lists every broker.
func checkMetadata(t *testing.T, c *cluster, topic string, partitions int32) {
	waitFor(t, 20*time.Second, "consistent metadata", func() bool {
		var want []int32
		for _, id := range c.ids() {
			md := c.node(id).Metadata(context.Background(), []string{topic})
			if len(md.Brokers) != len(c.ids()) || len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 ||
				len(md.Topics[0].Partitions) != int(partitions) {
				return false
			}
			var got []int32
			for _, p := range md.Topics[0].Partitions {
				if p.Leader < 0 || p.LeaderEpoch < 1 {
					return false
				}
				got = append(got, p.Leader)
			}
			if want == nil {
				want = got
			} else if !equalInt32(want, got) {
				return false
			}
		}
		for p, l := range want {
			if ln := c.leaderOf(topic, int32(p)); ln == nil || ln.ID() != uint64(l) {
				return false
			}
		}
		return true
	})
}

func equalInt32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSingleNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, 1)
		defer c.closeAll()
		c.createTopic("t", 3, -1)
		basicProduceFetch(t, c, "t", 3)

		// Group offsets through the controller, read back locally.
		n := c.node(1)
		ctx := context.Background()
		codes := n.CommitOffsets(ctx, meta.CommitOffsets{Group: "g", Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 1, Offset: 7}}})
		if len(codes) != 1 || codes[0].Code != 0 {
			t.Fatalf("commit: %+v", codes)
		}
		got, err := n.FetchOffsets("g")
		if err != nil || len(got) != 1 || got[0].Offset != 7 {
			t.Fatalf("fetch offsets: %+v %v", got, err)
		}
		before, _ := fetchAll(t, n, "t", 0)

		// Restart on the same disk: topic, data and offsets survive.
		c.stop(1)
		c.start(1)
		c.produce("t", 0, batch(-1, 0, 1, 10, 0), 20*time.Second)
		after, _ := fetchAll(t, c.node(1), "t", 0)
		if !bytes.HasPrefix(after, before) || len(after) <= len(before) {
			t.Fatalf("data after restart: %d bytes, before %d", len(after), len(before))
		}
		if got, _ := c.node(1).FetchOffsets("g"); len(got) != 1 || got[0].Offset != 7 {
			t.Fatalf("offsets after restart: %+v", got)
		}
	})
}

func TestDeleteTopicRemovesShards(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 8, 3)
		defer c.closeAll()
		c.createTopic("gone", 2, 3)
		c.produce("gone", 0, batch(-1, 0, 1, 10, 0), 20*time.Second)
		pt, _ := partitionOf(c.node(1).view(), "gone", 0)
		r := c.node(2).DeleteTopics(context.Background(), []string{"gone"})
		if r[0].ErrorCode != 0 {
			t.Fatalf("delete: %+v", r[0])
		}
		waitFor(t, 20*time.Second, "shards stopped and removed", func() bool {
			for _, id := range c.ids() {
				n := c.node(id)
				if _, ok := n.reg.Get(pt.ShardID); ok || n.isHosted(pt.ShardID) {
					return false
				}
				c.mu.Lock()
				_, err := c.disks[id].Stat(n.popts.Dir + "/" + strconv.FormatUint(pt.ShardID, 10))
				c.mu.Unlock()
				if err == nil {
					return false
				}
			}
			return true
		})
		if md := c.node(3).Metadata(context.Background(), []string{"gone"}); md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("deleted topic in metadata: %+v", md.Topics[0])
		}
	})
}
