package group

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"pgregory.net/rapid"
)

// simMember is a client as the property test drives it: at most one Join
// or Sync in flight.
type simMember struct {
	group, instance string
	id              string
	gen             int32
	leader          bool
	members         []JoinMember
	joinCh          <-chan JoinResponse
	syncCh          <-chan SyncResponse
}

func (m *simMember) busy() bool { return m.joinCh != nil || m.syncCh != nil }

func (m *simMember) reset() { m.id, m.gen, m.leader, m.members = "", -1, false, nil }

// TestModelInterleavings runs random interleavings of join, sync,
// heartbeat, leave, commit, static restart and time across five members of
// two groups, checking the coordinator's invariants and the clients' view
// after every step: generations only grow, a Stable group's members all
// hold assignments of its generation, a successful sync hands out an
// assignment of the member's generation, a successful commit matches the
// group's generation, and a client that never reuses an old id is never
// fenced.
func TestModelInterleavings(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		// rapid may not run inside a bubble (it reads t.Deadline), so each
		// case gets its own; rapid's panics (Fatal, exhausted draws) are
		// carried out of the bubble and re-raised in rapid's goroutine.
		var pv any
		synctest.Test(t, func(*testing.T) {
			defer func() { pv = recover() }()
			c := New(clock.NewSim(0, 0), nil, Options{InitialRebalanceDelay: rapid.SampledFrom([]time.Duration{-1, time.Second}).Draw(rt, "delay")})
			defer c.Close()
			ms := make([]*simMember, 5)
			for i := range ms {
				ms[i] = &simMember{group: []string{"g1", "g2"}[i%2], gen: -1}
				if i < 2 {
					ms[i].instance = fmt.Sprintf("i%d", i)
				}
			}
			lastGen := map[string]int32{}
			steps := rapid.IntRange(1, 80).Draw(rt, "steps")
			for range steps {
				m := rapid.SampledFrom(ms).Draw(rt, "member")
				op := rapid.SampledFrom([]string{"join", "join", "sync", "sync", "heartbeat", "heartbeat", "leave", "commit", "sleep", "restart", "delete"}).Draw(rt, "op")
				if op == "delete" {
					before, _ := state(c, m.group)
					switch code := c.Delete([]string{m.group})[0].ErrorCode; {
					case code == errNone && before == Empty:
						delete(lastGen, m.group) // a new group starts again at 0
					case code == errNonEmptyGroup && before != Empty, code == errGroupIDNotFound && before == Dead:
					default:
						rt.Fatalf("delete of %v group: code %d", before, code)
					}
				}
				modelStep(rt, c, m, op)
				// Distinct instants per step: timers armed in different
				// steps never fire together (their order would be up to
				// the scheduler, and rapid needs reproducible runs).
				time.Sleep(time.Millisecond)
				synctest.Wait()
				for _, m := range ms {
					harvest(rt, m)
				}
				checkModel(rt, c, lastGen)
			}
			c.Close()
			synctest.Wait()
			for _, m := range ms {
				harvest(rt, m)
				if m.busy() {
					rt.Fatalf("member %q still blocked after Close", m.id)
				}
			}
		})
		if pv != nil {
			panic(pv)
		}
	})
}

func modelStep(rt *rapid.T, c *Coordinator, m *simMember, op string) {
	switch op {
	case "sleep":
		time.Sleep(rapid.SampledFrom([]time.Duration{100 * time.Millisecond, time.Second, 4 * time.Second, 11 * time.Second, 16 * time.Second}).Draw(rt, "d"))
		return
	}
	if m.busy() {
		return
	}
	switch op {
	case "restart":
		if m.instance == "" {
			return
		}
		m.reset()
		fallthrough
	case "join":
		r := jreq(m.group, m.id, m.instance)
		r.SessionTimeoutMs, r.RebalanceTimeoutMs = 10_000, 15_000
		r.Protocols[0].Metadata = []byte{byte(rapid.IntRange(0, 1).Draw(rt, "meta"))}
		m.joinCh = goJoin(c, r)
	case "sync":
		if m.id == "" || m.gen < 0 {
			return
		}
		r := SyncRequest{Group: m.group, Generation: m.gen, MemberID: m.id, InstanceID: m.instance}
		if m.leader {
			for _, jm := range m.members {
				r.Assignments = append(r.Assignments, SyncAssignment{jm.MemberID, fmt.Appendf(nil, "%d/%s", m.gen, jm.MemberID)})
			}
		}
		m.syncCh = goSync(c, r)
	case "heartbeat":
		if m.id == "" {
			return
		}
		code := c.Heartbeat(HeartbeatRequest{Group: m.group, Generation: m.gen, MemberID: m.id, InstanceID: m.instance})
		clientError(rt, m, "heartbeat", code, errRebalanceInProgress, errIllegalGeneration)
	case "leave":
		if m.id == "" {
			return
		}
		code := c.Leave(LeaveRequest{Group: m.group, Members: []LeaveMember{{MemberID: m.id, InstanceID: m.instance}}}).SingleErrorCode()
		clientError(rt, m, "leave", code)
		m.reset()
	case "commit":
		code := c.ValidateCommit(m.group, m.id, m.instance, m.gen)
		clientError(rt, m, "commit", code, errRebalanceInProgress, errIllegalGeneration)
		if code == 0 && m.id != "" && m.gen >= 0 {
			if s, gen := state(c, m.group); gen != m.gen || s == CompletingRebalance {
				rt.Fatalf("commit of generation %d accepted in %v generation %d", m.gen, s, gen)
			}
		}
	}
}

// clientError applies an error code to the client: UNKNOWN_MEMBER_ID resets
// it; FENCED_INSTANCE_ID must never happen (no client reuses an old id);
// other codes must be among allowed.
func clientError(rt *rapid.T, m *simMember, what string, code int16, allowed ...int16) {
	switch code {
	case errNone:
	case errUnknownMemberID:
		m.reset()
	default:
		for _, a := range allowed {
			if code == a {
				return
			}
		}
		rt.Fatalf("%s by %q (instance %q): unexpected error code %d", what, m.id, m.instance, code)
	}
}

func harvest(rt *rapid.T, m *simMember) {
	select {
	case r := <-m.joinCh:
		m.joinCh = nil
		switch r.ErrorCode {
		case errMemberIDRequired:
			m.id = r.MemberID
		case errNone:
			if r.MemberID != m.id && m.id != "" {
				rt.Fatalf("join of %q answered for %q", m.id, r.MemberID)
			}
			if r.MemberID == m.id && r.Generation < m.gen {
				rt.Fatalf("member %q: generation went from %d to %d", m.id, m.gen, r.Generation)
			}
			m.id, m.gen, m.leader, m.members = r.MemberID, r.Generation, r.LeaderID == r.MemberID, r.Members
			if m.leader && len(r.Members) == 0 {
				rt.Fatalf("leader %q got no members", m.id)
			}
		default:
			clientError(rt, m, "join", r.ErrorCode, errNotCoordinator)
		}
	default:
	}
	select {
	case r := <-m.syncCh:
		m.syncCh = nil
		if r.ErrorCode == errNone && !strings.HasPrefix(string(r.Assignment), fmt.Sprintf("%d/", m.gen)) {
			rt.Fatalf("member %q of generation %d synced assignment %q", m.id, m.gen, r.Assignment)
		}
		clientError(rt, m, "sync", r.ErrorCode, errRebalanceInProgress, errIllegalGeneration, errNotCoordinator)
	default:
	}
}

func checkModel(rt *rapid.T, c *Coordinator, lastGen map[string]int32) {
	if err := c.checkInvariants(); err != nil {
		rt.Fatal(err)
	}
	for _, d := range c.Describe([]string{"g1", "g2"}) {
		if !d.Known {
			continue
		}
		if d.Generation < lastGen[d.Group] {
			rt.Fatalf("group %s generation went from %d to %d", d.Group, lastGen[d.Group], d.Generation)
		}
		lastGen[d.Group] = d.Generation
		if d.State != Stable {
			continue
		}
		for _, m := range d.Members {
			if !strings.HasPrefix(string(m.Assignment), fmt.Sprintf("%d/", d.Generation)) {
				rt.Fatalf("group %s Stable at generation %d: member %q holds %q", d.Group, d.Generation, m.MemberID, m.Assignment)
			}
		}
	}
}
