package node

import (
	"log/slog"
	"sync"
	_ "unsafe" // go:linkname
)

// dragonboat's per-replica queues.
//
// dragonboat sizes three queues of every Raft replica from its "soft
// settings" (internal/settings.Soft), which it reads once from a
// dragonboat-soft-settings.json in the working directory and otherwise
// leaves at defaults made for a few large shards: a receive queue of
// 1,024 messages (two slices of pb.Message: 0.47 MB), a proposal queue of
// 2,048 entries (0.22 MB) and a read-index queue of 4,096 (0.05 MB), all
// allocated up front. A node hosting 1,000 partition replicas spent
// 750 MB of its 960 MB heap there (peak RSS 2 GB; issue 13's target is
// 1 GiB). A partition's replica rarely holds that much: its proposals
// are the produce requests in flight to it that the step worker has not
// taken yet (a client keeps at most 5 per connection; beyond 512 waiting
// at once dragonboat answers ErrSystemBusy, and a produce waits and tries
// again until its timeout, retryBusy), read-index requests come
// from the leader readiness barrier and the fetches that wait on it, and
// the receive queue is drained by the replica's step worker every
// iteration (a full queue drops the message and Raft's retransmission
// covers it). So the lengths below are used instead; they cost about
// 0.13 MB per replica.
const (
	raftReceiveQueueLength   = 256
	raftProposalQueueLength  = 512
	raftReadIndexQueueLength = 256
)

// dragonboat copies these three lengths from its soft settings into
// package variables when it initialises (node.go, nodehost.go), and
// reads the variables whenever a replica starts; its own setters exist
// only in its monkey-test build, so they are linked here by name (pinned
// dragonboat version; TestDragonboatQueueLengths checks the defaults
// found there, so an upgrade that renames or retypes them fails the
// build or the test).
var (
	//go:linkname dragonboatReceiveQueueLen github.com/lni/dragonboat/v4.receiveQueueLen
	dragonboatReceiveQueueLen uint64
	//go:linkname dragonboatProposalQueueLen github.com/lni/dragonboat/v4.incomingProposalsMaxLen
	dragonboatProposalQueueLen uint64
	//go:linkname dragonboatReadIndexQueueLen github.com/lni/dragonboat/v4.incomingReadIndexMaxLen
	dragonboatReadIndexQueueLen uint64
)

// dragonboat's defaults for the three (settings.getDefaultSoftSettings).
const (
	dragonboatDefaultReceiveQueueLen   = 1024
	dragonboatDefaultProposalQueueLen  = 2048
	dragonboatDefaultReadIndexQueueLen = 4096
)

// dragonboat's in-memory Raft log (internal/raft.inMemory) replaces its
// entry slice with a fresh one of InMemEntrySliceSize (512) entries, 40
// KB, whenever a replica has applied all it holds, i.e. after nearly every
// applied batch of a lightly loaded replica: that was 3% of the
// simulator's CPU (zeroing the fresh slices) and garbage at the same rate
// in production. A busier replica's slice grows by append as before; the
// size only bounds what an idle one reallocates. Linked by name like the
// queue lengths (TestDragonboatEntrySlice checks the defaults).
const (
	raftEntrySliceSize    = 64
	raftEntrySliceFreeMin = 16

	dragonboatDefaultEntrySliceSize    = 512
	dragonboatDefaultEntrySliceFreeMin = 96
)

var (
	//go:linkname dragonboatEntrySliceSize github.com/lni/dragonboat/v4/internal/raft.entrySliceSize
	dragonboatEntrySliceSize uint64
	//go:linkname dragonboatEntrySliceFreeMin github.com/lni/dragonboat/v4/internal/raft.minEntrySliceSize
	dragonboatEntrySliceFreeMin uint64
)

var tuneQueuesOnce, tuneEntrySliceOnce sync.Once

// tuneRaftQueues sets the queue lengths and entry slice sizes above, once
// per process and before any NodeHost starts a replica. If dragonboat's
// are not its defaults (a dragonboat-soft-settings.json in the working
// directory chose them), they are left alone and that is logged.
func tuneRaftQueues(log *slog.Logger) {
	tuneQueuesOnce.Do(func() {
		if dragonboatReceiveQueueLen != dragonboatDefaultReceiveQueueLen ||
			dragonboatProposalQueueLen != dragonboatDefaultProposalQueueLen ||
			dragonboatReadIndexQueueLen != dragonboatDefaultReadIndexQueueLen {
			log.Warn("dragonboat's queue lengths are not its defaults (a dragonboat-soft-settings.json in the working directory?): left as they are",
				"receive", dragonboatReceiveQueueLen, "proposals", dragonboatProposalQueueLen, "read_index", dragonboatReadIndexQueueLen)
			return
		}
		dragonboatReceiveQueueLen = raftReceiveQueueLength
		dragonboatProposalQueueLen = raftProposalQueueLength
		dragonboatReadIndexQueueLen = raftReadIndexQueueLength
	})
	tuneEntrySliceOnce.Do(func() {
		if dragonboatEntrySliceSize != dragonboatDefaultEntrySliceSize ||
			dragonboatEntrySliceFreeMin != dragonboatDefaultEntrySliceFreeMin {
			log.Warn("dragonboat's in-memory entry slice sizes are not its defaults (a dragonboat-soft-settings.json in the working directory?): left as they are",
				"size", dragonboatEntrySliceSize, "free_min", dragonboatEntrySliceFreeMin)
			return
		}
		dragonboatEntrySliceSize = raftEntrySliceSize
		dragonboatEntrySliceFreeMin = raftEntrySliceFreeMin
	})
}
