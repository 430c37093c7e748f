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

// ackLog keeps, per observing node, the highest replicate index and the
// heartbeat count seen from each follower of shard ackShard.
type ackLog struct {
	mu         sync.Mutex
	index      map[[2]uint64]uint64 // (observer, from) -> highest LogIndex
	heartbeats map[[2]uint64]int
	badTerm    int
}

const ackShard = 5

func (l *ackLog) observer(self uint64) func(netio.RaftAck) {
	return func(a netio.RaftAck) {
		if a.ShardID != ackShard {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if a.Term == 0 || a.From == self {
			l.badTerm++
		}
		k := [2]uint64{self, a.From}
		if a.Heartbeat {
			l.heartbeats[k]++
			return
		}
		l.index[k] = max(l.index[k], a.LogIndex)
	}
}

// TestTransportAckObserverSeesMatchIndexes runs three real dragonboat
// NodeHosts over the transport and checks that the leader's observer sees
// each follower acknowledge the index of the last committed proposal.
func TestTransportAckObserverSeesMatchIndexes(t *testing.T) {
	raftlog.Install(slog.New(slog.DiscardHandler), slog.LevelWarn)
	synctest.Test(t, func(t *testing.T) {
		net := netio.NewSim(11)
		acks := &ackLog{index: map[[2]uint64]uint64{}, heartbeats: map[[2]uint64]int{}}
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
			n, hb := 0, 0
			for id := uint64(1); id <= 3; id++ {
				if id == leader {
					continue
				}
				if acks.index[[2]uint64{leader, id}] >= last {
					n++
				}
				if acks.heartbeats[[2]uint64{leader, id}] > 0 {
					hb++
				}
			}
			bad := acks.badTerm
			acks.mu.Unlock()
			if bad != 0 {
				t.Fatalf("%d acks with term 0 or from the observing node itself", bad)
			}
			if n == 2 && hb == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("leader %d saw %d followers at index >= %d and %d heartbeat answers", leader, n, last, hb)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
