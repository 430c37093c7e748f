package node

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"go.uber.org/goleak"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batch builds a Kafka v2 record batch of n records with valueBytes-byte
// values; pid >= 0 makes it idempotent (producer id, epoch 0, baseSeq).
func batch(pid int64, baseSeq int32, n, valueBytes int, tsMs int64) []byte {
	var recs []byte
	for i := 0; i < n; i++ {
		var r []byte
		r = append(r, 0)
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, -1)       // null key
		r = binary.AppendVarint(r, int64(valueBytes))
		for j := 0; j < valueBytes; j++ {
			r = append(r, byte(int(baseSeq)+i+j))
		}
		r = binary.AppendVarint(r, 0)
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	const hdr = 61
	b := make([]byte, hdr, hdr+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint32(b[23:], uint32(n-1))
	be.PutUint64(b[27:], uint64(tsMs))
	be.PutUint64(b[35:], uint64(tsMs))
	epoch, seq := int16(0), baseSeq
	if pid < 0 {
		epoch, seq = -1, -1
	}
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[57:], uint32(n))
	b = append(b, recs...)
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// batchInfo is the header of one fetched batch.
type batchInfo struct {
	baseOffset int64
	pid        int64
	seq        int32
	records    int32
}

func splitBatches(t testing.TB, b []byte) []batchInfo {
	t.Helper()
	var out []batchInfo
	be := binary.BigEndian
	for len(b) > 0 {
		if len(b) < 61 {
			t.Fatalf("truncated batch of %d bytes", len(b))
		}
		size := int(be.Uint32(b[8:])) + 12
		out = append(out, batchInfo{baseOffset: int64(be.Uint64(b[0:])), pid: int64(be.Uint64(b[43:])),
			seq: int32(be.Uint32(b[53:])), records: int32(be.Uint32(b[57:]))})
		b = b[size:]
	}
	return out
}

// cluster is nodes on simulated disks and one simulated network.
type cluster struct {
	t     testing.TB
	net   *netio.Sim
	peers map[uint64]string
	mu    sync.Mutex // guards disks and nodes; never held while waiting
	disks map[uint64]*diskio.Sim
	nodes map[uint64]*Node
	auto  bool
	log   *slog.Logger
	tweak func(*Config) // nil: none; applied to every node's config
}

func hostName(id uint64) string { return fmt.Sprintf("n%d", id) }
func raftAddr(id uint64) string { return hostName(id) + ":7100" }

func newCluster(t testing.TB, seed int64, size int) *cluster {
	return newClusterWith(t, seed, size, nil)
}

// newClusterWith is newCluster with tweak applied to every node's config.
func newClusterWith(t testing.TB, seed int64, size int, tweak func(*Config)) *cluster {
	c := &cluster{t: t, log: captureRaftLog(t), net: netio.NewSim(seed), peers: map[uint64]string{},
		disks: map[uint64]*diskio.Sim{}, nodes: map[uint64]*Node{}, tweak: tweak}
	for id := uint64(1); id <= uint64(size); id++ {
		c.peers[id] = raftAddr(id)
		c.disks[id] = diskio.NewSim(seed + int64(id))
	}
	for id := uint64(1); id <= uint64(size); id++ {
		c.start(id)
	}
	return c
}

func (c *cluster) config(id uint64) Config {
	c.mu.Lock()
	disk := c.disks[id]
	c.mu.Unlock()
	cfg := Config{
		NodeID: id, RaftAddr: raftAddr(id), Host: hostName(id), Port: 9092, Peers: c.peers,
		Logger:  c.log,
		DataDir: "/data", FS: disk, Net: c.net.Host(hostName(id)), Clock: clock.Real(),
		RTTMillisecond: 10, ElectionRTT: 10, HeartbeatRTT: 1,
		Log:              plog.Options{SegmentBytesMax: 1 << 20},
		AutoCreateTopics: c.auto,
	}
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

func (c *cluster) start(id uint64) *Node {
	c.t.Helper()
	n, err := Start(context.Background(), c.config(id))
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	c.mu.Lock()
	c.nodes[id] = n
	c.mu.Unlock()
	return n
}

func (c *cluster) node(id uint64) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

func (c *cluster) ids() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortedIDs(c.nodes)
}

// crash follows the crash model: network, disk freeze, teardown, image.
func (c *cluster) crash(id uint64, mode diskio.CrashMode) {
	c.net.Crash(hostName(id))
	c.mu.Lock()
	disk, n := c.disks[id], c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	disk.Freeze()
	n.closeNow()
	image := disk.CrashImage(mode)
	c.mu.Lock()
	c.disks[id] = image
	c.mu.Unlock()
}

func (c *cluster) stop(id uint64) {
	n := c.node(id)
	c.mu.Lock()
	delete(c.nodes, id)
	c.mu.Unlock()
	if err := n.Close(context.Background()); err != nil {
		c.t.Errorf("close node %d: %v", id, err)
	}
}

func (c *cluster) closeAll() {
	for _, id := range c.ids() {
		c.stop(id)
	}
}

// waitFor polls cond every 50 ms of virtual time until it holds or the
// deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			if os.Getenv("CHRONIK_TEST_STACKS") != "" {
				buf := make([]byte, 1<<22)
				os.WriteFile(os.Getenv("CHRONIK_TEST_STACKS"), buf[:runtime.Stack(buf, true)], 0o644)
			}
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *cluster) createTopic(name string, partitions int32, rf int16) {
	c.t.Helper()
	n := c.node(c.ids()[0])
	waitFor(c.t, 20*time.Second, "brokers registered", func() bool {
		return len(n.view().Brokers) == len(c.peers)
	})
	var r TopicResult
	waitFor(c.t, 20*time.Second, "create topic", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r = n.CreateTopics(ctx, []TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: rf}}, false)[0]
		return r.ErrorCode == 0 || r.ErrorCode == kerr.TopicAlreadyExists.Code
	})
}

// leaderOf returns the live node that reports itself leader of the
// partition and is ready to serve it.
func (c *cluster) leaderOf(topic string, p int32) *Node {
	for _, id := range c.ids() {
		n := c.node(id)
		if n == nil {
			continue
		}
		pt, ok := partitionOf(n.view(), topic, p)
		if !ok {
			continue
		}
		if _, ok := n.leaderTerm(pt.ShardID); ok {
			return n
		}
	}
	return nil
}

// produce sends b to the partition's leader until it is acknowledged or
// the deadline passes; it returns the acknowledged result.
func (c *cluster) produce(topic string, p int32, b []byte, d time.Duration) ProduceResult {
	c.t.Helper()
	var res ProduceResult
	waitFor(c.t, d, "produce", func() bool {
		n := c.leaderOf(topic, p)
		if n == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res = n.Produce(ctx, topic, p, b)
		return res.ErrorCode == 0
	})
	return res
}

// fetchAll reads the whole partition from n's local replica.
func fetchAll(t testing.TB, n *Node, topic string, p int32) ([]byte, int64) {
	t.Helper()
	b, hw, code := tryFetchAll(t, n, topic, p)
	if code != 0 {
		t.Fatalf("node %d fetch %s/%d: code %d", n.ID(), topic, p, code)
	}
	return b, hw
}

func tryFetchAll(t testing.TB, n *Node, topic string, p int32) ([]byte, int64, int16) {
	var out []byte
	off := int64(0)
	for {
		r := n.FetchLocal(topic, p, off, 1<<20)
		if r.ErrorCode != 0 {
			return nil, -1, r.ErrorCode
		}
		if len(r.Records) == 0 {
			return out, r.HighWatermark, 0
		}
		out = append(out, r.Records...)
		bs := splitBatches(t, r.Records)
		last := bs[len(bs)-1]
		off = last.baseOffset + int64(last.records)
	}
}

// captureRaftLog keeps dragonboat's warnings and prints them only if t
// fails.
func captureRaftLog(t testing.TB) *slog.Logger {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	if path := os.Getenv("CHRONIK_TEST_LOG"); path != "" { // debugging: everything, to a file
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, f}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	raftlog.Install(logger, slog.LevelWarn)
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("dragonboat log (tail):\n%s", tail(buf.String(), 8000))
			mu.Unlock()
		}
	})
	return logger
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
