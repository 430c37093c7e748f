package node

import (
	"context"
	"time"

	"github.com/chronik-go/chronik/core/meta"
)

// Committed offset expiry (Kafka's offsets.retention.minutes, KIP-211).
//
// Every OffsetsRetentionCheckInterval on the node's Clock, the leader of
// each group shard (the coordinator of its groups, see groupshards.go)
// runs a pass over that shard. For every group of the shard that has an
// offset committed more than OffsetsRetention ago
// (meta.QueryExpirableGroups on the local replica, which the leader's
// read barrier keeps current), sorted by name, it asks Config.GroupActive
// whether the coordinator holds live members of the group; if not, it
// proposes meta.ExpireOffsets{Group, CutoffMs: now - retention}, which
// deletes that group's offsets committed before the cutoff. The cutoff is
// the proposer's: apply reads no clock, so every replica deletes the same
// offsets. When a group's last offset expires, Config.GroupExpired lets
// the coordinator forget the group if it is Empty (Kafka marks it Dead).
//
// Deviation from Kafka: an empty group's offset expires retention after
// its commit, not after the group became empty (Kafka persists that
// instant in __consumer_offsets; membership here is not persisted). Since a
// group with members keeps all its offsets, and members commit as they
// consume, the two differ only for a group that went empty long after its
// last commit.
//
// Races, both resolved towards keeping offsets where it matters:
//   - a member may join between the check and the apply. Membership is
//     not replicated, so apply cannot re-check it; the joining member then
//     finds no committed offset for partitions it last committed more than
//     the retention ago and starts from its auto.offset.reset, as in
//     Kafka, whose expiry has the same race;
//   - a new coordinator (the shard's leadership moved, or this node
//     restarted) knows the membership of the classic groups it loaded
//     from their replicated records (Config.GroupKnown), but not that of
//     KIP-848 groups nor of groups whose record was not written: those
//     members are unknown until they rejoin, which live members do within
//     their session timeout. For a group GroupKnown does not vouch for,
//     the pass therefore expires nothing until this node has coordinated
//     for OffsetsExpirySettle (by default the longest session timeout a
//     member may have) in the shard's current term.

// Offset expiry defaults (Kafka's).
const (
	DefaultOffsetsRetention              = 7 * 24 * time.Hour // offsets.retention.minutes = 10080
	DefaultOffsetsRetentionCheckInterval = 10 * time.Minute   // offsets.retention.check.interval.ms = 600000
	DefaultOffsetsExpirySettle           = 30 * time.Minute   // group.max.session.timeout.ms
)

// offsetExpiryLoop runs an expiry pass every OffsetsRetentionCheckInterval.
func (n *Node) offsetExpiryLoop() {
	tenures := map[int32]*tenureClock{}
	for n.cfg.Clock.Sleep(n.ctx, n.cfg.OffsetsRetentionCheckInterval) == nil {
		for _, g := range n.view().GroupShards {
			t := tenures[g.Index]
			if t == nil {
				t = &tenureClock{}
				tenures[g.Index] = t
			}
			n.offsetExpiryPass(g, t)
		}
	}
}

// tenureClock remembers since when this node has led a group shard in a
// term.
type tenureClock struct {
	term  uint64
	since time.Time
}

// offsetExpiryPass proposes ExpireOffsets for every expirable group of
// shard g without live members, if this node leads g and has for at least
// OffsetsExpirySettle or knows the group's membership (GroupKnown).
// Failures are logged once per pass.
func (n *Node) offsetExpiryPass(g meta.GroupShard, t *tenureClock) {
	ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
	term, ok := n.GroupShardTerm(ctx, g.Index)
	cancel()
	if !ok {
		*t = tenureClock{}
		return
	}
	now := n.cfg.Clock.Now()
	if term != t.term {
		*t = tenureClock{term: term, since: now}
	}
	settled := n.cfg.OffsetsExpirySettle <= 0 || now.Sub(t.since) >= n.cfg.OffsetsExpirySettle
	if !settled && n.cfg.GroupKnown == nil {
		return
	}
	cutoff := now.Add(-n.cfg.OffsetsRetention).UnixMilli()
	v, err := n.nh.StaleRead(g.ShardID, meta.QueryExpirableGroups{CutoffMs: cutoff})
	if err != nil {
		n.log.Warn("offset expiry: read groups", "shard", g.Index, "err", err)
		return
	}
	var failed int
	var first error
	for _, grp := range v.([]string) {
		if n.ctx.Err() != nil {
			return
		}
		if !settled && !n.cfg.GroupKnown(term, grp) {
			continue // members may not have rejoined yet
		}
		if n.cfg.GroupActive != nil && n.cfg.GroupActive(grp) {
			continue
		}
		if _, still := n.leaderTerm(g.ShardID); !still {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, proposeTimeout)
		r, err := n.proposeGroup(ctx, g.ShardID, meta.ExpireOffsets{Group: grp, CutoffMs: cutoff})
		cancel()
		if err == nil && r.Code != 0 {
			err = r.Err()
		}
		if err != nil {
			if failed == 0 {
				first = err
			}
			failed++
			continue
		}
		n.log.Info("offset expiry: expired committed offsets", "group", grp, "partitions", len(r.Partitions), "cutoffMs", cutoff)
		if n.cfg.GroupExpired != nil {
			if left, err := n.nh.StaleRead(g.ShardID, meta.QueryGroupOffsets{Group: grp}); err == nil && left.([]meta.GroupOffset) == nil {
				n.cfg.GroupExpired(grp)
			}
		}
	}
	if failed > 0 && n.ctx.Err() == nil {
		n.log.Warn("offset expiry pass: some groups failed; retried next pass", "shard", g.Index, "failed", failed, "first", first)
	}
}
