package node

import (
	"cmp"
	"slices"
)

// LogDir describes this node's one log directory (Config.DataDir) for
// DescribeLogDirs.
type LogDir struct {
	Dir string // Config.DataDir, as given
	// TotalBytes and UsableBytes describe the filesystem holding Dir
	// (Config.DiskSpace); -1 when unknown.
	TotalBytes  int64
	UsableBytes int64
	Replicas    []LogDirReplica // sorted by topic, then partition
}

// LogDirReplica is one partition replica open on this node.
type LogDirReplica struct {
	Topic     string
	Partition int32
	SizeBytes int64 // the replica's log segments on disk
	// OffsetLag is 0 on the partition's Raft leader. On a follower it is
	// what the node knows without asking the leader: the Raft entries its
	// Raft log knows committed that the replica has not applied yet (an
	// approximation in entries, not records; see logDirLag).
	OffsetLag int64
}

// LogDirs describes this node's log directory and every partition replica
// hosted and open here (View.HostedPartitions(self) found in the replica
// registry). A hosted replica that is not open at that instant (starting,
// installing a snapshot, being removed) is absent. It does no I/O besides
// Config.DiskSpace: sizes come from the logs' in-memory segment table.
// O(hosted partitions).
func (n *Node) LogDirs() LogDir {
	d := LogDir{Dir: n.cfg.DataDir, TotalBytes: -1, UsableBytes: -1}
	if n.cfg.DiskSpace != nil {
		if total, usable, err := n.cfg.DiskSpace(n.cfg.DataDir); err == nil {
			d.TotalBytes, d.UsableBytes = total, usable
		}
	}
	if n.closed.Load() {
		return d
	}
	for _, h := range n.view().HostedPartitions(int32(n.cfg.NodeID)) {
		rep, ok := n.reg.Get(h.ShardID)
		if !ok {
			continue
		}
		size, err := rep.SizeBytes()
		if err != nil { // closed meanwhile (partition.ErrClosed)
			continue
		}
		d.Replicas = append(d.Replicas, LogDirReplica{
			Topic: h.Topic, Partition: h.Partition, SizeBytes: size,
			OffsetLag: n.logDirLag(h.ShardID, rep.AppliedIndex()),
		})
	}
	slices.SortFunc(d.Replicas, func(a, b LogDirReplica) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return d
}

// logDirLag is a replica's OffsetLag. The leader's high watermark is the
// partition's, so its lag is 0. A follower cannot see the leader's high
// watermark without asking it; what it has in memory is the commit index
// of its own Raft hard state (dragonboat's log reader), so it reports the
// committed entries it has not applied yet. Caveats: a follower that has
// not yet heard of the leader's latest commits shows less; Raft's own
// entries (a new leader's no-op, membership changes) are never applied to
// the replica, so an idle partition whose last entries are such may show a
// small lag until the next produce; a produce entry may hold many records.
func (n *Node) logDirLag(shardID, applied uint64) int64 {
	if _, leader := n.leaderTerm(shardID); leader {
		return 0
	}
	lr, err := n.nh.GetLogReader(shardID)
	if err != nil {
		return 0
	}
	st, _ := lr.NodeState()
	if st.Commit <= applied {
		return 0
	}
	return int64(st.Commit - applied)
}
