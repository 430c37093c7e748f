package node

import (
	"sync/atomic"
	"time"

	"github.com/chronik-go/chronik/core/metric"
	"github.com/chronik-go/chronik/core/partition"
	"github.com/chronik-go/chronik/core/raftlog"
)

// Stages is where this node's produces spend their time (DESIGN.md,
// "Where a produce's time goes"), on the node's Clock. Only produces
// answered with their applied result are observed (not errors, not
// UnsafeAckBeforeApply). The server adds the stages it owns (queue,
// answer) in its own metrics.
type Stages struct {
	// FrontEnd: the Kafka handler started (ProduceOptions.Start) to the
	// proposal submitted (validation, leader check, encoding).
	FrontEnd metric.Histogram
	// Propose: proposal submitted to the start of the Update call that
	// applied it: dragonboat's step worker, the Raft log's write and
	// fsync (LogDB), replication and commit, the hand-off to the apply
	// worker.
	Propose metric.Histogram
	// Apply: that Update call (plog append, producer state), whole.
	Apply metric.Histogram
	// Result: the Update call's end to the proposer holding the result
	// (dragonboat's notification).
	Result metric.Histogram
	// ApplyTimingMissed counts produces whose Update call was no longer
	// remembered by the replica (partition.Replica.ApplyTiming): left
	// out of Propose, Apply and Result.
	ApplyTimingMissed atomic.Uint64
	// LogDB is the Raft log's SaveRaftState (write + fsync) timing.
	LogDB raftlog.LogDBStats
}

// Stages returns this node's produce stage metrics.
func (n *Node) Stages() *Stages { return &n.stages }

// Now reads the node's clock (the Kafka front end stamps
// ProduceOptions.Start with it).
func (n *Node) Now() time.Time { return n.cfg.Clock.Now() }

// observeProduce records the stages of a produce whose proposal was
// submitted at submitted and whose result (the entry at index) arrived at
// done; start is the handler's start (zero: unknown).
func (n *Node) observeProduce(start, submitted, done time.Time, rep *partition.Replica, index uint64) {
	if !start.IsZero() {
		n.stages.FrontEnd.Observe(submitted.Sub(start))
	}
	as, ae, ok := rep.ApplyTiming(index)
	if !ok {
		n.stages.ApplyTimingMissed.Add(1)
		return
	}
	n.stages.Propose.Observe(as.Sub(submitted))
	n.stages.Apply.Observe(ae.Sub(as))
	n.stages.Result.Observe(done.Sub(ae))
}
