package sim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/core/wal"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// listSM is the smallest useful replicated state machine: the ordered list
// of every command applied. Replicas must end with identical lists.
type listSM struct {
	mu      sync.Mutex
	applied []string
}

func (s *listSM) Update(e sm.Entry) (sm.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = append(s.applied, string(e.Cmd))
	return sm.Result{Value: uint64(len(s.applied))}, nil
}

func (s *listSM) Lookup(interface{}) (interface{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.applied), nil
}

func (s *listSM) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var buf []byte
	for _, v := range s.applied {
		buf = binary.AppendUvarint(buf, uint64(len(v)))
		buf = append(buf, v...)
	}
	_, err := w.Write(buf)
	return err
}

func (s *listSM) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var applied []string
	for len(data) > 0 {
		n, k := binary.Uvarint(data)
		if k <= 0 || uint64(len(data)-k) < n {
			return errors.New("listSM: corrupt snapshot")
		}
		applied = append(applied, string(data[k:k+int(n)]))
		data = data[k+int(n):]
	}
	s.mu.Lock()
	s.applied = applied
	s.mu.Unlock()
	return nil
}

func (s *listSM) Close() error { return nil }

const raftShardID = 1

// raftCluster is three NodeHosts on simulated disks and one simulated network.
type raftCluster struct {
	t     *testing.T
	net   *netio.Sim
	mu    sync.Mutex // guards disks and hosts; never held while waiting
	disks map[uint64]*diskio.Sim
	hosts map[uint64]*dragonboat.NodeHost
}

func hostName(id uint64) string { return fmt.Sprintf("n%d", id) }
func raftAddr(id uint64) string { return hostName(id) + ":7100" }

func (c *raftCluster) members() map[uint64]string {
	return map[uint64]string{1: raftAddr(1), 2: raftAddr(2), 3: raftAddr(3)}
}

func (c *raftCluster) start(id uint64) {
	c.t.Helper()
	c.mu.Lock()
	disk := c.disks[id]
	c.mu.Unlock()
	nhc := config.NodeHostConfig{
		NodeHostDir:    "/data/nodehost",
		RTTMillisecond: 10,
		RaftAddress:    raftAddr(id),
		Expert: config.ExpertConfig{
			FS:               diskio.NewVFS(disk),
			TransportFactory: netio.NewTransportFactory(c.net.Host(hostName(id))),
			LogDBFactory:     wal.NewFactory(disk, "/data", wal.Options{SegmentBytes: 64 << 10}),
			LogDB:            config.GetTinyMemLogDBConfig(),
		},
	}
	nh, err := dragonboat.NewNodeHost(nhc)
	if err != nil {
		c.t.Fatalf("node %d: NewNodeHost: %v", id, err)
	}
	rc := config.Config{
		ReplicaID: id, ShardID: raftShardID,
		ElectionRTT: 10, HeartbeatRTT: 1, CheckQuorum: true, PreVote: true,
	}
	if err := nh.StartReplica(c.members(), false, func(uint64, uint64) sm.IStateMachine { return &listSM{} }, rc); err != nil {
		nh.Close()
		c.t.Fatalf("node %d: StartReplica: %v", id, err)
	}
	c.mu.Lock()
	c.hosts[id] = nh
	c.mu.Unlock()
}

// crash follows the crash model: network first, then the disk is frozen,
// then the node is torn down, then its restart image is built.

func (c *raftCluster) crash(id uint64, mode diskio.CrashMode) {
	c.net.Crash(hostName(id))
	c.mu.Lock()
	disk, nh := c.disks[id], c.hosts[id]
	delete(c.hosts, id)
	c.mu.Unlock()
	disk.Freeze()
	nh.Close()
	image := disk.CrashImage(mode)
	c.mu.Lock()
	c.disks[id] = image
	c.mu.Unlock()
}

func (c *raftCluster) host(id uint64) *dragonboat.NodeHost {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[id]
}

func (c *raftCluster) closeAll() {
	for id := uint64(1); id <= 3; id++ {
		if nh := c.host(id); nh != nil {
			nh.Close()
		}
	}
}

// propose tries v once on node id. true means acknowledged: committed and
// applied. false means unknown (it may or may not have been committed).
func (c *raftCluster) propose(id uint64, v string) bool {
	nh := c.host(id)
	if nh == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := nh.SyncPropose(ctx, nh.GetNoOPSession(raftShardID), []byte(v))
	return err == nil
}

// applied reads node id's state after a linearizable read barrier, retrying
// until it succeeds or the deadline passes.
func (c *raftCluster) applied(id uint64, deadline time.Time) ([]string, error) {
	for {
		nh := c.host(id)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := nh.SyncRead(ctx, raftShardID, nil)
		cancel()
		if err == nil {
			return v.([]string), nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("node %d: SyncRead: %w", id, err)
		}
		time.Sleep(100 * time.Millisecond) // virtual time: a retry backoff
	}
}

// TestSimRaftCrash runs three dragonboat NodeHosts inside a synctest
// bubble on diskio.Sim and netio.Sim, keeps proposing from three clients,
// crashes the leader by the crash model (torn unsynced tail), restarts it on
// its crash image, then a follower, and checks that every acknowledged entry
// is on every replica, exactly once, in the same order everywhere.
func TestSimRaftCrash(t *testing.T) {
	for _, seed := range seedsToRun() {
		if !claimSeed("TestSimRaftCrash", seed) {
			continue
		}
		for _, mode := range []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashRandomPrefix, diskio.CrashTornPrefix} {
			t.Run(fmt.Sprintf("seed=%d/%v", seed, mode), func(t *testing.T) {
				captureRaftLog(t)
				synctest.Test(t, func(t *testing.T) { runRaftCrash(t, seed, mode) })
				if t.Failed() {
					t.Logf("reproduce: make sim SEED=%d", seed)
				}
			})
		}
	}
}

func runRaftCrash(t *testing.T, seed int64, mode diskio.CrashMode) {
	c := &raftCluster{
		t: t, net: netio.NewSim(seed),
		disks: map[uint64]*diskio.Sim{}, hosts: map[uint64]*dragonboat.NodeHost{},
	}
	for id := uint64(1); id <= 3; id++ {
		c.disks[id] = diskio.NewSim(seed + int64(id))
		c.start(id)
	}
	defer c.closeAll()

	var (
		ackMu sync.Mutex
		acked []string
	)
	// Three proposers, each sending its own numbered values through its own
	// node, in phases separated by the faults below.
	phase := func(name string, count int) {
		var wg sync.WaitGroup
		for p := uint64(1); p <= 3; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range count {
					v := fmt.Sprintf("%s/p%d/%d", name, p, i)
					if c.propose(p, v) {
						ackMu.Lock()
						acked = append(acked, v)
						ackMu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
	}

	phase("before", 30)
	leader := waitLeader(t, c)
	crashDone := make(chan struct{})
	go func() {
		defer close(crashDone)
		time.Sleep(30 * time.Millisecond) // mid-phase, in virtual time
		c.crash(leader, mode)
	}()
	phase("leaderdown", 30)
	<-crashDone
	c.start(leader)
	phase("leaderback", 20)

	follower := leader%3 + 1
	if l := waitLeader(t, c); l == follower {
		follower = follower%3 + 1
	}
	c.crash(follower, mode)
	phase("followerdown", 20)
	c.start(follower)
	phase("healed", 10)

	if len(acked) < 100 {
		t.Fatalf("only %d proposals acknowledged: the cluster did not make progress", len(acked))
	}
	deadline := time.Now().Add(30 * time.Second)
	var first []string
	for id := uint64(1); id <= 3; id++ {
		got, err := c.applied(id, deadline)
		if err != nil {
			t.Fatal(err)
		}
		checkReplica(t, id, got, acked)
		if first == nil {
			first = got
		} else if !slices.Equal(first, got) {
			t.Fatalf("node %d's applied list differs from node 1's (%d vs %d entries)", id, len(got), len(first))
		}
	}
	t.Logf("seed %d mode %v: %d acknowledged, %d applied on every replica", seed, mode, len(acked), len(first))
}

// captureRaftLog collects dragonboat's warnings and errors (connection
// resets are expected while nodes crash) and prints them only if t fails.
func captureRaftLog(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	raftlog.Install(slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil)), slog.LevelWarn)
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			t.Logf("dragonboat log:\n%s", buf.String())
			mu.Unlock()
		}
	})
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

func checkReplica(t *testing.T, id uint64, got, acked []string) {
	t.Helper()
	seen := make(map[string]bool, len(got))
	for _, v := range got {
		if seen[v] {
			t.Fatalf("node %d applied %q twice", id, v)
		}
		seen[v] = true
	}
	for _, v := range acked {
		if !seen[v] {
			t.Fatalf("node %d lost acknowledged entry %q", id, v)
		}
	}
}

func waitLeader(t *testing.T, c *raftCluster) uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for id := uint64(1); id <= 3; id++ {
			if nh := c.host(id); nh != nil {
				if l, _, ok, err := nh.GetLeaderID(raftShardID); err == nil && ok && c.host(l) != nil {
					return l
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("no leader within 20 s of virtual time")
	return 0
}
