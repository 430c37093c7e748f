package group

import (
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/clock"
)

// records collects what a coordinator persists, keeping the latest per
// group as the controller does.
type records struct {
	fail   error // the outcome of writes someone waits for
	mu     sync.Mutex
	all    []Record
	latest map[string]Record
}

func (r *records) persist(rec Record, done func(error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if done != nil {
		err := r.fail
		go done(err) // as the shell: later, from another goroutine
		if err != nil {
			return
		}
	}
	r.all = append(r.all, rec)
	if r.latest == nil {
		r.latest = map[string]Record{}
	}
	if rec.Data == nil {
		delete(r.latest, rec.Group)
		return
	}
	r.latest[rec.Group] = rec
}

func (r *records) snapshot() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Record
	for _, rec := range r.latest {
		out = append(out, rec)
	}
	return out
}

// movedCoordinator is the coordinator of another node taking over: a new
// tenure loading what the first one persisted.
func movedCoordinator(t *testing.T, recs []Record, opts Options) *Coordinator {
	t.Helper()
	c2 := New(clock.NewSim(0, 0), nil, opts)
	if n := c2.BeginTenure(7, recs); n != len(recs) {
		t.Fatalf("loaded %d of %d records", n, len(recs))
	}
	check(t, c2)
	return c2
}

// TestPersistLoadRoundTrip: the record written when a generation completes
// loads, on another coordinator, as the same group: Stable at that
// generation, same leader, protocol, members (ids, instance ids, client
// ids) and assignments.
func TestPersistLoadRoundTrip(t *testing.T) {
	var rec records
	bubble(t, Options{Incarnation: 1, Persist: rec.persist}, func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		stable2(t, c)
		got := rec.snapshot()
		if len(got) != 1 || got[0].Group != "g" || got[0].Term != 3 || got[0].Seq == 0 {
			t.Fatalf("records %+v", got)
		}
		c2 := movedCoordinator(t, got, Options{Incarnation: 2})
		defer c2.Close()
		want, have := c.Describe([]string{"g"}), c2.Describe([]string{"g"})
		if !reflect.DeepEqual(want, have) {
			t.Fatalf("loaded %+v\nwant %+v", have, want)
		}
		if d := have[0]; d.State != Stable || d.Generation != 1 || len(d.Members) != 2 || string(d.Members[0].Assignment) != "a" {
			t.Fatalf("loaded %+v", d)
		}
		// Its membership is known in this tenure (offset expiry need not
		// wait for members to rejoin); other groups' and other tenures' not.
		if !c2.Known(7, "g") || c2.Known(6, "g") || c2.Known(7, "other") {
			t.Fatalf("Known: %v %v %v", c2.Known(7, "g"), c2.Known(6, "g"), c2.Known(7, "other"))
		}
	})
}

// TestLoadedGroupKeepsMembers: after a move the members of the loaded
// generation heartbeat, commit and sync (a SyncGroup retry gets the
// stored assignment) at that generation, a follower's rejoin with
// unchanged metadata does not rebalance, and nothing rebalances while
// they stay: no generation is lost.
func TestLoadedGroupKeepsMembers(t *testing.T) {
	var rec records
	bubble(t, Options{Incarnation: 1, Persist: rec.persist}, func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		a, s := stable2(t, c)
		c2 := movedCoordinator(t, rec.snapshot(), Options{Incarnation: 2})
		defer c2.Close()
		for range 5 {
			time.Sleep(sessionMs / 2 * time.Millisecond)
			wantCode(t, "heartbeat a", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), 0)
			wantCode(t, "heartbeat s", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"}), 0)
		}
		wantCode(t, "commit a", c2.ValidateCommit("g", a, "", 1), 0)
		wantCode(t, "commit s", c2.ValidateCommit("g", s, "i1", 1), 0)
		wantCode(t, "commit of another generation", c2.ValidateCommit("g", a, "", 2), errIllegalGeneration)
		if r := recv(t, goSync(c2, SyncRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"})); r.ErrorCode != 0 || string(r.Assignment) != "s" {
			t.Fatalf("sync retry: %+v", r)
		}
		if r := recvNow(c2, jreq("g", s, "i1")); r.ErrorCode != 0 || r.Generation != 1 || r.LeaderID != a {
			t.Fatalf("follower rejoin: %+v", r)
		}
		wantState(t, c2, "g", Stable, 1)
		check(t, c2)
	})
}

// TestLoadedMemberAbsentExpires: a member of the loaded generation that
// does not show up within its session timeout (counted from the load) is
// removed and the group rebalances into the next generation, which the
// new coordinator persists with its own tenure.
func TestLoadedMemberAbsentExpires(t *testing.T) {
	var rec, rec2 records
	bubble(t, Options{Incarnation: 1, Persist: rec.persist}, func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		a, s := stable2(t, c)
		c2 := movedCoordinator(t, rec.snapshot(), Options{Incarnation: 2, Persist: rec2.persist})
		defer c2.Close()
		// Only a keeps heartbeating; s's session runs out.
		for range 3 {
			time.Sleep(sessionMs / 2 * time.Millisecond)
			c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a})
		}
		wantState(t, c2, "g", PreparingRebalance, 1)
		// Its id is of an earlier tenure: told to rejoin, as any such id.
		wantCode(t, "heartbeat of the expired", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"}), errRebalanceInProgress)
		wantCode(t, "heartbeat during the rebalance", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), errRebalanceInProgress)
		r := recvNow(c2, jreq("g", a, ""))
		if r.ErrorCode != 0 || r.Generation != 2 || r.LeaderID != a || len(r.Members) != 1 {
			t.Fatalf("rejoin: %+v", r)
		}
		if r := recv(t, goSync(c2, SyncRequest{Group: "g", Generation: 2, MemberID: a, Assignments: []SyncAssignment{{a, []byte("all")}}})); r.ErrorCode != 0 {
			t.Fatalf("sync: %+v", r)
		}
		got := rec2.snapshot()
		if len(got) != 1 || got[0].Term != 7 {
			t.Fatalf("new tenure's records %+v", got)
		}
		c3 := movedCoordinator(t, got, Options{Incarnation: 3})
		defer c3.Close()
		wantState(t, c3, "g", Stable, 2)
		check(t, c2)
	})
}

// TestPersistEmptyAndGone: a group that empties is persisted Empty at its
// generation (and loads so: the next generation continues from it); a
// deleted group is persisted gone; before any tenure nothing is
// persisted; a bad record is skipped.
func TestPersistEmptyAndGone(t *testing.T) {
	var rec records
	bubble(t, Options{Incarnation: 1, Persist: rec.persist, InitialRebalanceDelay: -1}, func(t *testing.T, c *Coordinator) {
		m := memberID(t, c, jreq("early", "", ""))
		recvNow(c, jreq("early", m, ""))
		recv(t, goSync(c, SyncRequest{Group: "early", Generation: 1, MemberID: m, Assignments: []SyncAssignment{{m, []byte("x")}}}))
		wantState(t, c, "early", Stable, 1)
		if len(rec.all) != 0 {
			t.Fatalf("persisted before a tenure: %+v", rec.all)
		}
		c.BeginTenure(3, nil)
		m = memberID(t, c, jreq("g", "", ""))
		if r := recvNow(c, jreq("g", m, "")); r.Generation != 1 {
			t.Fatalf("join %+v", r)
		}
		recv(t, goSync(c, SyncRequest{Group: "g", Generation: 1, MemberID: m, Assignments: []SyncAssignment{{m, []byte("x")}}}))
		c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: m}}})
		wantState(t, c, "g", Empty, 2)
		got := rec.snapshot()
		if len(got) != 1 {
			t.Fatalf("records %+v", got)
		}
		bad := Record{Group: "bad", Term: 3, Seq: 99, Data: []byte{recordVersion, byte(Stable), 2, 0}}
		c2 := New(clock.NewSim(0, 0), nil, Options{Incarnation: 2, InitialRebalanceDelay: -1})
		defer c2.Close()
		if n := c2.BeginTenure(7, append(got, bad)); n != 1 {
			t.Fatalf("loaded %d", n)
		}
		wantState(t, c2, "g", Empty, 2)
		m2 := memberID(t, c2, jreq("g", "", ""))
		if r := recvNow(c2, jreq("g", m2, "")); r.Generation != 3 {
			t.Fatalf("first join after the move: %+v, want generation 3", r)
		}
		if d := c2.Describe([]string{"bad"})[0]; d.Known {
			t.Fatalf("bad record loaded: %+v", d)
		}
		if _, err := c2.decodeGroup("bad", bad.Data); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("decode of a bad record: %v", err)
		}
		c.Delete([]string{"g"})
		if last := rec.all[len(rec.all)-1]; last.Group != "g" || last.Data != nil {
			t.Fatalf("delete persisted %+v", last)
		}
	})
}

// TestDeleteAwaitsTombstone: Delete hands out the deleted group's
// tombstone with a channel for its outcome; a failed tombstone makes a
// retried Delete of the no longer held group write it again (and answer
// success), once; after that, and for a group never held, Delete answers
// GROUP_ID_NOT_FOUND without writing.
func TestDeleteAwaitsTombstone(t *testing.T) {
	var rec records
	bubble(t, Options{Incarnation: 1, Persist: rec.persist, InitialRebalanceDelay: -1}, func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		m := memberID(t, c, jreq("g", "", ""))
		recvNow(c, jreq("g", m, ""))
		recv(t, goSync(c, SyncRequest{Group: "g", Generation: 1, MemberID: m, Assignments: []SyncAssignment{{m, []byte("x")}}}))
		c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: m}}})
		wantState(t, c, "g", Empty, 2)
		boom := errors.New("boom")
		setFail := func(err error) {
			rec.mu.Lock()
			rec.fail = err
			rec.mu.Unlock()
		}
		deleteOnce := func(want int16) <-chan error {
			t.Helper()
			r := c.Delete([]string{"g"})[0]
			wantCode(t, "delete g", r.ErrorCode, want)
			return r.Written
		}
		setFail(boom)
		if err := <-deleteOnce(0); !errors.Is(err, boom) {
			t.Fatalf("failed tombstone reported %v", err)
		}
		hasRecord := func() bool {
			return slices.ContainsFunc(rec.snapshot(), func(r Record) bool { return r.Group == "g" })
		}
		if !hasRecord() {
			t.Fatal("the record went although its tombstone failed")
		}
		setFail(nil)
		w := deleteOnce(0)
		if w == nil {
			t.Fatal("retried delete wrote no tombstone")
		}
		if err := <-w; err != nil {
			t.Fatalf("retried tombstone: %v", err)
		}
		if hasRecord() {
			t.Fatal("record kept after the retried tombstone")
		}
		if w := deleteOnce(errGroupIDNotFound); w != nil {
			t.Fatal("a third delete wrote again")
		}
		if r := c.Delete([]string{"never"})[0]; r.ErrorCode != errGroupIDNotFound || r.Written != nil {
			t.Fatalf("delete of an unknown group: %+v", r)
		}
	})
}

// TestBeginTenureForgets: BeginTenure answers a member blocked in
// JoinGroup with NOT_COORDINATOR and forgets the groups it does not load.
func TestBeginTenureForgets(t *testing.T) {
	bubble(t, Options{Incarnation: 1}, func(t *testing.T, c *Coordinator) {
		m := memberID(t, c, jreq("g", "", ""))
		j := goJoin(c, jreq("g", m, ""))
		blocked(t, j)
		c.BeginTenure(2, nil)
		wantCode(t, "blocked join", recv(t, j).ErrorCode, errNotCoordinator)
		if l := c.List(nil); len(l) != 0 {
			t.Fatalf("groups after the tenure began: %+v", l)
		}
	})
}

// FuzzDecodeGroup: bad bytes are an error, never a panic, and what
// decodes re-encodes to the same bytes.
func FuzzDecodeGroup(f *testing.F) {
	f.Add([]byte{recordVersion, byte(Empty), 4, 0, 0, 0, 0})
	c := New(clock.NewSim(0, 0), nil, Options{})
	defer c.Close()
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := c.decodeGroup("g", b)
		if err != nil {
			return
		}
		enc := encodeGroup(g)
		g2, err := c.decodeGroup("g", enc)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if got := encodeGroup(g2); !reflect.DeepEqual(got, enc) {
			t.Fatalf("re-encoded %x, want %x", got, enc)
		}
	})
}

// TestSyncAwaitsRecord: the leader's SyncGroup (and the followers') is
// answered only once the generation's record committed; if the write
// fails they get NOT_COORDINATOR and the group rebalances instead of
// holding a generation no later coordinator could load.
func TestSyncAwaitsRecord(t *testing.T) {
	var mu sync.Mutex
	var dones []func(error)
	hold := func(_ Record, done func(error)) {
		if done != nil {
			mu.Lock()
			dones = append(dones, done)
			mu.Unlock()
		}
	}
	take := func(t *testing.T) func(error) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(dones) != 1 {
			t.Fatalf("%d writes awaited, want 1", len(dones))
		}
		d := dones[0]
		dones = nil
		return d
	}
	bubble(t, Options{Incarnation: 1, Persist: hold, InitialRebalanceDelay: -1}, func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		a := memberID(t, c, jreq("g", "", ""))
		ja := goJoin(c, jreq("g", a, ""))
		if r := recv(t, ja); r.Generation != 1 {
			t.Fatalf("join %+v", r)
		}
		sa := goSync(c, SyncRequest{Group: "g", Generation: 1, MemberID: a, Assignments: []SyncAssignment{{a, []byte("a")}}})
		blocked(t, sa)
		wantState(t, c, "g", CompletingRebalance, 1)
		take(t)(nil)
		if r := recv(t, sa); r.ErrorCode != 0 || string(r.Assignment) != "a" {
			t.Fatalf("sync after the write: %+v", r)
		}
		wantState(t, c, "g", Stable, 1)

		// The leader rejoins: generation 2's write fails.
		ja = goJoin(c, jreq("g", a, ""))
		if r := recv(t, ja); r.Generation != 2 {
			t.Fatalf("rejoin %+v", r)
		}
		sa = goSync(c, SyncRequest{Group: "g", Generation: 2, MemberID: a, Assignments: []SyncAssignment{{a, []byte("a2")}}})
		blocked(t, sa)
		take(t)(errors.New("lost leadership"))
		wantCode(t, "sync after a failed write", recv(t, sa).ErrorCode, errNotCoordinator)
		wantState(t, c, "g", PreparingRebalance, 2)
		if r := recvNow(c, jreq("g", a, "")); r.Generation != 3 {
			t.Fatalf("rejoin after the failed write: %+v", r)
		}
	})
}

// TestPersistStaticReplacement: a static member restarting without its
// member id takes over its assignment without a rebalance (KIP-345); the
// new id is persisted, so a coordinator loading the record knows it and
// not the fenced one.
func TestPersistStaticReplacement(t *testing.T) {
	var rec records
	bubble(t, Options{Incarnation: 1, Persist: rec.persist}, func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		a, s := stable2(t, c)
		r := recvNow(c, jreq("g", "", "i1"))
		if r.ErrorCode != 0 || r.MemberID == s || r.Generation != 1 {
			t.Fatalf("static rejoin: %+v", r)
		}
		c2 := movedCoordinator(t, rec.snapshot(), Options{Incarnation: 2})
		defer c2.Close()
		wantState(t, c2, "g", Stable, 1)
		wantCode(t, "new id", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: r.MemberID, InstanceID: "i1"}), 0)
		wantCode(t, "fenced id", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: s, InstanceID: "i1"}), errFencedInstanceID)
		wantCode(t, "leader", c2.Heartbeat(HeartbeatRequest{Group: "g", Generation: 1, MemberID: a}), 0)
	})
}
