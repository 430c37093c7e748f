package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// newClusterEvery is newCluster with a short retention interval, so that
// retention passes run often in virtual time.
func newClusterEvery(t testing.TB, seed int64, size int, retentionEvery time.Duration) *cluster {
	c := &cluster{t: t, log: captureRaftLog(t), net: netio.NewSim(seed), peers: map[uint64]string{},
		disks: map[uint64]*diskio.Sim{}, nodes: map[uint64]*Node{}}
	for id := uint64(1); id <= uint64(size); id++ {
		c.peers[id] = raftAddr(id)
		c.disks[id] = diskio.NewSim(seed + int64(id))
	}
	for id := uint64(1); id <= uint64(size); id++ {
		cfg := c.config(id)
		cfg.RetentionInterval = retentionEvery
		n, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("start node %d: %v", id, err)
		}
		c.nodes[id] = n
	}
	return c
}

// createTopicWith creates a topic with configs through the admin API.
func (c *cluster) createTopicWith(name string, partitions int32, rf int16, configs map[string]string) {
	c.t.Helper()
	n := c.node(c.ids()[0])
	waitFor(c.t, 20*time.Second, "brokers registered", func() bool { return len(n.view().Brokers) == len(c.peers) })
	spec := TopicSpec{Name: name, Partitions: partitions, ReplicationFactor: rf}
	for _, k := range sortedKeys(configs) {
		spec.Configs = append(spec.Configs, meta.ConfigEntry{Key: k, Value: configs[k]})
	}
	waitFor(c.t, 20*time.Second, "create topic", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r := n.CreateTopics(ctx, []TopicSpec{spec}, false)[0]
		if r.ErrorCode != 0 && r.ErrorCode != kerr.TopicAlreadyExists.Code && r.ErrorCode != kerr.NotController.Code && r.ErrorCode != kerr.RequestTimedOut.Code {
			c.t.Fatalf("create topic %s: code %d %s", name, r.ErrorCode, r.Message)
		}
		return r.ErrorCode == 0 || r.ErrorCode == kerr.TopicAlreadyExists.Code
	})
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// replicaOf returns node id's replica of topic/0 (nil if not open).
func (c *cluster) replicaOf(id uint64, topic string) (*partition.Replica, uint64) {
	n := c.node(id)
	p, ok := partitionOf(n.view(), topic, 0)
	if !ok {
		return nil, 0
	}
	rep, _ := n.reg.Get(p.ShardID)
	return rep, p.ShardID
}

// segmentFiles lists node id's segment files of shard.
func (c *cluster) segmentFiles(id, shard uint64) []string {
	c.mu.Lock()
	disk := c.disks[id]
	c.mu.Unlock()
	names, err := disk.List(fmt.Sprintf("/data/partitions/%d/log", shard))
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			out = append(out, n)
		}
	}
	return out
}

// TestRetentionReplicated: a topic with segment.ms=100 and retention.ms=1000
// loses its old data once it expires: the log start moves to the log end on
// every replica alike (through DeleteRecords entries proposed by the
// leader), and each replica's disk keeps only the empty active segment.
func TestRetentionReplicated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterEvery(t, 31, 3, 200*time.Millisecond)
		defer c.closeAll()
		c.createTopicWith("r", 1, 3, map[string]string{"segment.ms": "100", "retention.ms": "1000"})
		var end int64
		for range 5 {
			r := c.produce("r", 0, batch(-1, 0, 2, 100, time.Now().UnixMilli()), 20*time.Second)
			end = r.LastOffset + 1
			time.Sleep(150 * time.Millisecond) // virtual time: the next append rolls (segment.ms)
		}
		waitFor(t, 30*time.Second, "log start at the log end on every replica, old segments gone", func() bool {
			for _, id := range c.ids() {
				rep, shard := c.replicaOf(id, "r")
				if rep == nil || rep.LogStartOffset() != end || rep.HighWatermark() != end {
					return false
				}
				if files := c.segmentFiles(id, shard); len(files) != 1 || files[0] != fmt.Sprintf("%020d.log", end) {
					return false
				}
			}
			return true
		})
		// Fetching from the start finds nothing below it.
		l := c.leaderOf("r", 0)
		if r := l.FetchLocal("r", 0, 0, 1<<20); r.ErrorCode != kerr.OffsetOutOfRange.Code {
			t.Fatalf("fetch at 0 after retention: code %d", r.ErrorCode)
		}
	})
}

// TestSegmentSettingsLive: segment.ms altered on a running topic applies
// without a restart (the retention pass pushes it to every replica).
func TestSegmentSettingsLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterEvery(t, 32, 1, 200*time.Millisecond)
		defer c.closeAll()
		c.createTopicWith("s", 1, 1, nil)
		for range 3 {
			c.produce("s", 0, batch(-1, 0, 1, 10, time.Now().UnixMilli()), 20*time.Second)
			time.Sleep(150 * time.Millisecond)
		}
		_, shard := c.replicaOf(1, "s")
		if files := c.segmentFiles(1, shard); len(files) != 1 {
			t.Fatalf("default segment.ms: %d segment files", len(files))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := c.node(1).AlterConfigs(ctx, []meta.AlterConfigs{{Topic: "s", Ops: []meta.ConfigOp{{Key: "segment.ms", Op: meta.ConfigSet, Value: "100"}}}})
		cancel()
		if r[0].ErrorCode != 0 {
			t.Fatalf("alter configs: %+v", r[0])
		}
		waitFor(t, 20*time.Second, "segments roll at the new segment.ms", func() bool {
			c.produce("s", 0, batch(-1, 0, 1, 10, time.Now().UnixMilli()), 20*time.Second)
			time.Sleep(150 * time.Millisecond)
			return len(c.segmentFiles(1, shard)) >= 3
		})
	})
}

// TestLogAppendTime: a topic with message.timestamp.type=LogAppendTime
// returns the append time in the produce result, and the fetched batch
// carries it (timestamp type bit, MaxTimestamp) with the same bytes on
// every replica.
func TestLogAppendTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 33, 3)
		defer c.closeAll()
		c.createTopicWith("la", 1, 3, map[string]string{"message.timestamp.type": "LogAppendTime"})
		c.createTopic("ct", 1, 3)
		const createTs = 1_600_000_000_000
		before := time.Now().UnixMilli()
		r := c.produce("la", 0, batch(-1, 0, 3, 20, createTs), 20*time.Second)
		after := time.Now().UnixMilli()
		if r.LogAppendTimeMs < before || r.LogAppendTimeMs > after {
			t.Fatalf("LogAppendTimeMs %d outside [%d, %d]", r.LogAppendTimeMs, before, after)
		}
		if r := c.produce("ct", 0, batch(-1, 0, 1, 20, createTs), 20*time.Second); r.LogAppendTimeMs != -1 {
			t.Fatalf("CreateTime topic: LogAppendTimeMs %d", r.LogAppendTimeMs)
		}
		sameReplicas(t, c, "la")
		data, _ := fetchAll(t, c.leaderOf("la", 0), "la", 0)
		if attrs := binary.BigEndian.Uint16(data[21:]); attrs&0x08 == 0 {
			t.Fatalf("attributes %#x: timestamp type not LogAppendTime", attrs)
		}
		if ts := int64(binary.BigEndian.Uint64(data[35:])); ts != r.LogAppendTimeMs {
			t.Fatalf("MaxTimestamp %d, produce result %d", ts, r.LogAppendTimeMs)
		}
		if base := int64(binary.BigEndian.Uint64(data[27:])); base != createTs {
			t.Fatalf("base timestamp %d changed (Kafka keeps it)", base)
		}
		for _, id := range c.ids() {
			got, _ := fetchAll(t, c.node(id), "la", 0)
			if !bytes.Equal(got, data) {
				t.Fatalf("node %d stores different bytes", id)
			}
		}
	})
}
