package node

import (
	"context"
	"log/slog"
	"time"

	"github.com/lni/dragonboat/v4"

	"github.com/chronik-go/chronik/core/meta"
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
//
// A replica that applied raftLogShareMin or more since its last snapshot
// but nothing since the previous pass (an idle partition, below its
// share) is snapshotted too, keeping no entries (its followers are
// caught up or away): otherwise its tail stays live in the WAL's oldest
// segment, and the WAL copies it forward when it starts a new one, in
// the group commit every partition waits for (measured: 56 MB of idle
// partitions' tails relocated in one roll stalled every produce of the
// node for 1.3 s).
func (n *Node) raftLogTrimLoop() {
	if n.cfg.RaftLogBytes < 0 {
		return
	}
	seen := map[uint64]int64{}
	for n.cfg.Clock.Sleep(n.ctx, raftLogTrimEvery) == nil {
		seen = n.raftLogTrimPass(seen)
	}
}

// raftLogTrimPass is one pass of raftLogTrimLoop; seen holds each
// replica's applied bytes since its snapshot as of the previous pass, and
// the returned map the same for this one.
func (n *Node) raftLogTrimPass(seen map[uint64]int64) map[uint64]int64 {
	v := n.view()
	hosted := v.HostedPartitions(int32(n.cfg.NodeID))
	share := n.cfg.RaftLogBytes / int64(max(len(hosted), 1))
	if n.cfg.RaftLogBytes >= raftLogShareMin {
		share = max(share, raftLogShareMin)
	}
	failures := n.snapshotApplied(n.ctx, hosted, share)
	now := make(map[uint64]int64, len(hosted))
	for _, h := range hosted {
		if n.ctx.Err() != nil {
			break
		}
		rep, ok := n.reg.Get(h.ShardID)
		if !ok {
			continue
		}
		_, bytes := rep.SinceSync()
		if prev, ok := seen[h.ShardID]; ok && bytes == prev && bytes >= raftLogShareMin && bytes < share {
			if err := n.snapshotReplica(n.ctx, h.ShardID, 1); err != nil {
				failures.add(h.ShardID, err)
			}
			continue
		}
		now[h.ShardID] = bytes
	}
	failures.log(n, slog.LevelInfo, "raft log trim: some snapshots not taken; retried next pass")
	return now
}

// snapshotReplica requests a snapshot of shard whose compaction keeps
// overhead entries below it.
func (n *Node) snapshotReplica(ctx context.Context, shard, overhead uint64) error {
	sctx, cancel := context.WithTimeout(ctx, proposeTimeout)
	defer cancel()
	_, err := n.nh.SyncRequestSnapshot(sctx, shard, dragonboat.SnapshotOption{
		OverrideCompactionOverhead: true,
		CompactionOverhead:         overhead,
	})
	return err
}

// snapshotApplied snapshots every replica of hosted open here that
// applied at least min bytes since its last snapshot (for an on-disk
// state machine: its Sync and a metadata-only snapshot; the last quarter
// of those entries stays for followers slightly behind), until ctx is
// done.
func (n *Node) snapshotApplied(ctx context.Context, hosted []meta.HostedPartition, min int64) passFailures {
	var failures passFailures
	for _, h := range hosted {
		if ctx.Err() != nil {
			break
		}
		rep, ok := n.reg.Get(h.ShardID)
		if !ok {
			continue
		}
		entries, bytes := rep.SinceSync()
		if bytes < min {
			continue
		}
		if err := n.snapshotReplica(ctx, h.ShardID, max(entries/4, 1)); err != nil {
			failures.add(h.ShardID, err)
		}
	}
	return failures
}

// restartSnapshotMin is the Raft log a partition replica must have applied
// since its last snapshot for a clean stop to snapshot it.
const restartSnapshotMin = 1 << 20

// snapshotForRestart snapshots, on a clean stop, every partition replica
// that applied at least restartSnapshotMin since its last snapshot. A
// replica restarts applying from its newest snapshot: dragonboat reads
// every entry after it back from the Raft log (and the state machine
// skips those it holds), up to this replica's share of RaftLogBytes,
// 256 MiB per node by default, which was a third of a restart's CPU.
// Bounded by ctx (the node's own is done by then); what is not done is
// replayed as before.
func (n *Node) snapshotForRestart(ctx context.Context) {
	failures := n.snapshotApplied(ctx, n.view().HostedPartitions(int32(n.cfg.NodeID)), restartSnapshotMin)
	if failures.n > 0 {
		n.log.Info("stop: some partitions not snapshotted; they replay their Raft log on the next start", "failed", failures.n, "first", failures.first)
	}
}
