package netio

import (
	"reflect"
	"testing"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// TestObserveAcksFilters: only accepted replicate answers and heartbeat
// answers (incoming) and heartbeats (outgoing) reach the observer, in
// batch order; other messages and rejections do not.
func TestObserveAcksFilters(t *testing.T) {
	var got []RaftAck
	tr := &transport{onAck: func(a RaftAck) { got = append(got, a) }}
	msgs := []pb.Message{
		{Type: pb.Replicate, ShardID: 9, From: 1, To: 2, Term: 3, LogIndex: 10},
		{Type: pb.ReplicateResp, ShardID: 9, From: 2, Term: 3, LogIndex: 12},
		{Type: pb.ReplicateResp, ShardID: 9, From: 3, Term: 3, LogIndex: 4, Reject: true},
		{Type: pb.HeartbeatResp, ShardID: 9, From: 3, Term: 3},
		{Type: pb.Heartbeat, ShardID: 9, From: 1, To: 3, Term: 3, Commit: 8},
	}
	tr.observeAcks(msgs)
	tr.observeSent(msgs)
	want := []RaftAck{
		{Kind: AckReplicate, ShardID: 9, Follower: 2, Term: 3, LogIndex: 12},
		{Kind: AckHeartbeat, ShardID: 9, Follower: 3, Term: 3},
		{Kind: AckLeaderHeartbeat, ShardID: 9, Follower: 3, Term: 3, LogIndex: 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("observed %+v, want %+v", got, want)
	}
	tr.onAck = func(RaftAck) {}
	if a := testing.AllocsPerRun(100, func() { tr.observeAcks(msgs); tr.observeSent(msgs) }); a != 0 {
		t.Fatalf("%v allocations per batch, want 0 (hot path)", a)
	}
}
