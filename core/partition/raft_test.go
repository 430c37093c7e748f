package partition

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/plugin/tan"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

const partShard = 7

// raftCluster runs n NodeHosts hosting one partition shard, inside a
// synctest bubble, on diskio.Sim disks and a netio.Sim network (the recipe
// of sim/raftcrash_test.go).
type raftCluster struct {
	t     *testing.T
	n     uint64
	net   *netio.Sim
	snap  config.Config // SnapshotEntries, CompactionOverhead
	mu    sync.Mutex    // guards the maps; never held while waiting
	disks map[uint64]*diskio.Sim
	hosts map[uint64]*dragonboat.NodeHost
	regs  map[uint64]*Registry
	logs  *lockedBuffer // every replica's slog output
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newRaftCluster(t *testing.T, n uint64, seed int64, snap config.Config) *raftCluster {
	c := &raftCluster{
		t: t, n: n, net: netio.NewSim(seed), snap: snap,
		disks: map[uint64]*diskio.Sim{}, hosts: map[uint64]*dragonboat.NodeHost{},
		regs: map[uint64]*Registry{}, logs: &lockedBuffer{},
	}
	for id := uint64(1); id <= n; id++ {
		c.disks[id] = diskio.NewSim(seed*10 + int64(id))
		c.start(id)
	}
	return c
}

func nodeName(id uint64) string { return fmt.Sprintf("n%d", id) }
func nodeAddr(id uint64) string { return nodeName(id) + ":7100" }

func (c *raftCluster) members() map[uint64]string {
	m := map[uint64]string{}
	for id := uint64(1); id <= c.n; id++ {
		m[id] = nodeAddr(id)
	}
	return m
}

func (c *raftCluster) start(id uint64) {
	c.t.Helper()
	c.mu.Lock()
	disk := c.disks[id]
	c.mu.Unlock()
	logDB := config.GetTinyMemLogDBConfig()
	logDB.KVWriteBufferSize, logDB.Shards = 1<<20, 1
	nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
		NodeHostDir: "/data/nodehost", RTTMillisecond: 10, RaftAddress: nodeAddr(id),
		Expert: config.ExpertConfig{
			FS:               diskio.NewVFS(disk),
			TransportFactory: netio.NewTransportFactory(c.net.Host(nodeName(id))),
			LogDBFactory:     tan.Factory,
			LogDB:            logDB,
		},
	})
	if err != nil {
		c.t.Fatalf("node %d: NewNodeHost: %v", id, err)
	}
	reg := NewRegistry()
	opts := testOptions(disk)
	opts.Clock = clock.NewSim(0, 0)
	opts.Logger = slog.New(slog.NewTextHandler(c.logs, nil)).With("node", id)
	rc := config.Config{
		ReplicaID: id, ShardID: partShard, ElectionRTT: 10, HeartbeatRTT: 1,
		CheckQuorum: true, PreVote: true,
		SnapshotEntries: c.snap.SnapshotEntries, CompactionOverhead: c.snap.CompactionOverhead,
	}
	if err := nh.StartOnDiskReplica(c.members(), false, Factory(opts, reg), rc); err != nil {
		nh.Close()
		c.t.Fatalf("node %d: StartOnDiskReplica: %v", id, err)
	}
	c.mu.Lock()
	c.hosts[id], c.regs[id] = nh, reg
	c.mu.Unlock()
}

// crash: network cut, disk frozen, node torn down, restart image built.
func (c *raftCluster) crash(id uint64, mode diskio.CrashMode) {
	c.net.Crash(nodeName(id))
	c.mu.Lock()
	disk, nh := c.disks[id], c.hosts[id]
	delete(c.hosts, id)
	c.mu.Unlock()
	disk.Freeze()
	nh.Close()
	c.mu.Lock()
	c.disks[id] = disk.CrashImage(mode)
	c.mu.Unlock()
}

func (c *raftCluster) host(id uint64) *dragonboat.NodeHost {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[id]
}

func (c *raftCluster) closeAll() {
	for id := uint64(1); id <= c.n; id++ {
		if nh := c.host(id); nh != nil {
			nh.Close()
		}
	}
}

// leader waits for a live leader and returns it with its term.
func (c *raftCluster) leader() (uint64, uint64) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for id := uint64(1); id <= c.n; id++ {
			if nh := c.host(id); nh != nil {
				if l, term, ok, err := nh.GetLeaderID(partShard); err == nil && ok && c.host(l) != nil {
					return l, term
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no leader within 20 s of virtual time")
	return 0, 0
}

// propose sends one Produce through node id; an error means the outcome is
// unknown.
func (c *raftCluster) propose(id uint64, term uint64, batches ...tb) (ProduceResult, error) {
	nh := c.host(id)
	if nh == nil {
		return ProduceResult{}, errors.New("node down")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := nh.SyncPropose(ctx, nh.GetNoOPSession(partShard), produceCmd(int32(term), batches...))
	if err != nil {
		return ProduceResult{}, err
	}
	return DecodeProduceResult(res)
}

// produce retries through the current leader until the batch is applied.
func (c *raftCluster) produce(batches ...tb) ProduceResult {
	c.t.Helper()
	for range 50 {
		l, term := c.leader()
		r, err := c.propose(l, term, batches...)
		if err == nil {
			return r
		}
		time.Sleep(100 * time.Millisecond) // virtual time: retry backoff
	}
	c.t.Fatal("produce: no success after 50 attempts")
	return ProduceResult{}
}

// replicaState reads node id's replica after a linearizable read barrier.
func (c *raftCluster) state(id uint64) (int64, []byte) {
	c.t.Helper()
	for range 100 {
		nh := c.host(id)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := nh.SyncRead(ctx, partShard, QueryHighWatermark)
		cancel()
		if err == nil {
			c.mu.Lock()
			rep, ok := c.regs[id].Get(partShard)
			c.mu.Unlock()
			if !ok {
				c.t.Fatalf("node %d: replica not registered", id)
			}
			if rep.HighWatermark() < v.(int64) {
				c.t.Fatalf("node %d: hw %d below the read barrier's %d", id, rep.HighWatermark(), v.(int64))
			}
			return rep.HighWatermark(), fetchAll(c.t, rep)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("node %d: no linearizable read", id)
	return 0, nil
}

func quietRaft(t *testing.T) {
	var buf lockedBuffer
	raftlog.Install(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dragonboat log:\n%s", buf.String())
		}
	})
}

func TestRaftOneNode(t *testing.T) {
	quietRaft(t)
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 1, 1, config.Config{SnapshotEntries: 10, CompactionOverhead: 2})
		defer c.closeAll()
		var want int64
		for i := range 25 {
			r := c.produce(tb{pid: 3, epoch: 0, seq: int32(2 * i), records: 2})
			if r.ErrorCode != 0 || r.BaseOffset != want {
				t.Fatalf("produce %d: %+v, want base %d", i, r, want)
			}
			want += 2
		}
		r := c.produce(tb{pid: 3, epoch: 0, seq: 48, records: 2})
		if !r.Duplicate || r.BaseOffset != 48 {
			t.Fatalf("retry: %+v", r)
		}
		if r := c.produce(tb{pid: 3, epoch: 0, seq: 60}); r.ErrorCode == 0 {
			t.Fatalf("gap accepted: %+v", r)
		}
		// Restart on the same disk: the state survives.
		c.crash(1, diskio.CrashSyncedOnly)
		c.start(1)
		if r := c.produce(tb{pid: 3, epoch: 0, seq: 48, records: 2}); !r.Duplicate || r.BaseOffset != 48 {
			t.Fatalf("retry after restart: %+v", r)
		}
		if hw, _ := c.state(1); hw != want {
			t.Fatalf("hw %d, want %d", hw, want)
		}
	})
}

// TestRaftThreeNodes: an idempotent batch whose first attempt was cut by
// a leader crash is retried until acknowledged, and once more: it is in the
// log exactly once and the retries answer its offset. A follower that was
// down while the others compacted their Raft logs catches up through a
// streamed snapshot. Every replica ends with identical Fetch output.
func TestRaftThreeNodes(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		for _, mode := range []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashTornPrefix} {
			t.Run(fmt.Sprintf("seed=%d/%v", seed, mode), func(t *testing.T) {
				quietRaft(t)
				synctest.Test(t, func(t *testing.T) { runThreeNodes(t, seed, mode) })
			})
		}
	}
}

func runThreeNodes(t *testing.T, seed int64, mode diskio.CrashMode) {
	c := newRaftCluster(t, 3, seed, config.Config{SnapshotEntries: 8, CompactionOverhead: 2})
	defer c.closeAll()
	const pid = 11
	seq, sent := int32(0), 0
	send := func() ProduceResult {
		r := c.produce(tb{pid: pid, seq: seq, records: 3, seed: byte(seq)})
		if r.ErrorCode != 0 || r.Duplicate {
			t.Fatalf("seq %d: %+v", seq, r)
		}
		seq += 3
		sent++
		return r
	}
	for range 10 {
		send()
		c.produce(tb{pid: -1, records: 1})
	}

	// The leader crashes while the batch is in flight.
	l, term := c.leader()
	x := tb{pid: pid, seq: seq, records: 3, seed: byte(seq)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.propose(l, term, x) // outcome unknown
	}()
	time.Sleep(time.Duration(seed) * 3 * time.Millisecond)
	c.crash(l, mode)
	<-done
	first := c.produce(x)
	again := c.produce(x)
	if first.ErrorCode != 0 || !again.Duplicate || again.BaseOffset != first.BaseOffset || again.LastOffset != first.LastOffset {
		t.Fatalf("retries of the in-flight batch: %+v then %+v", first, again)
	}
	seq += 3
	sent++
	c.start(l)
	send()

	// A follower misses many entries; the others snapshot and compact.
	l, _ = c.leader()
	f := l%3 + 1
	c.crash(f, mode)
	for range 30 {
		send()
	}
	// Snapshot and compact the live Raft logs completely, so the follower
	// can only catch up from a streamed snapshot.
	for id := uint64(1); id <= 3; id++ {
		if nh := c.host(id); nh != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = nh.SyncRequestSnapshot(ctx, partShard, dragonboat.SnapshotOption{OverrideCompactionOverhead: true})
			cancel()
		}
	}
	time.Sleep(time.Second) // virtual time: let the compaction run
	c.start(f)
	send()

	var hw0 int64
	var data0 []byte
	for id := uint64(1); id <= 3; id++ {
		hw, data := c.state(id)
		if id == 1 {
			hw0, data0 = hw, data
			continue
		}
		if hw != hw0 || !bytes.Equal(data, data0) {
			t.Fatalf("node %d: hw %d and %d bytes, node 1: hw %d and %d bytes", id, hw, len(data), hw0, len(data0))
		}
	}
	// Every sequence of pid is in the log exactly once, in order.
	hdrs, err := parseBatchHeaders(data0, nil)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int32
	for _, h := range hdrs {
		if h.producerID == pid {
			seqs = append(seqs, h.baseSequence)
		}
	}
	for i, s := range seqs {
		if s != int32(3*i) {
			t.Fatalf("producer sequences in the log: %v", seqs)
		}
	}
	if len(seqs) != sent {
		t.Fatalf("%d batches of the producer in the log, sent %d", len(seqs), sent)
	}
	if n := strings.Count(c.logs.String(), "recovered from snapshot"); n == 0 {
		t.Fatalf("no replica recovered from a streamed snapshot")
	} else {
		t.Logf("seed %d %v: hw %d, %d snapshot recoveries", seed, mode, hw0, n)
	}
}
