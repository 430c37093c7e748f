package group

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	sessionMs   = 10_000
	rebalanceMs = 20_000
)

// bubble runs f in a synctest bubble with a fresh Coordinator that is
// closed (and checked) at the end.
func bubble(t *testing.T, opts Options, f func(t *testing.T, c *Coordinator)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		c := New(clock.NewSim(0, 0), nil, opts)
		defer c.Close()
		f(t, c)
		synctest.Wait()
		check(t, c)
	})
}

func check(t *testing.T, c *Coordinator) {
	t.Helper()
	if err := c.checkInvariants(); err != nil {
		t.Fatal(err)
	}
}

func jreq(group, memberID, instance string) JoinRequest {
	return JoinRequest{
		Version: 9, Group: group, MemberID: memberID, InstanceID: instance, ClientID: "cl",
		SessionTimeoutMs: sessionMs, RebalanceTimeoutMs: rebalanceMs, ProtocolType: "consumer",
		Protocols: []Protocol{{Name: "range", Metadata: []byte("m")}, {Name: "sticky", Metadata: []byte("s")}},
	}
}

// goJoin runs Join in a goroutine; its response arrives on the channel.
func goJoin(c *Coordinator, r JoinRequest) <-chan JoinResponse {
	ch := make(chan JoinResponse, 1)
	go func() {
		resp, _ := c.Join(context.Background(), r)
		ch <- resp
	}()
	return ch
}

func goSync(c *Coordinator, r SyncRequest) <-chan SyncResponse {
	ch := make(chan SyncResponse, 1)
	go func() {
		resp, _ := c.Sync(context.Background(), r)
		ch <- resp
	}()
	return ch
}

// recv waits for the bubble to settle and takes the value that must be there.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	synctest.Wait()
	select {
	case v := <-ch:
		return v
	default:
		t.Fatal("call still blocked")
		panic("unreachable")
	}
}

func blocked[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	synctest.Wait()
	select {
	case v := <-ch:
		t.Fatalf("call returned %+v, want blocked", v)
	default:
	}
}

// memberID does the v4+ first step: MEMBER_ID_REQUIRED with the id.
func memberID(t *testing.T, c *Coordinator, r JoinRequest) string {
	t.Helper()
	resp, err := c.Join(context.Background(), r)
	if err != nil || resp.ErrorCode != errMemberIDRequired || resp.MemberID == "" {
		t.Fatalf("first join: %+v %v", resp, err)
	}
	return resp.MemberID
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: error code %d, want %d", what, got, want)
	}
}

func state(c *Coordinator, g string) (State, int32) {
	d := c.Describe([]string{g})[0]
	return d.State, d.Generation
}

func wantState(t *testing.T, c *Coordinator, g string, s State, gen int32) {
	t.Helper()
	synctest.Wait()
	if gs, ggen := state(c, g); gs != s || ggen != gen {
		t.Fatalf("group %s: %v generation %d, want %v generation %d", g, gs, ggen, s, gen)
	}
}

// stable2 builds group "g" with dynamic leader A and static follower S
// ("i1"), Stable at generation 1 with assignments "a" and "s".
func stable2(t *testing.T, c *Coordinator) (a, s string) {
	t.Helper()
	a = memberID(t, c, jreq("g", "", ""))
	ja := goJoin(c, jreq("g", a, ""))
	blocked(t, ja) // initial rebalance delay
	js := goJoin(c, jreq("g", "", "i1"))
	blocked(t, js) // extended once for S
	time.Sleep(InitialRebalanceDelayDefault)
	blocked(t, ja)
	time.Sleep(InitialRebalanceDelayDefault)
	ra, rs := recv(t, ja), recv(t, js)
	s = rs.MemberID
	if ra.ErrorCode != 0 || rs.ErrorCode != 0 || ra.Generation != 1 || ra.LeaderID != a || len(ra.Members) != 2 || rs.Members != nil {
		t.Fatalf("joins: %+v %+v", ra, rs)
	}
	if ra.Protocol != "range" {
		t.Fatalf("protocol %q", ra.Protocol)
	}
	ss := goSync(c, SyncRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"})
	blocked(t, ss)
	sa := recv(t, goSync(c, SyncRequest{Group: "g", Generation: 1, MemberID: a, ProtocolType: "consumer", Protocol: "range",
		Assignments: []SyncAssignment{{a, []byte("a")}, {s, []byte("s")}}}))
	if sa.ErrorCode != 0 || string(sa.Assignment) != "a" || sa.Protocol != "range" {
		t.Fatalf("leader sync: %+v", sa)
	}
	if r := recv(t, ss); r.ErrorCode != 0 || string(r.Assignment) != "s" {
		t.Fatalf("follower sync: %+v", r)
	}
	wantState(t, c, "g", Stable, 1)
	check(t, c)
	return a, s
}

// recvNow makes a Join that must not block.
func recvNow(c *Coordinator, r JoinRequest) JoinResponse {
	ch := goJoin(c, r)
	settle()
	select {
	case v := <-ch:
		return v
	default:
		panic("join blocked")
	}
}

func settle() { synctest.Wait() }
