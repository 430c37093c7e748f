package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/core/wal"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// Bounds of the background loops.
const (
	leaderEventsMax      = 1024 // buffered leader events; beyond, a full resync
	leaderResyncEvery    = time.Second
	membershipEvery      = time.Second
	proposeTimeout       = 3 * time.Second
	registerBackoffMin   = 100 * time.Millisecond
	registerBackoffMax   = 2 * time.Second
	metaProposeTriesMax  = 50
	removeDataTimeout    = 5 * time.Second
	reconcileRetryEvery  = 500 * time.Millisecond
	transferWaitMax      = 2 * time.Second
	transferPollInterval = 50 * time.Millisecond
)

// Node is one Chronik node: a dragonboat NodeHost holding a replica of the
// controller shard and of every partition shard placed on it. See doc.go.
type Node struct {
	cfg   Config
	log   *slog.Logger
	nh    *dragonboat.NodeHost
	meta  atomic.Pointer[meta.StateMachine]
	reg   *partition.Registry
	popts partition.Options
	pf    sm.CreateOnDiskStateMachineFunc

	events   chan raftio.LeaderInfo
	overflow atomic.Bool
	// isr follows the followers of the partition shards led here (isr.go).
	isr *isrTracker
	// stages: the produce path's stage metrics (stages.go).
	stages Stages

	ctx    context.Context // cancelled by Close; parent of background work
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	// controllerCaughtUp: a SyncController succeeded since start (awaitController).
	controllerCaughtUp atomic.Bool
	// groupDemand: a group request found no group shards
	// (ensureGroupShards then creates them at once).
	groupDemand atomic.Bool

	// mu guards the fields below. Never held while waiting on anything.
	mu sync.Mutex
	// ready[shard] is the highest term in which this node, as leader,
	// completed the read barrier (see doc.go, "Leader readiness").
	ready map[uint64]uint64
	// extraPeers are nodes added with AddNode after start.
	extraPeers map[uint64]string
	// pidNext, pidEnd: the cached producer-id block [pidNext, pidEnd).
	pidNext, pidEnd int64
	// hosted: shards the reconciler has started (reconciler-owned writes).
	hosted map[uint64]bool
}

type leaderListener struct {
	ch       chan raftio.LeaderInfo
	overflow *atomic.Bool
}

// LeaderUpdated is called by dragonboat on its own goroutines; it must
// never block, so a full channel only flags a resync.
func (l leaderListener) LeaderUpdated(info raftio.LeaderInfo) {
	select {
	case l.ch <- info:
	default:
		l.overflow.Store(true)
	}
}

// Start opens the node: NodeHost, controller replica, then the background
// loops (registration, leadership reports, membership, reconciler,
// retention, partition moves, offset expiry). ctx bounds only the start itself.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.OnStorageFailure != nil {
		cfg.FS = diskio.FailStop(cfg.FS, cfg.OnStorageFailure)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), reg: partition.NewRegistry(),
		events: make(chan raftio.LeaderInfo, leaderEventsMax),
		ready:  map[uint64]uint64{}, extraPeers: map[uint64]string{}, hosted: map[uint64]bool{},
	}
	n.isr = newISRTracker(cfg.Clock, cfg.ReplicaLagMax)
	n.popts = partition.Options{FS: cfg.FS, Dir: path.Join(cfg.DataDir, "partitions"), Clock: cfg.Clock, Logger: n.log, Log: cfg.Log,
		Tuning: n.tuningOf, OnStorageFailure: cfg.OnStorageFailure}
	n.pf = partition.Factory(n.popts, n.reg)
	if err := cfg.FS.MkdirAll(n.popts.Dir); err != nil {
		return nil, err
	}
	if err := checkDataDir(cfg.FS, n.nodeHostDir(), cfg.RaftAddr); err != nil {
		return nil, fmt.Errorf("node %d: %w", cfg.NodeID, err)
	}
	tuneRaftQueues(n.log)
	nh, err := dragonboat.NewNodeHost(n.nodeHostConfig())
	if err != nil {
		return nil, fmt.Errorf("node %d: NewNodeHost: %w", cfg.NodeID, err)
	}
	if nh == nil {
		// dragonboat recovers a non-error panic during start-up (for
		// example a corrupt or inconsistent Raft log found on recovery) and
		// returns (nil, nil); refuse to start instead of dereferencing it.
		return nil, fmt.Errorf("node %d: %w: dragonboat could not start its NodeHost on %s (see the log above)", cfg.NodeID, ErrStartFailed, cfg.DataDir)
	}
	n.nh = nh
	if err := n.startController(); err != nil {
		nh.Close()
		return nil, err
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, loop := range []func(){n.registerLoop, n.leaderLoop, n.membershipLoop, n.reconcileLoop, n.retentionLoop, n.raftLogTrimLoop, n.reassignLoop, n.offsetExpiryLoop, n.txnMarkerLoop, n.txnTimeoutLoop, n.groupTopicsLoop} {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			loop()
		}()
	}
	_ = ctx
	return n, nil
}

// nodeHostDir is dragonboat's directory (its flag file, snapshots); the
// Raft log itself is the WAL in DataDir/wal.
func (n *Node) nodeHostDir() string { return path.Join(n.cfg.DataDir, "nodehost") }

func (n *Node) nodeHostConfig() config.NodeHostConfig {
	tf := netio.NewTransportFactory(n.cfg.Net, netio.WithTransportLogger(n.cfg.Logger.With("component", "raft-transport")),
		netio.WithAckObserver(n.isr.observe))
	return config.NodeHostConfig{
		NodeHostDir:       n.nodeHostDir(),
		RTTMillisecond:    n.cfg.RTTMillisecond,
		RaftAddress:       n.cfg.RaftAddr,
		RaftEventListener: leaderListener{ch: n.events, overflow: &n.overflow},
		Expert: config.ExpertConfig{
			FS:               diskio.NewVFS(n.cfg.FS),
			TransportFactory: tf,
			LogDBFactory: raftlog.SkipEmptyUpdates(raftlog.TimedLogDB(wal.NewFactory(n.cfg.FS, n.cfg.DataDir, wal.Options{
				Logger: n.log, OnFailure: n.cfg.OnStorageFailure, SegmentBytes: n.cfg.RaftLogSegmentBytes,
				ObserveSync: n.stages.LogDB.Fsync.Observe, Clock: n.cfg.Clock,
			}), n.cfg.Clock, &n.stages.LogDB)),
			// Recorded by dragonboat in its flag file; tan's buffer sizes
			// mean nothing to the WAL, so the value is fixed.
			LogDB: config.GetTinyMemLogDBConfig(),
		},
	}
}

// controllerVoters returns the controller's voting members: the first
// up-to-3 node ids of the configured peers, sorted.
func (n *Node) controllerVoters() map[uint64]string {
	ids := sortedIDs(n.cfg.Peers)
	out := map[uint64]string{}
	for _, id := range ids[:min(len(ids), controllerVotersMax)] {
		out[id] = n.cfg.Peers[id]
	}
	return out
}

func (n *Node) startController() error {
	voters := n.controllerVoters()
	_, isVoter := voters[n.cfg.NodeID]
	rc := n.raftConfig(meta.ControllerShardID)
	rc.SnapshotEntries, rc.CompactionOverhead = 1000, 500
	members, join := voters, false
	if !isVoter {
		rc.IsNonVoting, members, join = true, nil, true
	}
	if n.nh.HasNodeInfo(meta.ControllerShardID, n.cfg.NodeID) {
		members, join = nil, false
	}
	factory := func(shardID, replicaID uint64) sm.IStateMachine {
		m := meta.New(n.log.With("shard", shardID))
		n.meta.Store(m)
		return m
	}
	if err := n.nh.StartReplica(members, join, factory, rc); err != nil {
		return fmt.Errorf("node %d: start controller replica: %w", n.cfg.NodeID, err)
	}
	if n.meta.Load() == nil {
		return fmt.Errorf("node %d: controller state machine not created", n.cfg.NodeID)
	}
	return nil
}

func (n *Node) raftConfig(shardID uint64) config.Config {
	return config.Config{
		ShardID: shardID, ReplicaID: n.cfg.NodeID,
		ElectionRTT: n.cfg.ElectionRTT, HeartbeatRTT: n.cfg.HeartbeatRTT,
		CheckQuorum: true, PreVote: true,
		SnapshotEntries: n.cfg.SnapshotEntries, CompactionOverhead: n.cfg.CompactionOverhead,
	}
}

// ID returns the node id.
func (n *Node) ID() uint64 { return n.cfg.NodeID }

// Advertised returns the Kafka host and port this node registers.
func (n *Node) Advertised() (host string, port int32) { return n.cfg.Host, n.cfg.Port }

// view returns the local controller replica's current View.
func (n *Node) view() *meta.View { return n.meta.Load().View() }

// Close stops the node gracefully: background loops stop, leadership of
// the shards led here moves to another replica where possible (bounded
// wait), then the NodeHost closes. Every goroutine the node started has
// returned when Close does. Safe to call twice.
func (n *Node) Close(ctx context.Context) error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	n.cancel()
	n.wg.Wait()
	n.transferLeadership(ctx)
	n.snapshotForRestart(ctx)
	n.nh.Close()
	return nil
}

// closeNow stops the node without handing leadership over: the teardown
// step of the crash model in tests.
func (n *Node) closeNow() {
	if !n.closed.CompareAndSwap(false, true) {
		return
	}
	n.cancel()
	n.wg.Wait()
	n.nh.Close()
}

// transferLeadership asks another replica to take over every shard led
// here and waits, bounded, until none is.
func (n *Node) transferLeadership(ctx context.Context) {
	targets := map[uint64]uint64{} // shard -> target replica
	var voters []uint64
	for _, id := range sortedIDs(n.controllerVoters()) {
		if id != n.cfg.NodeID {
			voters = append(voters, id)
		}
	}
	if len(voters) > 0 {
		targets[meta.ControllerShardID] = voters[0]
	}
	for _, h := range n.view().HostedPartitions(int32(n.cfg.NodeID)) {
		for _, r := range h.Replicas {
			if uint64(r) != n.cfg.NodeID {
				targets[h.ShardID] = uint64(r)
				break
			}
		}
	}
	for _, g := range n.view().GroupShards {
		for _, r := range g.Replicas {
			if uint64(r) != n.cfg.NodeID {
				targets[g.ShardID] = uint64(r)
				break
			}
		}
	}
	leading := func() []uint64 {
		var out []uint64
		for _, s := range sortedIDs(targets) {
			if _, ok := n.leaderTerm(s); ok {
				out = append(out, s)
			}
		}
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, transferWaitMax)
	defer cancel()
	shards := leading()
	for _, s := range shards {
		_ = n.nh.RequestLeaderTransfer(s, targets[s])
	}
	for len(shards) > 0 && n.cfg.Clock.Sleep(ctx, transferPollInterval) == nil {
		shards = leading()
	}
}

// leaderTerm reports whether this node leads shardID, and in which term.
func (n *Node) leaderTerm(shardID uint64) (uint64, bool) {
	leader, term, valid, err := n.nh.GetLeaderID(shardID)
	if err != nil || !valid || leader != n.cfg.NodeID {
		return 0, false
	}
	return term, true
}

// AddNode makes node id (at raftAddr) a non-voting member of the
// controller shard so that it sees controller state; the node itself must
// be started with this cluster in its Peers. Idempotent.
func (n *Node) AddNode(ctx context.Context, id uint64, raftAddr string) error {
	if n.closed.Load() {
		return ErrClosed
	}
	n.mu.Lock()
	n.extraPeers[id] = raftAddr
	n.mu.Unlock()
	return n.addNonVoting(ctx, id, raftAddr)
}

func (n *Node) addNonVoting(ctx context.Context, id uint64, addr string) error {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	m, err := n.nh.SyncGetShardMembership(ctx, meta.ControllerShardID)
	if err != nil {
		return err
	}
	if isMember(m, id) {
		return nil
	}
	if _, gone := m.Removed[id]; gone {
		return fmt.Errorf("node %d was removed from the controller shard and cannot rejoin", id)
	}
	err = n.nh.SyncRequestAddNonVoting(ctx, meta.ControllerShardID, id, addr, m.ConfigChangeID)
	if err == nil {
		n.log.Info("added controller non-voting replica", "id", id, "addr", addr)
	}
	return err
}

func isMember(m *dragonboat.Membership, id uint64) bool {
	_, v := m.Nodes[id]
	_, nv := m.NonVotings[id]
	_, w := m.Witnesses[id]
	return v || nv || w
}

// membershipLoop: while this node leads the controller, every known node
// that is not a controller member becomes a non-voting one.
func (n *Node) membershipLoop() {
	for n.cfg.Clock.Sleep(n.ctx, membershipEvery) == nil {
		if _, ok := n.leaderTerm(meta.ControllerShardID); !ok {
			continue
		}
		known := map[uint64]string{}
		for id, a := range n.cfg.Peers {
			known[id] = a
		}
		n.mu.Lock()
		for id, a := range n.extraPeers {
			known[id] = a
		}
		n.mu.Unlock()
		for _, b := range n.view().Brokers {
			if _, ok := known[uint64(b.NodeID)]; !ok && b.NodeID > 0 {
				known[uint64(b.NodeID)] = b.RaftAddr
			}
		}
		for _, id := range sortedIDs(known) {
			ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
			err := n.addNonVoting(ctx, id, known[id])
			cancel()
			if err != nil {
				n.log.Debug("add non-voting controller replica", "id", id, "err", err)
				break
			}
		}
	}
}

// registerLoop proposes this node's broker registration until the local
// controller view shows it, with bounded exponential backoff.
func (n *Node) registerLoop() {
	want := meta.Broker{NodeID: int32(n.cfg.NodeID), Host: n.cfg.Host, Port: n.cfg.Port, Rack: n.cfg.Rack, RaftAddr: n.cfg.RaftAddr}
	backoff := registerBackoffMin
	for {
		if b, ok := n.view().Broker(want.NodeID); ok && b == want {
			n.log.Info("broker registered", "host", want.Host, "port", want.Port)
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
		r, err := n.proposeMeta(ctx, meta.RegisterBroker(want))
		cancel()
		if err == nil && r.Code != 0 {
			n.log.Warn("broker registration rejected", "code", r.Code, "msg", r.Message)
		}
		if err == nil && r.Code == 0 {
			continue // the view shows it now (local apply precedes the result)
		}
		if n.cfg.Clock.Sleep(n.ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, registerBackoffMax)
	}
}

// proposeMeta proposes cmd on the controller shard, retrying (bounded)
// only while dragonboat says it was not proposed at all.
func (n *Node) proposeMeta(ctx context.Context, cmd meta.Command) (meta.Result, error) {
	if n.closed.Load() {
		return meta.Result{}, ErrClosed
	}
	return n.proposeMetaTo(ctx, meta.ControllerShardID, cmd)
}

// proposeMetaTo proposes cmd on shardID, a shard whose state machine is
// core/meta's (the controller or a group shard), retrying (bounded) only
// while dragonboat says it was not proposed at all.
func (n *Node) proposeMetaTo(ctx context.Context, shardID uint64, cmd meta.Command) (meta.Result, error) {
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	b := meta.Encode(cmd)
	for attempt := 1; ; attempt++ {
		res, err := n.nh.SyncPropose(ctx, n.nh.GetNoOPSession(shardID), b)
		if err == nil {
			return meta.DecodeResult(res)
		}
		retry := errors.Is(err, dragonboat.ErrShardNotReady) || errors.Is(err, dragonboat.ErrSystemBusy)
		if !retry || attempt >= metaProposeTriesMax {
			return meta.Result{}, err
		}
		if err := n.cfg.Clock.Sleep(ctx, time.Duration(min(attempt, 10))*50*time.Millisecond); err != nil {
			return meta.Result{}, err
		}
	}
}

func sortedIDs[V any](m map[uint64]V) []uint64 {
	out := make([]uint64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// requestTimeoutDefault bounds a request whose ctx has no deadline
// (dragonboat's synchronous calls require one).
const requestTimeoutDefault = 10 * time.Second

func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, requestTimeoutDefault)
}
