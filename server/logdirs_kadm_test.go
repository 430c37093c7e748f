package server

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

// Fake filesystem figures node 1 reports (node.Config.DiskSpace); other
// nodes have no DiskSpace and report -1.
const (
	logDirsTotalBytes  = 1 << 40
	logDirsUsableBytes = 3 << 38
)

func logDirsDiskSpace(nc *node.Config) {
	if nc.NodeID == 1 {
		nc.DiskSpace = func(string) (int64, int64, error) { return logDirsTotalBytes, logDirsUsableBytes, nil }
	} else {
		nc.DiskSpace = func(string) (int64, int64, error) { return 0, 0, errors.New("no statfs here") }
	}
}

// TestDescribeLogDirsOneNode: kadm DescribeAllLogDirs/DescribeBrokerLogDirs
// against one broker.
func TestDescribeLogDirsOneNode(t *testing.T) {
	logDirsScenario(t, startCluster(t, 1, logDirsDiskSpace), 1)
}

// TestDescribeLogDirsThreeNodes: the same on three brokers, each replica
// listed by the broker hosting it.
func TestDescribeLogDirsThreeNodes(t *testing.T) {
	logDirsScenario(t, startCluster(t, 3, logDirsDiskSpace), 3)
}

// logDirsScenario: two topics, records of known size produced to chosen
// partitions; every broker lists every replica it hosts in its data dir,
// sizes are 0 before any write, grow by at least the bytes written, agree
// across the replicas of a partition, followers' lag drains to 0, the
// topic filter keeps exactly what was asked, and v4 carries the
// filesystem figures.
func logDirsScenario(t *testing.T, c *testCluster, n int) {
	ctx := adminCtx(t)
	adm := c.admin()
	c.createTopic("logdirs-a", 2)
	c.createTopic("logdirs-b", 1)
	all := map[string][]int32{"logdirs-a": {0, 1}, "logdirs-b": {0}}

	// sizes describes every broker and returns broker -> topic/partition
	// -> replica, once every broker lists every replica (each topic has
	// min(3, n) = n replicas, so every broker hosts every partition).
	sizes := func(what string, ok func(map[int32]map[string]map[int32]kadm.DescribedLogDirPartition) bool) map[int32]map[string]map[int32]kadm.DescribedLogDirPartition {
		t.Helper()
		var got map[int32]map[string]map[int32]kadm.DescribedLogDirPartition
		eventually(t, testWait, func() bool {
			ds, err := adm.DescribeAllLogDirs(ctx, nil)
			if err != nil || len(ds) != n {
				return false
			}
			got = map[int32]map[string]map[int32]kadm.DescribedLogDirPartition{}
			for b, dirs := range ds {
				want := c.cfgs[uint64(b)].Node.DataDir
				if len(dirs) != 1 {
					t.Fatalf("broker %d: %d dirs, want 1", b, len(dirs))
				}
				d, found := dirs[want]
				if !found || d.Err != nil || d.Broker != b {
					t.Fatalf("broker %d: dirs %v, want one named %s without error", b, dirs, want)
				}
				wantTotal, wantUsable := int64(-1), int64(-1)
				if b == 1 {
					wantTotal, wantUsable = logDirsTotalBytes, logDirsUsableBytes
				}
				if d.TotalBytes != wantTotal || d.UsableBytes != wantUsable {
					t.Fatalf("broker %d: total %d usable %d, want %d %d", b, d.TotalBytes, d.UsableBytes, wantTotal, wantUsable)
				}
				got[b] = map[string]map[int32]kadm.DescribedLogDirPartition(d.Topics)
				for topic, parts := range all {
					for _, p := range parts {
						r, ok := d.Topics.Lookup(topic, p)
						if !ok {
							return false
						}
						if r.IsFuture || r.Size < 0 || r.OffsetLag < 0 || r.Dir != want || r.Broker != b {
							t.Fatalf("broker %d %s/%d: %+v", b, topic, p, r)
						}
					}
				}
			}
			return ok(got)
		}, "%s", what)
		return got
	}
	// settled: every replica of a partition has the same size, lag 0.
	settled := func(m map[int32]map[string]map[int32]kadm.DescribedLogDirPartition) bool {
		for topic, parts := range all {
			for _, p := range parts {
				for b := range m {
					r := m[b][topic][p]
					if r.OffsetLag != 0 || r.Size != m[1][topic][p].Size {
						return false
					}
				}
			}
		}
		return true
	}
	before := sizes("every replica listed, empty", func(m map[int32]map[string]map[int32]kadm.DescribedLogDirPartition) bool {
		for _, b := range m {
			for _, parts := range b {
				for _, r := range parts {
					if r.Size != 0 {
						return false
					}
				}
			}
		}
		return true
	})
	if len(before[1]["logdirs-a"]) != 2 || len(before[1]["logdirs-b"]) != 1 {
		t.Fatalf("broker 1 lists %v", before[1])
	}

	// Uncompressed, so that the bytes on disk follow the bytes written.
	cl := c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	const valueBytes = 1000
	produce := func(topic string, part int32, records int) {
		t.Helper()
		for i := range records {
			r := &kgo.Record{Topic: topic, Partition: part, Value: bytes.Repeat([]byte{byte('a' + i%26)}, valueBytes)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %s/%d: %v", topic, part, err)
			}
		}
	}
	produce("logdirs-a", 0, 20)
	produce("logdirs-a", 1, 5)
	mid := sizes("sizes after the first writes, settled", settled)
	a0, a1, b0 := mid[1]["logdirs-a"][0].Size, mid[1]["logdirs-a"][1].Size, mid[1]["logdirs-b"][0].Size
	if a0 < 20*valueBytes || a1 < 5*valueBytes || a0 < a1 || b0 != 0 || a0 > 2*20*valueBytes {
		t.Fatalf("sizes a/0 %d a/1 %d b/0 %d after 20 and 5 records of %d bytes", a0, a1, b0, valueBytes)
	}

	produce("logdirs-a", 1, 10)
	after := sizes("sizes after more writes to a/1, settled", settled)
	if got := after[1]["logdirs-a"][1].Size; got < a1+10*valueBytes {
		t.Fatalf("a/1 grew from %d to %d after 10 records of %d bytes", a1, got, valueBytes)
	}
	if after[1]["logdirs-a"][0].Size != a0 || after[1]["logdirs-b"][0].Size != 0 {
		t.Fatalf("untouched partitions changed: %v", after[1])
	}

	// The filter: named partitions only; unknown ones are simply absent.
	var ts kadm.TopicsSet
	ts.Add("logdirs-a", 1, 7)
	ts.Add("logdirs-missing", 0)
	for b := int32(1); b <= int32(n); b++ {
		dirs, err := adm.DescribeBrokerLogDirs(ctx, b, ts)
		if err != nil {
			t.Fatal(err)
		}
		d := dirs[c.cfgs[uint64(b)].Node.DataDir]
		if len(dirs) != 1 || len(d.Topics) != 1 || len(d.Topics["logdirs-a"]) != 1 {
			t.Fatalf("broker %d filtered: %+v", b, dirs)
		}
		if r, _ := d.Topics.Lookup("logdirs-a", 1); r.Size != after[b]["logdirs-a"][1].Size {
			t.Fatalf("broker %d filtered a/1 %+v, want size %d", b, r, after[b]["logdirs-a"][1].Size)
		}
	}
	logDirsVersions(t, c)
}

// logDirsVersions sends every served version on the wire: v1-3 decode
// without the filesystem figures (-1), v4 with them; an empty topic list
// describes the dir with no topics.
func logDirsVersions(t *testing.T, c *testCluster) {
	for v := int16(1); v <= 4; v++ {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = v
		resp := rawRoundTrip(t, c.addrs[1], req).(*kmsg.DescribeLogDirsResponse)
		if resp.ErrorCode != 0 || len(resp.Dirs) != 1 || resp.Dirs[0].Dir != c.cfgs[1].Node.DataDir || len(resp.Dirs[0].Topics) != 2 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		wantTotal := int64(-1)
		if v >= 4 {
			wantTotal = logDirsTotalBytes
		}
		if resp.Dirs[0].TotalBytes != wantTotal {
			t.Fatalf("v%d: total bytes %d, want %d", v, resp.Dirs[0].TotalBytes, wantTotal)
		}
		req.Topics = []kmsg.DescribeLogDirsRequestTopic{}
		resp = rawRoundTrip(t, c.addrs[1], req).(*kmsg.DescribeLogDirsResponse)
		if len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 0 {
			t.Fatalf("v%d empty topic list: %+v", v, resp)
		}
	}
}
