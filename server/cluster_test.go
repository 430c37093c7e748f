package server

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// testCluster is n in-process brokers on the OS disk (t.TempDir) and
// loopback TCP, with the real clock: the end-to-end harness for real
// Kafka clients (kgo, kadm).
type testCluster struct {
	t       testing.TB
	logs    *logSink
	mu      sync.Mutex
	brokers map[uint64]*Broker
	cfgs    map[uint64]BrokerConfig
	addrs   map[uint64]string // Kafka addresses
	// wrapLn, if set, wraps every Kafka listener (TLS).
	wrapLn func(net.Listener) net.Listener
}

// startCluster starts n brokers that form one cluster and waits until every
// broker's Metadata lists all n. mod, if given, adjusts each node's config.
func startCluster(t testing.TB, n int, mod func(*node.Config)) *testCluster {
	t.Helper()
	return startClusterWith(t, n, mod, nil)
}

// startClusterWith is startCluster with a hook that also adjusts each
// broker's config (for example BrokerConfig.Groups); bmod may be nil.
func startClusterWith(t testing.TB, n int, mod func(*node.Config), bmod func(*BrokerConfig)) *testCluster {
	t.Helper()
	return startClusterLn(t, n, mod, bmod, nil)
}

// startClusterLn is startClusterWith whose Kafka listeners are wrapped by
// wrapLn (nil: plain TCP).
func startClusterLn(t testing.TB, n int, mod func(*node.Config), bmod func(*BrokerConfig), wrapLn func(net.Listener) net.Listener) *testCluster {
	t.Helper()
	c := &testCluster{t: t, logs: &logSink{}, brokers: map[uint64]*Broker{}, cfgs: map[uint64]BrokerConfig{}, addrs: map[uint64]string{}, wrapLn: wrapLn}
	raftlog.Install(c.logs.logger(), slog.LevelWarn)
	peers := map[uint64]string{}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= uint64(n); id++ {
		peers[id] = "127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
		ln := listenTestPort(t)
		lns[id] = ln
		c.addrs[id] = ln.Addr().String()
	}
	dir := t.TempDir()
	for id := uint64(1); id <= uint64(n); id++ {
		port := int32(lns[id].Addr().(*net.TCPAddr).Port)
		nc := node.Config{
			NodeID: id, RaftAddr: peers[id], Host: "127.0.0.1", Port: port, Peers: peers,
			DataDir: fmt.Sprintf("%s/n%d", dir, id), FS: diskio.NewOS(), Net: netio.NewOS(),
			Clock: clock.Real(), AutoCreateTopics: true, DefaultPartitions: 1,
		}
		if mod != nil {
			mod(&nc)
		}
		bc := BrokerConfig{Node: nc, Logger: c.logs.logger().With("node", id)}
		if bmod != nil {
			bmod(&bc)
		}
		c.cfgs[id] = bc
		c.start(id, lns[id])
	}
	t.Cleanup(func() {
		c.closeAll()
		if t.Failed() {
			t.Logf("cluster log:\n%s", c.logs.String())
		}
	})
	c.waitBrokers(n)
	return c
}

// Brokers in tests listen on ports drawn from below the kernel's ephemeral
// range (32768-60999 on Linux): a port picked with ":0" is ephemeral, and
// once a stopped broker releases it, any outgoing connection of a test
// running in parallel may take it before the broker restarts on it.
// [20000, 26000) is this package's; server/cmd/chronik uses [26000, 32000).
const (
	testPortLow  = 20000
	testPortHigh = 26000
)

// handedOut holds every port listenTestPort has returned in this process:
// a port picked, closed and passed on as an address (freeTCPPort) is free
// again until its broker binds it, and must not be picked twice (two
// nodes once got the same Raft address).
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// listenTestPort listens on a free port of [testPortLow, testPortHigh)
// that no earlier call returned.
func listenTestPort(t testing.TB) net.Listener {
	t.Helper()
	for range 200 {
		port := testPortLow + rand.IntN(testPortHigh-testPortLow)
		handedOut.Lock()
		taken := handedOut.ports[port]
		handedOut.ports[port] = true
		handedOut.Unlock()
		if taken {
			continue
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			return l
		}
	}
	t.Fatal("no free port for a test broker")
	return nil
}

func freeTCPPort(t testing.TB) int {
	t.Helper()
	l := listenTestPort(t)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (c *testCluster) start(id uint64, ln net.Listener) {
	c.t.Helper()
	cfg := c.cfgs[id]
	if c.wrapLn != nil {
		ln = c.wrapLn(ln)
	}
	cfg.Listener = ln
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	b, err := StartBroker(ctx, cfg)
	if err != nil {
		c.t.Fatalf("node %d: %v", id, err)
	}
	c.mu.Lock()
	c.brokers[id] = b
	c.mu.Unlock()
}

// stop shuts broker id down cleanly (the SIGTERM path).
func (c *testCluster) stop(id uint64) {
	c.t.Helper()
	c.mu.Lock()
	b := c.brokers[id]
	delete(c.brokers, id)
	c.mu.Unlock()
	if b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		c.t.Errorf("node %d shutdown: %v", id, err)
	}
}

// restart starts a stopped broker again on its data and its old address.
func (c *testCluster) restart(id uint64) {
	c.t.Helper()
	ln, err := net.Listen("tcp", c.addrs[id])
	if err != nil {
		c.t.Fatalf("node %d: relisten: %v", id, err)
	}
	c.start(id, ln)
}

func (c *testCluster) closeAll() {
	c.mu.Lock()
	ids := make([]uint64, 0, len(c.brokers))
	for id := range c.brokers {
		ids = append(ids, id)
	}
	c.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		c.stop(id)
	}
}

func (c *testCluster) broker(id uint64) *Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.brokers[id]
}

// seeds lists every broker's Kafka address.
func (c *testCluster) seeds() []string {
	var s []string
	for id := uint64(1); id <= uint64(len(c.addrs)); id++ {
		s = append(s, c.addrs[id])
	}
	return s
}

// client is a kgo client seeded with every broker; closed at cleanup.
func (c *testCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

func (c *testCluster) admin() *kadm.Client { return kadm.NewClient(c.client()) }

// waitBrokers waits until every running broker's Metadata lists n brokers.
func (c *testCluster) waitBrokers(n int) {
	c.t.Helper()
	eventually(c.t, testWait, func() bool {
		for id := range c.addrs {
			b := c.broker(id)
			if b == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			v := b.Node.Metadata(ctx, []string{})
			cancel()
			if len(v.Brokers) != n {
				return false
			}
		}
		return true
	}, "every broker lists %d brokers", n)
	c.waitGroupShards()
}

// waitGroupShards waits until every group shard has a leader that every
// running broker knows and that is ready to coordinate (so that group
// requests of raw tests find their coordinator at once).
func (c *testCluster) waitGroupShards() {
	c.t.Helper()
	eventually(c.t, testWait, func() bool {
		for id := range c.addrs {
			b := c.broker(id)
			if b == nil {
				continue
			}
			shards := b.Node.GroupShardCount()
			if shards == 0 {
				return false
			}
			for idx := range int32(shards) {
				l := b.Node.GroupShardLeader(idx)
				lb := c.broker(uint64(max(l, 0)))
				if l < 0 || lb == nil {
					return false
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, ok := lb.Node.GroupShardTerm(ctx, idx)
				cancel()
				if !ok {
					return false
				}
			}
		}
		return true
	}, "group shards led")
}

// eventually polls cond every 20 ms until it holds or within runs out. It
// is for conditions the cluster reaches by itself (elections, replication),
// which no channel announces; the bound makes a hang a failure.
func eventually(t testing.TB, within time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: "+what, append([]any{within}, args...)...)
		}
		<-tick.C
	}
}

// TestClusterHarness: one and three brokers start, every broker answers a
// real client's ApiVersions and lists all brokers, and they stop cleanly.
func TestClusterHarness(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			c := startCluster(t, n, nil)
			for id := uint64(1); id <= uint64(n); id++ {
				cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[id]))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), testWait)
				_, err = cl.Request(ctx, kmsg.NewPtrApiVersionsRequest())
				cancel()
				cl.Close()
				if err != nil {
					t.Fatalf("node %d: ApiVersions: %v", id, err)
				}
			}
			// A clean restart of every broker on its data keeps records.
			cl := c.client(kgo.DefaultProduceTopic("harness"), kgo.AllowAutoTopicCreation())
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			if err := cl.ProduceSync(ctx, kgo.StringRecord("survives")).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			cl.Close()
			for id := uint64(1); id <= uint64(n); id++ {
				c.stop(id)
			}
			for id := uint64(1); id <= uint64(n); id++ {
				c.restart(id)
			}
			c.waitBrokers(n)
			cons := c.client(kgo.ConsumeTopics("harness"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			fs := cons.PollFetches(ctx)
			if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "survives" {
				t.Fatalf("after restart: records %v, errors %v", recs, fs.Errors())
			}
		})
	}
}
