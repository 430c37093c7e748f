package node

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/netio"
)

// DefaultReplicaLagMax is Kafka's replica.lag.time.max.ms.
const DefaultReplicaLagMax = 30 * time.Second

// isrTracker keeps, for each partition shard this node leads, how far each
// follower has acknowledged the leader's log, from the followers' answers
// the Raft transport observes (netio.WithAckObserver): dragonboat's public
// API exposes no per-follower match index. See doc.go, "In-sync replicas".
//
// Bounds: an entry exists only for a shard this node leads (track, from
// leader events, the leader resync and the produce path; dropped when
// leadership or the shard goes: untrack, retain), and holds one
// followerProgress per other replica of the partition (Replicas ∪
// Target). Answers from other shards, other terms or other nodes are
// ignored.
//
// Concurrency: mu guards shards and everything under it; it is held only
// for map and field updates (and Replica.AppliedIndex, which takes the
// replica's own short mutex: lock order isrTracker.mu, then Replica.mu),
// never while waiting. Waiters (waitAcked) block on a channel, as
// Replica.WaitBeyond, so a synctest bubble's clock keeps running.
type isrTracker struct {
	clock  clock.Clock
	lagMax time.Duration

	mu     sync.Mutex
	shards map[uint64]*shardProgress
}

// shardProgress is one led shard's view of its followers, for one term.
type shardProgress struct {
	term      uint64
	rep       appliedIndexer     // the leader's replica
	replicas  []int32            // the partition's replicas, Metadata order
	followers []followerProgress // one per replica other than the leader
	// waitc, if not nil, is closed (and cleared) when any follower's
	// acknowledged index moves or the entry goes: waiters re-check. It is
	// made only when someone waits, so the observer allocates nothing.
	waitc chan struct{}
}

// followerProgress is what the leader knows of one follower in its term.
//
// Invariant: acked never decreases within a term (a follower's log
// matches the leader's up to any index it acknowledged in the leader's
// term; Raft's log matching property keeps it so).
type followerProgress struct {
	id    uint64
	acked uint64 // highest index known held in this term (see observe)
	seen  bool   // acked is known (a replicate answer or leader heartbeat this term)
	// caughtUpAt is the last time the follower was known to hold
	// everything the leader had applied (zero: never in this term).
	caughtUpAt time.Time
	// appliedAtLast, lastAt: the leader's applied index and the time at
	// the follower's previous answer (Kafka's rule, see observe).
	appliedAtLast uint64
	lastAt        time.Time
}

// appliedIndexer is the part of partition.Replica the tracker reads.
type appliedIndexer interface{ AppliedIndex() uint64 }

func newISRTracker(c clock.Clock, lagMax time.Duration) *isrTracker {
	return &isrTracker{clock: c, lagMax: lagMax, shards: map[uint64]*shardProgress{}}
}

// track starts (or refreshes) tracking of shardID, led here in term, with
// the partition's replicas. A new term starts from nothing: no follower is
// in sync until it answers in this term. Known followers keep their
// progress when only the replica list changed (a move).
func (t *isrTracker) track(shardID, term, self uint64, rep appliedIndexer, replicas []int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sp := t.shards[shardID]
	if sp != nil && sp.term == term && sp.rep == rep && slices.Equal(sp.replicas, replicas) {
		return
	}
	next := &shardProgress{term: term, rep: rep, replicas: slices.Clone(replicas)}
	for _, r := range replicas {
		if uint64(r) == self || r <= 0 {
			continue
		}
		f := followerProgress{id: uint64(r)}
		if sp != nil && sp.term == term {
			if old := sp.follower(f.id); old != nil {
				f = *old
			}
		}
		next.followers = append(next.followers, f)
	}
	if sp != nil && sp.term == term {
		next.waitc = sp.waitc // same term: waiters carry on
	} else if sp != nil {
		sp.wake()
	}
	t.shards[shardID] = next
}

// tracked reports whether shardID is tracked in term.
func (t *isrTracker) tracked(shardID, term uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	sp := t.shards[shardID]
	return sp != nil && sp.term == term
}

// untrack drops shardID (leadership or the shard went).
func (t *isrTracker) untrack(shardID uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sp := t.shards[shardID]; sp != nil {
		sp.wake()
		delete(t.shards, shardID)
	}
}

// retain drops every shard not in keep.
func (t *isrTracker) retain(keep map[uint64]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range sortedIDs(t.shards) { // sorted: waking order reaches waiters
		if !keep[id] {
			t.shards[id].wake()
			delete(t.shards, id)
		}
	}
}

func (sp *shardProgress) follower(id uint64) *followerProgress {
	for i := range sp.followers {
		if sp.followers[i].id == id {
			return &sp.followers[i]
		}
	}
	return nil
}

func (sp *shardProgress) wake() {
	if sp.waitc != nil {
		close(sp.waitc)
		sp.waitc = nil
	}
}

// observe is the transport's ack observer (its reader and sender
// goroutines): cheap, never blocking, no allocation.
//
// A follower's acknowledged index comes from its replicate answers and
// from the leader's own heartbeats to it (dragonboat's match index for it,
// capped at the commit index): the heartbeats matter for a follower whose
// replicate answers all arrived before the shard was tracked (an idle
// partition after an election). Liveness comes only from the follower's
// own answers.
//
// A follower is caught up when, at one of its answers, it has acknowledged
// everything the leader has applied. Under steady load a follower's answer
// trails the leader's latest apply by the entries in flight, so, as Kafka
// does for fetches, a follower that now holds everything the leader had
// applied at its previous answer counts as caught up as of that answer.
func (t *isrTracker) observe(a netio.RaftAck) {
	if a.ShardID == meta.ControllerShardID {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sp := t.shards[a.ShardID]
	if sp == nil || a.Term != sp.term {
		return
	}
	f := sp.follower(a.Follower)
	if f == nil {
		return
	}
	if a.Kind == netio.AckReplicate || a.Kind == netio.AckLeaderHeartbeat {
		f.seen = true
		if a.LogIndex > f.acked {
			f.acked = a.LogIndex
			sp.wake()
		}
	}
	if a.Kind == netio.AckLeaderHeartbeat || !f.seen {
		return // not an answer, or an answer from a follower of unknown position
	}
	applied, now := sp.rep.AppliedIndex(), t.clock.Now()
	switch {
	case f.acked >= applied:
		f.caughtUpAt = now
	case f.acked >= f.appliedAtLast && f.lastAt.After(f.caughtUpAt):
		f.caughtUpAt = f.lastAt
	}
	f.appliedAtLast, f.lastAt = applied, now
}

// isr returns the in-sync replicas of shardID, led here in term, in the
// partition's replica order (the leader, self, always included), and
// whether it is tracked in that term.
func (t *isrTracker) isr(shardID, term, self uint64) ([]int32, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	sp := t.shards[shardID]
	if sp == nil || sp.term != term {
		return nil, false
	}
	out := make([]int32, 0, len(sp.replicas))
	for _, r := range sp.replicas {
		if uint64(r) == self {
			out = append(out, r)
		} else if f := sp.follower(uint64(r)); f != nil && t.inSync(f) {
			out = append(out, r)
		}
	}
	return out, true
}

// isrSize is len(isr) for shardID led in term; 1 (the leader alone) if
// the shard is not tracked in that term.
func (t *isrTracker) isrSize(shardID, term uint64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	sp := t.shards[shardID]
	if sp == nil || sp.term != term {
		return 1
	}
	n := 1
	for i := range sp.followers {
		if t.inSync(&sp.followers[i]) {
			n++
		}
	}
	return n
}

func (t *isrTracker) inSync(f *followerProgress) bool {
	return !f.caughtUpAt.IsZero() && t.clock.Since(f.caughtUpAt) <= t.lagMax
}

// waitAcked waits until want replicas (the leader included: it applied the
// entry) hold index in term, or ctx is done (ctx.Err()), or the shard is
// no longer tracked in term (errNotLeader).
func (t *isrTracker) waitAcked(ctx context.Context, shardID, term, index uint64, want int) error {
	for {
		t.mu.Lock()
		sp := t.shards[shardID]
		if sp == nil || sp.term != term {
			t.mu.Unlock()
			return errNotLeader
		}
		n := 1
		for _, f := range sp.followers {
			if f.seen && f.acked >= index {
				n++
			}
		}
		if n >= want {
			t.mu.Unlock()
			return nil
		}
		if sp.waitc == nil {
			sp.waitc = make(chan struct{})
		}
		ch := sp.waitc
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// trackLeader tracks shardID, which this node leads in term, if the
// partition is hosted here and its replica is open.
func (n *Node) trackLeader(v *meta.View, shardID, term uint64) {
	for _, h := range v.HostedPartitions(int32(n.cfg.NodeID)) {
		if h.ShardID == shardID {
			n.trackHosted(h, term)
			return
		}
	}
}

func (n *Node) trackHosted(h meta.HostedPartition, term uint64) bool {
	rep, ok := n.reg.Get(h.ShardID)
	if !ok {
		return false
	}
	p := meta.Partition{Replicas: h.Replicas, Target: h.Target}
	n.isr.track(h.ShardID, term, n.cfg.NodeID, rep, p.AllReplicas())
	return true
}

// resyncISR tracks every hosted shard led here and drops the rest: it
// repairs missed leader events and follows replica-list changes. Called
// by the leader resync (every leaderResyncEvery).
func (n *Node) resyncISR(v *meta.View) {
	keep := map[uint64]bool{}
	for _, h := range v.HostedPartitions(int32(n.cfg.NodeID)) {
		if term, ok := n.leaderTerm(h.ShardID); ok && n.trackHosted(h, term) {
			keep[h.ShardID] = true
		}
	}
	n.isr.retain(keep)
}
