package node

import (
	"log/slog"
	"testing"
)

// TestDragonboatQueueLengths: the variables linked by name hold
// dragonboat's defaults before tuning (so they are the ones its replicas
// read), and tuning sets exactly ours.
func TestDragonboatQueueLengths(t *testing.T) {
	if tuned := dragonboatReceiveQueueLen == raftReceiveQueueLength; !tuned {
		if dragonboatReceiveQueueLen != dragonboatDefaultReceiveQueueLen ||
			dragonboatProposalQueueLen != dragonboatDefaultProposalQueueLen ||
			dragonboatReadIndexQueueLen != dragonboatDefaultReadIndexQueueLen {
			t.Fatalf("dragonboat's queue lengths before tuning: %d %d %d", dragonboatReceiveQueueLen, dragonboatProposalQueueLen, dragonboatReadIndexQueueLen)
		}
	}
	tuneRaftQueues(slog.New(slog.DiscardHandler))
	if dragonboatReceiveQueueLen != raftReceiveQueueLength || dragonboatProposalQueueLen != raftProposalQueueLength ||
		dragonboatReadIndexQueueLen != raftReadIndexQueueLength {
		t.Fatalf("after tuning: %d %d %d", dragonboatReceiveQueueLen, dragonboatProposalQueueLen, dragonboatReadIndexQueueLen)
	}
}

// TestDragonboatEntrySlice: the same for the in-memory log's entry slice
// sizes.
func TestDragonboatEntrySlice(t *testing.T) {
	if tuned := dragonboatEntrySliceSize == raftEntrySliceSize; !tuned {
		if dragonboatEntrySliceSize != dragonboatDefaultEntrySliceSize || dragonboatEntrySliceFreeMin != dragonboatDefaultEntrySliceFreeMin {
			t.Fatalf("dragonboat's entry slice sizes before tuning: %d %d", dragonboatEntrySliceSize, dragonboatEntrySliceFreeMin)
		}
	}
	tuneRaftQueues(slog.New(slog.DiscardHandler))
	if dragonboatEntrySliceSize != raftEntrySliceSize || dragonboatEntrySliceFreeMin != raftEntrySliceFreeMin {
		t.Fatalf("after tuning: %d %d", dragonboatEntrySliceSize, dragonboatEntrySliceFreeMin)
	}
}
