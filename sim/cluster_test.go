package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
	"github.com/chronik-go/chronik/server"
)

// Addresses: node i is host "b<i>", Raft on :7100, Kafka on :9092.
const (
	kafkaPort       = 9092
	nodeStartWait   = 30 * time.Second
	nodeShutdownMax = 5 * time.Second
)

func brokerHost(id uint64) string { return fmt.Sprintf("b%d", id) }
func brokerRaft(id uint64) string { return brokerHost(id) + ":7100" }
func brokerAddr(id uint64) string { return fmt.Sprintf("%s:%d", brokerHost(id), kafkaPort) }

// simNode is one Chronik process slot: its disk survives restarts (or is
// replaced by a crash image), its broker is nil while it is down.
type simNode struct {
	// life is a one-slot semaphore held across each lifecycle operation
	// (start, crash, stop) so that overlapping fault lanes never run two
	// incarnations on one disk. A channel, not a mutex: waiting on it is
	// durably blocked, so virtual time goes on.
	life     chan struct{}
	id       uint64
	disk     *diskio.Sim
	clock    *clock.Sim
	broker   *server.Broker
	starts   int
	faults   diskio.Faults // applied to every incarnation's disk until cleared
	snapshot uint64        // SnapshotEntries (drawn per node)
	// fenced is the incarnation (starts) that a storage failure stopped
	// (0: none); its crash is completed by failStop's goroutine.
	fenced int
}

// cluster is the nodes of one run, on one simulated network, inside one
// synctest bubble. mu guards nodes' mutable fields and is never held while
// waiting on anything.
type cluster struct {
	seed  int64
	topo  topology
	net   *netio.Sim
	tr    *trace
	log   *slog.Logger
	logs  *logBuffer
	peers map[uint64]string

	// linkBase is every link's rule when no fault is active: no real
	// network has zero latency, and with zero latency a client and a
	// broker that answer each other at once (an error retried without
	// backoff) would spin without virtual time ever advancing.
	linkBase netio.LinkRule

	// bg counts the goroutines that complete fail-stop crashes; the run
	// waits for them before its bubble ends.
	bg sync.WaitGroup

	mu        sync.Mutex
	nodes     map[uint64]*simNode
	hosts     []string // every network host of the run, in creation order
	brokenAck bool     // the broken variant: acknowledge before commit
	// brokenGroup names a planted group bug (brokenGroup* in
	// workload_group_test.go); "" runs correct code.
	brokenGroup string
	lyingSync   bool // the broken disk: fsync reports success, makes nothing durable
	fine        bool // trace every network operation (nettrace_test.go)
}

// logBuffer keeps every node's and dragonboat's log lines of a run (warn
// and above) for the failure report; bounded.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const logBufferBytesMax = 4 << 20

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len()+len(p) <= logBufferBytesMax {
		l.buf.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newCluster(seed int64, topo topology, tr *trace) *cluster {
	logs := &logBuffer{}
	c := &cluster{
		seed: seed, topo: topo, tr: tr, logs: logs,
		log:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: simLogLevel()})),
		net:   netio.NewSim(subSeed(seed, "net")),
		peers: map[uint64]string{}, nodes: map[uint64]*simNode{},
	}
	lrng := newRand(seed, "links")
	// No jitter on the base rule: a constant delay (plus netio.Sim's
	// per-link skew) keeps the quiet network's timing a function of the
	// seed; jitter, drawn from each connection's stream in write order,
	// comes with the flaky-link fault.
	c.linkBase = netio.LinkRule{Delay: time.Duration(100+lrng.IntN(1900)) * time.Microsecond}
	tr.add(evNode, "links delay=%v jitter=%v", c.linkBase.Delay, c.linkBase.Jitter)
	for id := uint64(1); id <= uint64(topo.nodes); id++ {
		c.hosts = append(c.hosts, brokerHost(id))
	}
	rng := newRand(seed, "clock")
	for id := uint64(1); id <= uint64(topo.nodes); id++ {
		c.peers[id] = brokerRaft(id)
		offset := time.Duration(rng.Int64N(int64(2*topo.clockOffsetMax+1))) - topo.clockOffsetMax
		drift := int64(0)
		if topo.clockDriftPPMMax > 0 {
			drift = rng.Int64N(2*topo.clockDriftPPMMax+1) - topo.clockDriftPPMMax
		}
		c.nodes[id] = &simNode{
			life: make(chan struct{}, 1), id: id, disk: diskio.NewSim(subSeed(seed, fmt.Sprintf("disk-%d", id))),
			clock: clock.NewSim(offset, drift), snapshot: topo.snapshotEntries,
		}
		tr.add(evNode, "b%d clock offset=%v drift=%dppm", id, offset, drift)
	}
	return c
}

// broker returns node id's running broker, or nil.
func (c *cluster) broker(id uint64) *server.Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id].broker
}

func (c *cluster) ids() []uint64 {
	ids := make([]uint64, 0, c.topo.nodes)
	for id := uint64(1); id <= uint64(c.topo.nodes); id++ {
		ids = append(ids, id)
	}
	return ids
}

func (c *cluster) up() []uint64 {
	var out []uint64
	for _, id := range c.ids() {
		if c.broker(id) != nil {
			out = append(out, id)
		}
	}
	return out
}

func (c *cluster) config(n *simNode) node.Config {
	return node.Config{
		NodeID: n.id, RaftAddr: brokerRaft(n.id), Host: brokerHost(n.id), Port: kafkaPort, Peers: c.peers,
		DataDir: "/data", FS: n.disk, Net: c.network(brokerHost(n.id)), Clock: n.clock,
		Logger:          c.log.With("node", n.id),
		SnapshotEntries: n.snapshot, CompactionOverhead: n.snapshot / 2,
		// Small, so that byte-driven snapshots (raftlogtrim.go) happen
		// under faults too: 1 KiB in 1 seed of 3 (snapshotPace).
		RaftLogBytes:   c.topo.raftLogBytes,
		RTTMillisecond: c.topo.rttMs, ElectionRTT: 10, HeartbeatRTT: 1,
		Log: plog.Options{SegmentBytesMax: 64 << 10},
		// Small Raft log segments: rolls, relocations and deletions happen.
		RaftLogSegmentBytes:  256 << 10,
		RetentionInterval:    c.topo.retention.checkEvery,
		GroupShards:          c.topo.groupShards,
		UnsafeAckBeforeApply: c.brokenAck,
		OnStorageFailure:     c.failStop(n.id, n.starts, n.disk),
	}
}

// start starts node id on its current disk. A failure to start is an
// event, not a test failure: the scheduler retries and the heal phase
// judges liveness.
func (c *cluster) start(id uint64) error {
	defer c.lock(id)()
	c.mu.Lock()
	n := c.nodes[id]
	if n.broker != nil {
		c.mu.Unlock()
		return nil
	}
	n.starts++
	n.disk.SetFaults(c.withBroken(n.faults))
	cfg := c.config(n)
	c.mu.Unlock()
	ln, err := c.network(brokerHost(id)).Listen(brokerAddr(id))
	if err != nil {
		return fmt.Errorf("b%d listen: %w", id, err)
	}
	b, err := startBroker(cfg, c.groupOptions(), ln)
	if err != nil {
		c.tr.add(evNode, "b%d start failed: %v", id, err)
		return err
	}
	c.mu.Lock()
	fenced := n.fenced == n.starts
	if !fenced {
		n.broker = b
	}
	c.mu.Unlock()
	if fenced {
		// A storage failure stopped this incarnation while it started:
		// it is cut off and its disk frozen; wind it down (failStop's
		// goroutine, waiting for this start to end, builds the image).
		c.shutdown(b)
		return fmt.Errorf("b%d stopped by a storage failure while starting", id)
	}
	c.tr.add(evNode, "b%d started", id)
	return nil
}

// failStop is node.Config.OnStorageFailure of node id's incarnation inc on
// disk: what chronik serve does by exiting (storageFailure in
// server/cmd/chronik), done the simulator's way. The failing call is still
// on the stack, so the crash is done in two halves: here, at once, the
// crash instant (network cut, disk frozen, the disk's faults cleared so
// that the retried call and the rest of the wind-down succeed unseen);
// then, on a goroutine that waits for the node's lifecycle lock, the
// teardown and the restart image (the lane that injected the fault
// restarts the node when the fault ends).
func (c *cluster) failStop(id uint64, inc int, disk *diskio.Sim) func(error) {
	return func(err error) {
		c.mu.Lock()
		n := c.nodes[id]
		current := n.starts == inc && n.disk == disk && n.fenced != inc
		var b *server.Broker
		if current {
			n.fenced = inc
			b, n.broker = n.broker, nil
		}
		c.mu.Unlock()
		if current {
			c.net.Crash(brokerHost(id))
		}
		disk.Freeze()
		disk.SetFaults(diskio.Faults{})
		if !current {
			return // an incarnation already crashing or crashed: its disk is frozen
		}
		mode := crashModes[int(subSeed(c.seed, fmt.Sprintf("failstop-%d-%d", id, inc))%int64(len(crashModes)))]
		c.tr.add(evNode, "b%d fail-stop on a storage failure (%v): %v", id, mode, err)
		c.bg.Add(1)
		go func() {
			defer c.bg.Done()
			defer c.lock(id)()
			c.shutdown(b)
			c.replaceDisk(id, disk, mode)
		}()
	}
}

// shutdown tears down b (nil: nothing), bounded by nodeShutdownMax.
func (c *cluster) shutdown(b *server.Broker) error {
	if b == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), nodeShutdownMax)
	defer cancel()
	return b.Shutdown(ctx)
}

// replaceDisk puts the crash image of disk (frozen) in node id's slot,
// unless the slot holds another disk by now.
func (c *cluster) replaceDisk(id uint64, disk *diskio.Sim, mode diskio.CrashMode) {
	img := disk.CrashImage(mode)
	c.mu.Lock()
	n := c.nodes[id]
	replaced := n.disk == disk
	if replaced {
		n.disk = img
	}
	c.mu.Unlock()
	if replaced {
		c.tr.add(evNode, "b%d crashed (%v)", id, mode)
	}
}

// crash is a power cut by the crash model: network first, then the disk
// is frozen, then the process is torn down, then the restart image is
// built with mode. The node stays down until start.
func (c *cluster) crash(id uint64, mode diskio.CrashMode) {
	defer c.lock(id)()
	c.mu.Lock()
	n := c.nodes[id]
	b, disk := n.broker, n.disk
	n.broker = nil
	c.mu.Unlock()
	c.net.Crash(brokerHost(id))
	disk.Freeze()
	// Nothing the process does now reaches disk or network; its wind-down
	// runs on a healthy disk so that an injected fault cannot fail it.
	disk.SetFaults(diskio.Faults{})
	_ = c.shutdown(b)
	c.replaceDisk(id, disk, mode)
}

// stop is a clean shutdown (the SIGTERM path): the disk is kept as is.
func (c *cluster) stop(id uint64) {
	defer c.lock(id)()
	c.mu.Lock()
	n := c.nodes[id]
	b := n.broker
	n.broker = nil
	c.mu.Unlock()
	if b == nil {
		return
	}
	err := c.shutdown(b)
	c.tr.add(evNode, "b%d stopped cleanly (err=%v)", id, err != nil)
}

// setDiskFaults sets node id's disk faults (kept across its restarts).
func (c *cluster) setDiskFaults(id uint64, f diskio.Faults) {
	c.mu.Lock()
	n := c.nodes[id]
	n.faults = f
	disk := n.disk
	c.mu.Unlock()
	disk.SetFaults(c.withBroken(f))
}

// raftLogPattern matches the Raft log's files (the WAL's segments,
// core/wal; partition segments end in .log).
const raftLogPattern = "*.wal"

// withBroken adds the broken disk of the lying-fsync variant to f.
func (c *cluster) withBroken(f diskio.Faults) diskio.Faults {
	if c.lyingSync {
		// Only the Raft log's files (the WAL's *.wal segments) lie:
		// the acknowledgement's durability, nothing else. Every other file stays durable, so the nodes
		// restart and the loss shows as missing records.
		f.LyingSync, f.LyingSyncPattern = true, raftLogPattern
	}
	return f
}

// setRunningDiskFaults sets faults on node id's current disk only: a
// restart comes up without them.
func (c *cluster) setRunningDiskFaults(id uint64, f diskio.Faults) {
	c.mu.Lock()
	disk := c.nodes[id].disk
	c.mu.Unlock()
	disk.SetFaults(c.withBroken(f))
}

// diskUsed returns the bytes on node id's current disk.
func (c *cluster) diskUsed(id uint64) int64 {
	c.mu.Lock()
	disk := c.nodes[id].disk
	c.mu.Unlock()
	return disk.UsedBytes()
}

// closeAll stops every running node, in id order (teardown, not a check).
func (c *cluster) closeAll() {
	for _, id := range c.ids() {
		c.stop(id)
	}
}

// host returns the network endpoint of a named host, giving every link
// between it and the hosts before it the base rule.
func (c *cluster) host(name string) netio.Network {
	c.mu.Lock()
	known := false
	for _, h := range c.hosts {
		known = known || h == name
	}
	if !known {
		c.hosts = append(c.hosts, name)
	}
	c.mu.Unlock()
	if !known {
		c.applyLinkBase()
	}
	return c.network(name)
}

// applyLinkBase gives every link between known hosts the base rule
// (after netio.Sim.Heal, which clears every rule).
func (c *cluster) applyLinkBase() {
	c.mu.Lock()
	hosts := slices.Clone(c.hosts)
	c.mu.Unlock()
	for _, a := range hosts {
		for _, b := range hosts {
			if a != b {
				c.net.SetLink(a, b, c.linkBase)
			}
		}
	}
}

// clientHosts lists the hosts that are not brokers.
func (c *cluster) clientHosts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.hosts[c.topo.nodes:])
}

// startBroker is server.StartBroker that turns a panic on the starting
// goroutine into an error: a node whose disk image is broken must fail to
// start (fail-stop), not take the whole simulation down. The panic is
// reported as such; it is a finding in itself.
func startBroker(cfg node.Config, gopts group.Options, ln net.Listener) (b *server.Broker, err error) {
	defer func() {
		if r := recover(); r != nil {
			ln.Close()
			b, err = nil, fmt.Errorf("%w: %v", errStartPanic, r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), nodeStartWait)
	defer cancel()
	return server.StartBroker(ctx, server.BrokerConfig{Node: cfg, Groups: gopts, Listener: ln, Logger: cfg.Logger})
}

var errStartPanic = errors.New("sim: StartBroker panicked")

// lock takes node id's lifecycle semaphore and returns its release.
func (c *cluster) lock(id uint64) (unlock func()) {
	c.mu.Lock()
	life := c.nodes[id].life
	c.mu.Unlock()
	life <- struct{}{}
	return func() { <-life }
}
