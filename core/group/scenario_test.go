package group

import (
	"context"
	"strings"

	"github.com/chronik-go/chronik/core/clock"
	"testing"
	"testing/synctest"
	"time"
)

func TestJoinSyncThirdMemberRebalance(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, s := stable2(t, c)
		// A third member: the pending id alone does not rebalance.
		b := memberID(t, c, jreq("g", "", ""))
		wantState(t, c, "g", Stable, 1)
		jb := goJoin(c, jreq("g", b, ""))
		blocked(t, jb)
		wantState(t, c, "g", PreparingRebalance, 1)
		wantCode(t, "heartbeat A", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), errRebalanceInProgress)
		wantCode(t, "heartbeat S", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"}), errRebalanceInProgress)
		wantCode(t, "commit during prepare", c.ValidateCommit("g", a, "", 1), 0)
		ja := goJoin(c, jreq("g", a, ""))
		blocked(t, ja)
		js := goJoin(c, jreq("g", s, "i1"))
		ra, rb, rs := recv(t, ja), recv(t, jb), recv(t, js)
		for _, r := range []JoinResponse{ra, rb, rs} {
			if r.ErrorCode != 0 || r.Generation != 2 || r.LeaderID != a {
				t.Fatalf("rejoin: %+v", r)
			}
		}
		if len(ra.Members) != 3 || ra.Members[0].MemberID != a || ra.Members[1].MemberID != s || ra.Members[2].MemberID != b {
			t.Fatalf("leader members: %+v", ra.Members)
		}
		wantState(t, c, "g", CompletingRebalance, 2)
		wantCode(t, "commit during completing", c.ValidateCommit("g", a, "", 2), errRebalanceInProgress)
		wantCode(t, "old generation sync", recv(t, goSync(c, SyncRequest{Group: "g", Generation: 1, MemberID: b})).ErrorCode, errIllegalGeneration)
		sb := goSync(c, SyncRequest{Group: "g", Generation: 2, MemberID: b})
		blocked(t, sb)
		// The leader leaves b out: it gets an empty assignment.
		recv(t, goSync(c, SyncRequest{Group: "g", Generation: 2, MemberID: a, Assignments: []SyncAssignment{{a, []byte("a2")}, {s, []byte("s2")}, {"ghost", []byte("x")}}}))
		if r := recv(t, sb); r.ErrorCode != 0 || len(r.Assignment) != 0 || r.Assignment == nil {
			t.Fatalf("b sync: %+v", r)
		}
		if r := recv(t, goSync(c, SyncRequest{Group: "g", Generation: 2, MemberID: s, InstanceID: "i1"})); string(r.Assignment) != "s2" {
			t.Fatalf("s sync in Stable: %+v", r)
		}
		wantState(t, c, "g", Stable, 2)
		wantCode(t, "commit", c.ValidateCommit("g", b, "", 2), 0)
	})
}

func TestSessionExpiry(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, _ := stable2(t, c) // S's session restarted at its sync, now
		start := time.Now()
		for {
			time.Sleep(time.Second)
			synctest.Wait() // let timers due now fire first
			code := c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a})
			if code == 0 {
				continue
			}
			wantCode(t, "heartbeat", code, errRebalanceInProgress)
			if el := time.Since(start); el != sessionMs*time.Millisecond {
				t.Fatalf("rebalance noticed after %v, want %v", el, sessionMs*time.Millisecond)
			}
			break
		}
		// Only A remains; its rejoin completes the join phase at once.
		r := recv(t, goJoin(c, jreq("g", a, "")))
		if r.Generation != 2 || len(r.Members) != 1 {
			t.Fatalf("rejoin: %+v", r)
		}
		wantCode(t, "expired static", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 2, MemberID: "x", InstanceID: "i1"}), errUnknownMemberID)
	})
}

// A static member that misses a join phase is not dropped by it (its
// session governs), unlike a dynamic one.
func TestRebalanceTimeoutKeepsStaticMember(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, s := stable2(t, c)
		b := memberID(t, c, jreq("g", "", ""))
		jb := goJoin(c, jreq("g", b, "")) // triggers a rebalance
		blocked(t, jb)
		start := time.Now()
		ja := goJoin(c, jreq("g", a, ""))
		blocked(t, ja)
		for i := 0; i < 20; i++ {
			blocked(t, ja)
			wantCode(t, "s heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"}), errRebalanceInProgress)
			time.Sleep(time.Second)
		}
		ra := recv(t, ja)
		if el := time.Since(start); el != rebalanceMs*time.Millisecond {
			t.Fatalf("join phase ended after %v", el)
		}
		// S is static: kept (not rejoined), so it is in the list but got nothing.
		if ra.Generation != 2 || len(ra.Members) != 3 {
			t.Fatalf("leader join: %+v", ra)
		}
		recv(t, jb)
	})
}

func TestRebalanceTimeoutDropsDynamicMember(t *testing.T) {
	bubble(t, Options{InitialRebalanceDelay: -1}, func(t *testing.T, c *Coordinator) {
		a := memberID(t, c, jreq("g", "", ""))
		ra := recv(t, goJoin(c, jreq("g", a, "")))
		b := memberID(t, c, jreq("g", "", ""))
		jb := goJoin(c, jreq("g", b, ""))
		blocked(t, jb)
		ja := goJoin(c, jreq("g", a, ""))
		ra, rb := recv(t, ja), recv(t, jb)
		recv(t, goSync(c, SyncRequest{Group: "g", Generation: 2, MemberID: a}))
		recv(t, goSync(c, SyncRequest{Group: "g", Generation: 2, MemberID: b}))
		wantState(t, c, "g", Stable, 2)
		_ = rb
		// A (leader) rejoins; B keeps heartbeating but never rejoins.
		start := time.Now()
		ja = goJoin(c, jreq("g", a, ""))
		for i := 0; i < 20; i++ {
			blocked(t, ja)
			wantCode(t, "b heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 2, MemberID: b}), errRebalanceInProgress)
			time.Sleep(time.Second)
		}
		ra = recv(t, ja)
		if el := time.Since(start); el != rebalanceMs*time.Millisecond || ra.Generation != 3 || len(ra.Members) != 1 {
			t.Fatalf("after %v: %+v", el, ra)
		}
		wantCode(t, "b heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 2, MemberID: b}), errUnknownMemberID)
	})
}

func TestStaticRestartNoRebalance(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, s := stable2(t, c)
		r := recv(t, goJoin(c, jreq("g", "", "i1")))
		if r.ErrorCode != 0 || r.Generation != 1 || r.MemberID == s || r.LeaderID != a || r.Members != nil || r.SkipAssignment {
			t.Fatalf("static rejoin: %+v", r)
		}
		wantState(t, c, "g", Stable, 1)
		wantCode(t, "old id heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"}), errFencedInstanceID)
		wantCode(t, "old id join", recv(t, goJoin(c, jreq("g", s, "i1"))).ErrorCode, errFencedInstanceID)
		wantCode(t, "old id commit", c.ValidateCommit("g", s, "i1", 1), errFencedInstanceID)
		wantCode(t, "new id heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: r.MemberID, InstanceID: "i1"}), 0)
		wantCode(t, "leader heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), 0)
		if rs := recv(t, goSync(c, SyncRequest{Group: "g", Generation: 1, MemberID: r.MemberID, InstanceID: "i1"})); string(rs.Assignment) != "s" {
			t.Fatalf("sync after restart: %+v", rs)
		}
		wantState(t, c, "g", Stable, 1)
	})
}

func TestStaticLeaderRestartSkipAssignment(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, s := stable2(t, c)
		// Make S the leader: A leaves, S rejoins alone.
		c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: a}}})
		rs := recv(t, goJoin(c, jreq("g", s, "i1")))
		recv(t, goSync(c, SyncRequest{Group: "g", Generation: rs.Generation, MemberID: s, InstanceID: "i1", Assignments: []SyncAssignment{{s, []byte("x")}}}))
		r := recv(t, goJoin(c, jreq("g", "", "i1")))
		if r.ErrorCode != 0 || !r.SkipAssignment || r.LeaderID != r.MemberID || len(r.Members) != 1 || r.Generation != rs.Generation {
			t.Fatalf("v9 static leader rejoin: %+v", r)
		}
		old := jreq("g", "", "i1")
		old.Version = 8
		r2 := recv(t, goJoin(c, old))
		if r2.SkipAssignment || r2.LeaderID != r.MemberID || r2.Members != nil {
			t.Fatalf("v8 static leader rejoin: %+v", r2)
		}
		wantState(t, c, "g", Stable, rs.Generation)
	})
}

func TestStaticRestartProtocolChangeRebalances(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		_, _ = stable2(t, c)
		r := jreq("g", "", "i1")
		r.Protocols = []Protocol{{Name: "sticky"}, {Name: "range"}}
		// 1 vote each: tie -> "range" (smaller name); still range, no rebalance.
		recv(t, goJoin(c, r))
		wantState(t, c, "g", Stable, 1)
		r.Protocols = []Protocol{{Name: "sticky"}}
		j := goJoin(c, r)
		blocked(t, j)
		wantState(t, c, "g", PreparingRebalance, 1)
	})
}

func TestLeaveTriggersRebalance(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, s := stable2(t, c)
		resp := c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: s, InstanceID: "i1", Reason: "bye"}}})
		if resp.SingleErrorCode() != 0 || resp.Members[0].ErrorCode != 0 {
			t.Fatalf("leave: %+v", resp)
		}
		wantState(t, c, "g", PreparingRebalance, 1)
		wantCode(t, "heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), errRebalanceInProgress)
		r := recv(t, goJoin(c, jreq("g", a, "")))
		if r.Generation != 2 || len(r.Members) != 1 {
			t.Fatalf("rejoin: %+v", r)
		}
		// The last member leaves: the group goes Empty at once, generation+1.
		recv(t, goSync(c, SyncRequest{Group: "g", Generation: 2, MemberID: a}))
		c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: a}}})
		wantState(t, c, "g", Empty, 3)
		wantCode(t, "simple commit to empty", c.ValidateCommit("g", "", "", -1), 0)
	})
}

func TestLeaveBatchByInstance(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, _ := stable2(t, c)
		resp := c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{InstanceID: "i1"}, {InstanceID: "nope"}, {MemberID: "x"}, {MemberID: a, InstanceID: "i1"}}})
		want := []int16{0, errUnknownMemberID, errUnknownMemberID, errUnknownMemberID}
		for i, m := range resp.Members {
			wantCode(t, "leave member", m.ErrorCode, want[i])
		}
		if resp.SingleErrorCode() != errUnknownMemberID {
			t.Fatal("single error code")
		}
		wantState(t, c, "g", PreparingRebalance, 1)
	})
}

func TestDeleteGroups(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, s := stable2(t, c)
		res := c.Delete([]string{"g", "nope", ""})
		wantCode(t, "non-empty", res[0].ErrorCode, errNonEmptyGroup)
		wantCode(t, "unknown", res[1].ErrorCode, errGroupIDNotFound)
		wantCode(t, "empty id", res[2].ErrorCode, errInvalidGroupID)
		c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: a}, {MemberID: s, InstanceID: "i1"}}})
		wantState(t, c, "g", Empty, 2)
		if l := c.List([]State{Empty}); len(l) != 1 || l[0].Group != "g" || l[0].ProtocolType != "consumer" {
			t.Fatalf("list: %+v", l)
		}
		if l := c.List([]State{Stable}); len(l) != 0 {
			t.Fatalf("list stable: %+v", l)
		}
		wantCode(t, "delete empty", c.Delete([]string{"g"})[0].ErrorCode, 0)
		if d := c.Describe([]string{"g"})[0]; d.Known || d.State != Dead || d.ErrorCode != 0 {
			t.Fatalf("describe deleted: %+v", d)
		}
		wantCode(t, "delete again", c.Delete([]string{"g"})[0].ErrorCode, errGroupIDNotFound)
		if l := c.List(nil); len(l) != 0 {
			t.Fatalf("list: %+v", l)
		}
	})
}

func TestDescribe(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a, s := stable2(t, c)
		d := c.Describe([]string{"g"})[0]
		if !d.Known || d.State != Stable || d.Protocol != "range" || d.ProtocolType != "consumer" || len(d.Members) != 2 {
			t.Fatalf("describe: %+v", d)
		}
		if m := d.Members[0]; m.MemberID != a || string(m.Metadata) != "m" || string(m.Assignment) != "a" || m.ClientID != "cl" {
			t.Fatalf("member: %+v", m)
		}
		if m := d.Members[1]; m.MemberID != s || m.InstanceID != "i1" {
			t.Fatalf("member: %+v", m)
		}
	})
}

func TestCloseUnblocksWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(clock.NewSim(0, 0), nil, Options{})
		defer c.Close()
		a, _ := stable2(t, c)
		// A rejoins (blocks: S has not), and a follower of a fresh group
		// waits in sync.
		ja := goJoin(c, jreq("g", a, ""))
		x := memberID(t, c, jreq("h", "", ""))
		jx := goJoin(c, jreq("h", x, ""))
		time.Sleep(InitialRebalanceDelayDefault)
		rx := recv(t, jx)
		y := memberID(t, c, jreq("h", "", ""))
		jy := goJoin(c, jreq("h", y, ""))
		blocked(t, jy)
		recv(t, goJoin(c, jreq("h", x, "")))
		ry := recv(t, jy)
		sy := goSync(c, SyncRequest{Group: "h", Generation: ry.Generation, MemberID: y})
		blocked(t, ja)
		blocked(t, sy)
		_ = rx
		c.Close()
		wantCode(t, "join after close", recv(t, ja).ErrorCode, errNotCoordinator)
		wantCode(t, "sync after close", recv(t, sy).ErrorCode, errNotCoordinator)
		wantCode(t, "heartbeat after close", c.Heartbeat(HeartbeatRequest{Group: "g", MemberID: a, Generation: 1}), errNotCoordinator)
		r, err := c.Join(context.Background(), jreq("g", "", ""))
		if err != nil || r.ErrorCode != errNotCoordinator {
			t.Fatalf("join after close: %+v %v", r, err)
		}
		c.Close()
	})
}

func TestJoinContextCancel(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		a := memberID(t, c, jreq("g", "", ""))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.Join(ctx, jreq("g", a, ""))
			done <- err
		}()
		synctest.Wait()
		cancel()
		if err := recv(t, done); err != context.Canceled {
			t.Fatalf("err %v", err)
		}
		// The member still counts as joined: the join phase ends after the
		// initial delay with it in the group.
		time.Sleep(InitialRebalanceDelayDefault)
		wantState(t, c, "g", CompletingRebalance, 1)
	})
}

// A member whose JoinGroup response was lost rejoins during
// CompletingRebalance with the same metadata: it gets the current
// generation back without a new rebalance; heartbeats are accepted then.
func TestJoinRetryWhileCompleting(t *testing.T) {
	bubble(t, Options{InitialRebalanceDelay: -1}, func(t *testing.T, c *Coordinator) {
		a := memberID(t, c, jreq("g", "", ""))
		r := recv(t, goJoin(c, jreq("g", a, "")))
		wantState(t, c, "g", CompletingRebalance, 1)
		wantCode(t, "heartbeat while completing", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), 0)
		r2 := recv(t, goJoin(c, jreq("g", a, "")))
		if r2.Generation != r.Generation || r2.LeaderID != a || len(r2.Members) != 1 {
			t.Fatalf("retry: %+v", r2)
		}
		wantState(t, c, "g", CompletingRebalance, 1)
		// Changed metadata forces a new generation.
		changed := jreq("g", a, "")
		changed.Protocols[0].Metadata = []byte("other")
		recv(t, goJoin(c, changed))
		wantState(t, c, "g", CompletingRebalance, 2)
	})
}

// A member that never syncs is removed after the rebalance timeout.
func TestSyncTimeout(t *testing.T) {
	bubble(t, Options{InitialRebalanceDelay: -1}, func(t *testing.T, c *Coordinator) {
		a := memberID(t, c, jreq("g", "", ""))
		recv(t, goJoin(c, jreq("g", a, "")))
		b := memberID(t, c, jreq("g", "", ""))
		jb := goJoin(c, jreq("g", b, ""))
		blocked(t, jb)
		recv(t, goJoin(c, jreq("g", a, "")))
		recv(t, jb)
		wantState(t, c, "g", CompletingRebalance, 2)
		sb := goSync(c, SyncRequest{Group: "g", Generation: 2, MemberID: b})
		blocked(t, sb)
		// The leader heartbeats but never syncs; b waits. After the
		// rebalance timeout the leader is removed and b is told to rejoin.
		for range rebalanceMs/1000 - 1 {
			time.Sleep(time.Second)
			wantCode(t, "a heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 2, MemberID: a}), 0)
			blocked(t, sb)
		}
		time.Sleep(time.Second)
		wantCode(t, "b sync", recv(t, sb).ErrorCode, errRebalanceInProgress)
		wantCode(t, "a heartbeat", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 2, MemberID: a}), errUnknownMemberID)
		if r := recv(t, goJoin(c, jreq("g", b, ""))); r.Generation != 3 || r.LeaderID != b {
			t.Fatalf("rejoin: %+v", r)
		}
	})
}

// A v3 (pre-KIP-394) client joins without MEMBER_ID_REQUIRED; a new member
// that never finishes its first join is dropped after NewMemberJoinTimeout.
func TestNewMemberJoinTimeout(t *testing.T) {
	bubble(t, Options{InitialRebalanceDelay: -1}, func(t *testing.T, c *Coordinator) {
		a := memberID(t, c, jreq("g", "", ""))
		ra := recv(t, goJoin(c, jreq("g", a, "")))
		recv(t, goSync(c, SyncRequest{Group: "g", Generation: ra.Generation, MemberID: a}))
		v3 := jreq("g", "", "")
		v3.Version = 3
		j := goJoin(c, v3) // rebalance: a must rejoin, which it never does
		blocked(t, j)
		// a keeps heartbeating; the join phase ends at the rebalance
		// timeout, dropping a and completing with the new member alone.
		for range rebalanceMs / 1000 {
			c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a})
			time.Sleep(time.Second)
		}
		r := recv(t, j)
		if r.ErrorCode != 0 || r.Generation != 2 || r.LeaderID != r.MemberID {
			t.Fatalf("v3 join: %+v", r)
		}
	})
}

// TestCoordinatorMoveEarlierTenure: after the coordinator moves (another
// coordinator, or this one after BeginTenure), members of the earlier
// tenure are told to rejoin (REBALANCE_IN_PROGRESS) on Heartbeat and
// SyncGroup instead of UNKNOWN_MEMBER_ID, their rejoin with the old id is
// UNKNOWN_MEMBER_ID (clients then rejoin without an id), and their commits
// are accepted until the group completes a join phase in the new tenure.
// Ids of other shapes keep Kafka's UNKNOWN_MEMBER_ID.
func TestCoordinatorMoveEarlierTenure(t *testing.T) {
	bubble(t, Options{Incarnation: 1}, func(t *testing.T, c *Coordinator) {
		a, s := stable2(t, c)

		// Another node's coordinator takes over with no groups.
		c2 := New(clock.NewSim(0, 0), nil, Options{Incarnation: 2})
		defer c2.Close()
		wantCode(t, "moved heartbeat", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), errRebalanceInProgress)
		wantCode(t, "moved static heartbeat", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"}), errRebalanceInProgress)
		wantCode(t, "moved sync", recv(t, goSync(c2, SyncRequest{Group: "g", Generation: 1, MemberID: a})).ErrorCode, errRebalanceInProgress)
		for _, id := range []string{"x", "cl-zz-1", "cl-1-x", "cl-1-0", "nodash"} {
			wantCode(t, "heartbeat of "+id, c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: id}), errUnknownMemberID)
		}
		wantCode(t, "moved commit, unknown group", c2.ValidateCommit("g", a, "", 1), 0)
		wantCode(t, "made-up commit, unknown group", c2.ValidateCommit("g", "x", "", 1), errIllegalGeneration)
		wantCode(t, "moved rejoin", recvNow(c2, jreq("g", a, "")).ErrorCode, errUnknownMemberID)

		// A member joins afresh; until its join phase completes, moved
		// members may still commit.
		b := memberID(t, c2, jreq("g", "", ""))
		jb := goJoin(c2, jreq("g", b, ""))
		blocked(t, jb)
		wantCode(t, "moved commit while the group forms", c2.ValidateCommit("g", a, "", 1), 0)
		wantCode(t, "moved heartbeat while the group forms", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), errRebalanceInProgress)
		wantCode(t, "made-up commit while the group forms", c2.ValidateCommit("g", "x", "", 1), errUnknownMemberID)
		time.Sleep(InitialRebalanceDelayDefault)
		if r := recv(t, jb); r.ErrorCode != 0 || r.Generation != 1 {
			t.Fatalf("join on the new coordinator: %+v", r)
		}
		if r := recv(t, goSync(c2, SyncRequest{Group: "g", Generation: 1, MemberID: b, Assignments: []SyncAssignment{{b, []byte("b")}}})); r.ErrorCode != 0 {
			t.Fatalf("sync on the new coordinator: %+v", r)
		}
		wantCode(t, "moved commit after the join phase", c2.ValidateCommit("g", a, "", 1), errUnknownMemberID)
		wantCode(t, "moved heartbeat after the join phase", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), errRebalanceInProgress)
		check(t, c2)

		// The same coordinator in a new tenure: its own earlier ids count
		// as moved once BeginTenure ran, not before.
		c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: a}}})
		wantCode(t, "left, same tenure", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), errUnknownMemberID)
		c.BeginTenure(2, nil)
		wantCode(t, "left, earlier tenure", c.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), errRebalanceInProgress)
		n := memberID(t, c, jreq("g2", "", ""))
		wantCode(t, "new tenure id, not a member", c.Heartbeat(HeartbeatRequest{Group: "g2", Generation: 0, MemberID: n}), errUnknownMemberID)
	})
}

// TestTenureIncarnation: the member ids a coordinator mints after
// BeginTenure carry another incarnation than those before, so that an id
// names its tenure (a forgotten group restarts at generation 1, and
// (incarnation, generation) names a generation over a run), and an id of
// the earlier tenure is recognised as such.
func TestTenureIncarnation(t *testing.T) {
	bubble(t, Options{Incarnation: 1}, func(t *testing.T, c *Coordinator) {
		a := memberID(t, c, jreq("g", "", ""))
		c.BeginTenure(2, nil)
		b := memberID(t, c, jreq("h", "", ""))
		inc := func(id string) string { return strings.Split(id, "-")[1] }
		if inc(a) != "1" || inc(b) != "2" {
			t.Fatalf("ids %q then %q: want incarnations 1 then 2", a, b)
		}
		if !c.memberFromEarlierTenure("g", a) || c.memberFromEarlierTenure("h", b) {
			t.Fatalf("earlier tenure: %q %v, %q %v", a, c.memberFromEarlierTenure("g", a), b, c.memberFromEarlierTenure("h", b))
		}
	})
}
