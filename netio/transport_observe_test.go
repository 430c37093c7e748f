package netio

import (
	"reflect"
	"testing"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// TestObserveAcksFilters: only accepted replicate answers and heartbeat
// answers reach the observer, in batch order; requests and rejections do
// not.
func TestObserveAcksFilters(t *testing.T) {
	var got []RaftAck
	tr := &transport{onAck: func(a RaftAck) { got = append(got, a) }}
	tr.observeAcks([]pb.Message{
		{Type: pb.Replicate, ShardID: 9, From: 1, Term: 3, LogIndex: 10},
		{Type: pb.ReplicateResp, ShardID: 9, From: 2, Term: 3, LogIndex: 12},
		{Type: pb.ReplicateResp, ShardID: 9, From: 3, Term: 3, LogIndex: 4, Reject: true},
		{Type: pb.HeartbeatResp, ShardID: 9, From: 3, Term: 3},
		{Type: pb.Heartbeat, ShardID: 9, From: 1, Term: 3},
	})
	want := []RaftAck{
		{ShardID: 9, From: 2, Term: 3, LogIndex: 12},
		{ShardID: 9, From: 3, Term: 3, Heartbeat: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("observed %+v, want %+v", got, want)
	}
	tr.onAck = func(RaftAck) {}
	msgs := []pb.Message{{Type: pb.ReplicateResp, LogIndex: 1}, {Type: pb.HeartbeatResp}}
	if a := testing.AllocsPerRun(100, func() { tr.observeAcks(msgs) }); a != 0 {
		t.Fatalf("%v allocations per batch, want 0 (hot path)", a)
	}
}
