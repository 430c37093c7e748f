package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/lni/dragonboat/v4"
)

const (
	// raftLogTrimEvery is how often raftLogTrimLoop looks at the replicas.
	raftLogTrimEvery = time.Second
	// raftLogShareMin is the least share of Config.RaftLogBytes a replica
	// gets: below it, snapshots would be taken for little gain.
	raftLogShareMin = 1 << 20
)

// raftLogTrimLoop keeps each partition replica's Raft log bounded in
// bytes, not only in entries: every raftLogTrimEvery, a hosted replica
// that applied its share of Config.RaftLogBytes or more since its last
// snapshot gets a snapshot requested. For a partition (an on-disk state
// machine) that snapshot is dragonboat's dummy one: the state machine's
// Sync (log fsync, producer checkpoint), then the entries below it are
// compacted, except the last quarter of those applied since the previous
// one, so that a follower a little behind still catches up from the log
// rather than by a streamed snapshot. The WAL then deletes the segments
// nothing live is left in.
func (n *Node) raftLogTrimLoop() {
	if n.cfg.RaftLogBytes < 0 {
		return
	}
	for n.cfg.Clock.Sleep(n.ctx, raftLogTrimEvery) == nil {
		n.raftLogTrimPass()
	}
}

func (n *Node) raftLogTrimPass() {
	v := n.view()
	hosted := v.HostedPartitions(int32(n.cfg.NodeID))
	share := n.cfg.RaftLogBytes / int64(max(len(hosted), 1))
	if n.cfg.RaftLogBytes >= raftLogShareMin {
		share = max(share, raftLogShareMin)
	}
	var failures passFailures
	for h, rep := range n.hostedReplicas(hosted) {
		entries, bytes := rep.SinceSync()
		if bytes < share {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
		_, err := n.nh.SyncRequestSnapshot(ctx, h.ShardID, dragonboat.SnapshotOption{
			OverrideCompactionOverhead: true,
			CompactionOverhead:         max(entries/4, 1),
		})
		cancel()
		if err != nil {
			failures.add(h.ShardID, err)
		}
	}
	failures.log(n, slog.LevelInfo, "raft log trim: some snapshots not taken; retried next pass")
}

// restartSnapshotMin is the Raft log a partition replica must have applied
// since its last snapshot for a clean stop to snapshot it.
const restartSnapshotMin = 1 << 20

// snapshotForRestart snapshots, on a clean stop, every partition replica
// that applied at least restartSnapshotMin since its last snapshot. A
// replica restarts applying from its newest snapshot: dragonboat reads
// every entry after it back from the Raft log (and the state machine
// skips those it holds), up to this replica's share of RaftLogBytes,
// 256 MiB per node by default, which was a third of a restart's CPU. For
// an on-disk state machine the snapshot is its Sync and a metadata-only
// snapshot. Bounded by ctx; what is not done is replayed as before.
func (n *Node) snapshotForRestart(ctx context.Context) {
	var failures passFailures
	for _, h := range n.view().HostedPartitions(int32(n.cfg.NodeID)) {
		if ctx.Err() != nil {
			break
		}
		rep, ok := n.reg.Get(h.ShardID)
		if !ok {
			continue
		}
		entries, bytes := rep.SinceSync()
		if bytes < restartSnapshotMin {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, proposeTimeout)
		_, err := n.nh.SyncRequestSnapshot(sctx, h.ShardID, dragonboat.SnapshotOption{
			OverrideCompactionOverhead: true,
			CompactionOverhead:         max(entries/4, 1),
		})
		cancel()
		if err != nil {
			failures.add(h.ShardID, err)
		}
	}
	if failures.n > 0 {
		n.log.Info("stop: some partitions not snapshotted; they replay their Raft log on the next start", "failed", failures.n, "first", failures.first)
	}
}
