package server

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/group"
)

// TestGroupPurge: BeginTenure without records (run when a broker starts
// a new coordinator term and nothing was replicated) answers a member
// blocked in JoinGroup and forgets every group, Stable or waiting, static
// or dynamic; their members are told to rejoin.
func TestGroupPurge(t *testing.T) {
	gc := group.New(clock.Real(), nil, group.Options{InitialRebalanceDelay: -1})
	defer gc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	join := func(grp, member, instance string) group.JoinResponse {
		r, err := gc.Join(ctx, group.JoinRequest{Version: 5, Group: grp, MemberID: member, InstanceID: instance,
			SessionTimeoutMs: 10000, RebalanceTimeoutMs: 10000, ProtocolType: "consumer",
			Protocols: []group.Protocol{{Name: "range"}}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// g1: one static member, Stable.
	j := join("g1", "", "i1")
	if s, err := gc.Sync(ctx, group.SyncRequest{Group: "g1", Generation: j.Generation, MemberID: j.MemberID, InstanceID: "i1",
		Assignments: []group.SyncAssignment{{MemberID: j.MemberID}}}); err != nil || s.ErrorCode != 0 {
		t.Fatalf("sync: %+v %v", s, err)
	}
	// g2: a dynamic member, Stable; then a second member joins and
	// blocks in JoinGroup (the first must rejoin).
	r := join("g2", "", "")
	r = join("g2", r.MemberID, "")
	gc.Sync(ctx, group.SyncRequest{Group: "g2", Generation: r.Generation, MemberID: r.MemberID,
		Assignments: []group.SyncAssignment{{MemberID: r.MemberID}}})
	blocked := make(chan group.JoinResponse, 1)
	go func() {
		first := join("g2", "", "")
		blocked <- join("g2", first.MemberID, "")
	}()
	eventually(t, testWait, func() bool {
		d := gc.Describe([]string{"g2"})[0]
		return d.State == group.PreparingRebalance
	}, "g2 rebalancing")
	gc.BeginTenure(2, nil)
	select {
	case resp := <-blocked:
		if resp.ErrorCode == 0 {
			t.Fatalf("blocked join answered %+v", resp)
		}
	case <-time.After(testWait):
		t.Fatal("blocked join not answered by the purge")
	}
	if l := gc.List(nil); len(l) != 0 {
		t.Fatalf("groups after purge: %+v", l)
	}
	if code := gc.Heartbeat(group.HeartbeatRequest{Group: "g1", Generation: j.Generation, MemberID: j.MemberID, InstanceID: "i1"}); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat in the next tenure: %v", kerr.ErrorForCode(code))
	}
}
