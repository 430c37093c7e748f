package netio_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/plugin/tan"
	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// indexSM answers every entry with its Raft index, so the test knows
// which index a proposal got.
type indexSM struct{}

func (indexSM) Update(e sm.Entry) (sm.Result, error) { return sm.Result{Value: e.Index}, nil }
func (indexSM) Lookup(any) (any, error)              { return nil, nil }
func (indexSM) SaveSnapshot(io.Writer, sm.ISnapshotFileCollection, <-chan struct{}) error {
	return nil
}
func (indexSM) RecoverFromSnapshot(io.Reader, []sm.SnapshotFile, <-chan struct{}) error {
	return nil
}
func (indexSM) Close() error { return nil }

// ackLog keeps, per observing node and follower of shard ackShard, the
// highest index seen per kind and the heartbeat answer count.
type ackLog struct {
	mu         sync.Mutex
	index      map[[2]uint64]uint64 // (observer, follower) -> highest replicate LogIndex
	leaderView map[[2]uint64]uint64 // (observer, follower) -> highest heartbeat LogIndex
	heartbeats map[[2]uint64]int
	bad        int
}

const ackShard = 5

func (l *ackLog) observer(self uint64) func(netio.RaftAck) {
	return func(a netio.RaftAck) {
		if a.ShardID != ackShard {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if a.Term == 0 || a.Follower == self {
			l.bad++
		}
		k := [2]uint64{self, a.Follower}
		switch a.Kind {
		case netio.AckHeartbeat:
			l.heartbeats[k]++
		case netio.AckReplicate:
			l.index[k] = max(l.index[k], a.LogIndex)
		case netio.AckLeaderHeartbeat:
			l.leaderView[k] = max(l.leaderView[k], a.LogIndex)
		default:
			l.bad++
		}
	}
}

// TestTransportAckObserverSeesMatchIndexes runs three real dragonboat
// NodeHosts over the transport and checks that the leader's observer sees
// each follower acknowledge the index of the last committed proposal,
// answer heartbeats, and the leader's heartbeats carry that index too.
func TestTransportAckObserverSeesMatchIndexes(t *testing.T) {
	raftlog.Install(slog.New(slog.DiscardHandler), slog.LevelWarn)
	synctest.Test(t, func(t *testing.T) {
		net := netio.NewSim(11)
		acks := &ackLog{index: map[[2]uint64]uint64{}, leaderView: map[[2]uint64]uint64{}, heartbeats: map[[2]uint64]int{}}
		members := map[uint64]string{}
		for id := uint64(1); id <= 3; id++ {
			members[id] = fmt.Sprintf("n%d:7100", id)
		}
		hosts := map[uint64]*dragonboat.NodeHost{}
		defer func() {
			for _, nh := range hosts {
				nh.Close()
			}
		}()
		for id := uint64(1); id <= 3; id++ {
			logDB := config.GetTinyMemLogDBConfig()
			logDB.KVWriteBufferSize, logDB.Shards = 1<<20, 1
			nh, err := dragonboat.NewNodeHost(config.NodeHostConfig{
				NodeHostDir: "/data/nodehost", RTTMillisecond: 10, RaftAddress: members[id],
				Expert: config.ExpertConfig{
					FS:               diskio.NewVFS(diskio.NewSim(int64(id))),
					TransportFactory: netio.NewTransportFactory(net.Host(fmt.Sprintf("n%d", id)), netio.WithAckObserver(acks.observer(id))),
					LogDBFactory:     tan.Factory,
					LogDB:            logDB,
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			hosts[id] = nh
			rc := config.Config{ReplicaID: id, ShardID: ackShard, ElectionRTT: 10, HeartbeatRTT: 1, CheckQuorum: true, PreVote: true}
			if err := nh.StartReplica(members, false, func(uint64, uint64) sm.IStateMachine { return indexSM{} }, rc); err != nil {
				t.Fatal(err)
			}
		}
		var last uint64
		for done, tries := 0, 0; done < 5; tries++ {
			if tries == 100 {
				t.Fatalf("only %d of 5 proposals committed in 100 tries", done)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := hosts[1].SyncPropose(ctx, hosts[1].GetNoOPSession(ackShard), []byte("x"))
			cancel()
			if err != nil {
				time.Sleep(100 * time.Millisecond) // virtual time: an election is under way
				continue
			}
			last, done = r.Value, done+1
		}
		leader, _, ok, err := hosts[1].GetLeaderID(ackShard)
		if err != nil || !ok {
			t.Fatalf("no leader: %v", err)
		}
		// A commit needs one follower's ack; the other may still be on
		// its way. Heartbeats flow every RTT: wait for both, bounded.
		deadline := time.Now().Add(5 * time.Second)
		for {
			acks.mu.Lock()
			n, hb, lv := 0, 0, 0
			for id := uint64(1); id <= 3; id++ {
				if id == leader {
					continue
				}
				k := [2]uint64{leader, id}
				if acks.index[k] >= last {
					n++
				}
				if acks.heartbeats[k] > 0 {
					hb++
				}
				if acks.leaderView[k] >= last {
					lv++
				}
			}
			bad := acks.bad
			acks.mu.Unlock()
			if bad != 0 {
				t.Fatalf("%d acks with term 0, an unknown kind, or about the observing node itself", bad)
			}
			if n == 2 && hb == 2 && lv == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("leader %d: %d followers acknowledged >= %d, %d answered heartbeats, %d had heartbeats carrying it", leader, n, last, hb, lv)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
