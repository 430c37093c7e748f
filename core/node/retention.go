package node

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/partition"
)

// tuningFrom is the part of a topic's settings a partition log takes live.
func tuningFrom(s TopicSettings) partition.Tuning {
	return partition.Tuning{SegmentBytesMax: s.SegmentBytesMax, SegmentAgeMax: s.SegmentAgeMax}
}

// tuningOf is partition.Options.Tuning: the segment settings of the topic
// that owns shardID, as the controller view has them when the replica
// opens its log (unknown shard: the defaults).
func (n *Node) tuningOf(shardID uint64) partition.Tuning {
	v := n.view()
	return tuningFrom(n.topicSettings(v, topicOfShard(v, shardID)))
}

// topicOfShard finds the topic of a partition shard, or nil. O(partitions):
// called when a replica opens its log, not per request.
func topicOfShard(v *meta.View, shardID uint64) *meta.Topic {
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			if p.ShardID == shardID {
				return t
			}
		}
	}
	return nil
}

// tunedReplica is the segment settings last pushed to one replica object
// (a replica reopened by a snapshot or a restart is a new object, opened
// with Options.Tuning, and gets pushed again if its settings differ).
type tunedReplica struct {
	rep *partition.Replica
	t   partition.Tuning
}

// retentionLoop runs a retention pass every RetentionInterval.
func (n *Node) retentionLoop() {
	tuned := map[uint64]tunedReplica{}
	for n.cfg.Clock.Sleep(n.ctx, n.cfg.RetentionInterval) == nil {
		n.retentionPass(tuned)
	}
}

// retentionPass, for every hosted replica (sorted by shard id):
//
//   - pushes its topic's segment settings when they changed since the
//     last push, so a segment.bytes / segment.ms change applies without a
//     restart;
//   - if this node is the shard's Raft leader, computes the log start that
//     retention.bytes / retention.ms give (Replica.RetentionStart) and,
//     when it is above the log start, proposes a DeleteRecords to it. The
//     start then moves through the Raft log, so it is the same on every
//     replica (Kafka's brokers each delete on their own; ours must not,
//     or snapshots and fetches would see different starts).
//
// Each proposal is bounded by proposeTimeout. Failures are logged once
// per pass (a count and the first), not per partition.
func (n *Node) retentionPass(tuned map[uint64]tunedReplica) {
	v := n.view()
	hosted := v.HostedPartitions(int32(n.cfg.NodeID))
	seen := make(map[uint64]bool, len(hosted))
	var failures passFailures
	fail := failures.add
	for h, rep := range n.hostedReplicas(hosted) {
		seen[h.ShardID] = true
		s := n.topicSettings(v, v.Topic(h.Topic))
		if t := tuningFrom(s); tuned[h.ShardID] != (tunedReplica{rep, t}) {
			switch err := rep.SetTuning(t); {
			case err == nil:
				tuned[h.ShardID] = tunedReplica{rep, t}
			case !errors.Is(err, partition.ErrClosed):
				fail(h.ShardID, err)
			}
		}
		if _, leader := n.leaderTerm(h.ShardID); !leader {
			continue
		}
		if err := n.replicateRetention(h.ShardID, rep, s); err != nil {
			fail(h.ShardID, err)
		}
	}
	for id := range tuned {
		if !seen[id] {
			delete(tuned, id)
		}
	}
	failures.log(n, slog.LevelWarn, "retention pass: some partitions failed; retried next pass")
}

// hostedReplicas yields the replicas of hosted open here, in hosted's
// order, until the node stops.
func (n *Node) hostedReplicas(hosted []meta.HostedPartition) iter.Seq2[meta.HostedPartition, *partition.Replica] {
	return func(yield func(meta.HostedPartition, *partition.Replica) bool) {
		for _, h := range hosted {
			if n.ctx.Err() != nil {
				return
			}
			if rep, ok := n.reg.Get(h.ShardID); ok && !yield(h, rep) {
				return
			}
		}
	}
}

// passFailures counts the partitions a periodic pass failed on and keeps
// the first error, so that a pass logs one line, not one per partition.
type passFailures struct {
	n     int
	first error
}

func (p *passFailures) add(shardID uint64, err error) {
	if p.n == 0 {
		p.first = fmt.Errorf("shard %d: %w", shardID, err)
	}
	p.n++
}

// log writes the pass's line at level, if anything failed and the node
// is not stopping.
func (p *passFailures) log(n *Node, level slog.Level, msg string) {
	if p.n > 0 && n.ctx.Err() == nil {
		n.log.Log(n.ctx, level, msg, "failed", p.n, "first", p.first)
	}
}

// replicateRetention proposes the move of shardID's log start to where its
// retention settings put it, if that is above the current start.
func (n *Node) replicateRetention(shardID uint64, rep *partition.Replica, s TopicSettings) error {
	x, err := rep.RetentionStart(s.RetentionBytes, s.RetentionAge)
	if errors.Is(err, partition.ErrClosed) {
		return nil
	}
	if err != nil {
		return err
	}
	if x <= rep.LogStartOffset() {
		return nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	defer cancel()
	r, err := n.nh.SyncPropose(ctx, n.nh.GetNoOPSession(shardID), partition.EncodeDeleteRecords(partition.DeleteRecords{Offset: x}))
	if err != nil {
		return fmt.Errorf("propose delete records to %d: %w", x, err)
	}
	dr, err := partition.DecodeDeleteRecordsResult(r)
	if err != nil {
		return err
	}
	if dr.ErrorCode != 0 {
		return fmt.Errorf("delete records to %d: error code %d", x, dr.ErrorCode)
	}
	n.log.Debug("retention moved the log start", "shard", shardID, "logStart", dr.LogStartOffset)
	return nil
}
