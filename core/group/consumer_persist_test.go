package group

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/core/clock"
)

// goCHB runs ConsumerHeartbeat in a goroutine; its answer arrives on the
// channel.
func goCHB(c *Coordinator, req ConsumerHeartbeatRequest) <-chan ConsumerHeartbeatResponse {
	ch := make(chan ConsumerHeartbeatResponse, 1)
	go func() {
		r, _ := c.ConsumerHeartbeat(context.Background(), req)
		ch <- r
	}()
	return ch
}

// consumer3 builds consumer group "g" over topics a (4 partitions) and b
// (2): m1 static ("i1", rack "r1") on a and b, m2 on a with the range
// assignor, m3 by regex "a.*"; reconciled until Stable.
func consumer3(t *testing.T, c *Coordinator) []*client {
	t.Helper()
	inst, rack, re := "i1", "r1", "a.*"
	j1 := hbJoin("g", "m1", "a", "b")
	j1.InstanceID, j1.RackID = &inst, &rack
	j2 := hbJoin("g", "m2", "a")
	rng := AssignorRange
	j2.ServerAssignor = &rng
	j3 := hbJoin("g", "m3")
	j3.SubscribedTopicNames, j3.SubscribedTopicRegex = nil, &re
	cls := []*client{{id: "m1"}, {id: "m2"}, {id: "m3"}}
	for i, j := range []ConsumerHeartbeatRequest{j1, j2, j3} {
		j.ClientID, j.ClientHost = "cl", "/10.0.0.1"
		cls[i].apply(chb(c, j))
	}
	for range 4 {
		for _, cl := range cls {
			cl.beat(c, "g")
		}
	}
	if d := c.ConsumerDescribe([]string{"g"})[0]; d.State != ConsumerStable || len(d.Members) != 3 {
		t.Fatalf("not stable: %+v", d)
	}
	check(t, c)
	return cls
}

func twoTopics() *topicsVar {
	return &topicsVar{ts: []TopicInfo{{Name: "a", ID: tid(1), Partitions: 4}, {Name: "b", ID: tid(2), Partitions: 2}}}
}

func persistOpts(v *topicsVar, inc uint64, persist func(Record, func(error))) Options {
	o := consumerOpts(v)
	o.Incarnation, o.Persist = inc, persist
	return o
}

// TestConsumerPersistRoundTrip: the record of a consumer group loads, on
// another coordinator, as the same group: epochs, assignor, members with
// their instance ids, racks, clients, subscriptions, epochs, assignments
// and targets; the record is of its own kind and re-encodes to itself.
func TestConsumerPersistRoundTrip(t *testing.T) {
	var rec records
	v := twoTopics()
	bubble(t, persistOpts(v, 1, rec.persist), func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		consumer3(t, c)
		// m1 (static) leaves with -2: it keeps its partitions for its
		// instance id, and the record says so.
		inst := "i1"
		chb(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "m1", MemberEpoch: -2, InstanceID: &inst})
		synctest.Wait()
		got := rec.snapshot()
		if len(got) != 1 || got[0].Group != "g" || got[0].Term != 3 || got[0].Data[0] != consumerRecordVersion {
			t.Fatalf("records %+v", got)
		}
		c2 := movedCoordinator(t, got, persistOpts(v, 2, nil))
		defer c2.Close()
		want, have := c.ConsumerDescribe([]string{"g"}), c2.ConsumerDescribe([]string{"g"})
		if !reflect.DeepEqual(want, have) {
			t.Fatalf("loaded %+v\nwant %+v", have, want)
		}
		if a, b := encodeCgroup(c.cgroups["g"]), encodeCgroup(c2.cgroups["g"]); !slices.Equal(a, b) {
			t.Fatalf("loaded group encodes to %x, want %x", b, a)
		}
		m1, m1b := c.cgroups["g"].members["m1"], c2.cgroups["g"].members["m1"]
		if !m1b.staticLeft || m1b.prevEpoch != m1.prevEpoch || m1b.rackID != "r1" || m1b.assignor != AssignorUniform {
			t.Fatalf("loaded m1 %+v, want %+v", m1b, m1)
		}
		if _, err := c2.decodeCgroup("g", got[0].Data[:len(got[0].Data)-1]); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("truncated record: %v", err)
		}
		if _, err := c2.decodeGroup("g", got[0].Data); !errors.Is(err, ErrBadRecord) {
			t.Fatalf("consumer record decoded as classic: %v", err)
		}
	})
}

// TestConsumerLoadedKeepsMembers: after a move the members heartbeat at
// their epochs for longer than a session without a new epoch, a changed
// assignment or a changed group epoch, and nothing new is written.
func TestConsumerLoadedKeepsMembers(t *testing.T) {
	var rec, rec2 records
	v := twoTopics()
	bubble(t, persistOpts(v, 1, rec.persist), func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		cls := consumer3(t, c)
		before := c.ConsumerDescribe([]string{"g"})[0]
		c2 := movedCoordinator(t, rec.snapshot(), persistOpts(v, 2, rec2.persist))
		defer c2.Close()
		owned := make([][]TopicPartitions, len(cls))
		for i, cl := range cls {
			owned[i] = cl.owned
		}
		for range 25 {
			time.Sleep(time.Second)
			for i, cl := range cls {
				epoch := cl.epoch
				if r := cl.beat(c2, "g"); r.ErrorCode != 0 || r.MemberEpoch != epoch || !reflect.DeepEqual(cl.owned, owned[i]) {
					t.Fatalf("%s after the move: %+v (epoch was %d, owned %v)", cl.id, r, epoch, owned[i])
				}
			}
		}
		after := c2.ConsumerDescribe([]string{"g"})[0]
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("after the move %+v\nbefore %+v", after, before)
		}
		for _, cl := range cls {
			wantCode(t, "commit "+cl.id, c2.ValidateOffsetCommit("g", cl.id, "", cl.epoch, 9), 0)
		}
		if len(rec2.all) != 0 {
			t.Fatalf("records written without a change: %+v", rec2.all)
		}
		check(t, c2)
	})
}

// TestConsumerLoadedMemberAbsentExpires: a loaded member that does not
// heartbeat within its session (counted from the load) is removed; the
// group epoch bumps, the others take its partitions, and the new
// coordinator writes the group with its own tenure.
func TestConsumerLoadedMemberAbsentExpires(t *testing.T) {
	var rec, rec2 records
	v := twoTopics()
	bubble(t, persistOpts(v, 1, rec.persist), func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		cls := consumer3(t, c)
		epoch := c.ConsumerDescribe([]string{"g"})[0].Epoch
		c2 := movedCoordinator(t, rec.snapshot(), persistOpts(v, 2, rec2.persist))
		defer c2.Close()
		for range 15 { // m2 stays silent
			time.Sleep(time.Second)
			cls[0].beat(c2, "g")
			cls[2].beat(c2, "g")
		}
		d := c2.ConsumerDescribe([]string{"g"})[0]
		if d.Epoch != epoch+1 || len(d.Members) != 2 || d.State != ConsumerStable {
			t.Fatalf("after m2's session: %+v (epoch was %d)", d, epoch)
		}
		if count(cls[0].owned)+count(cls[2].owned) != 6 {
			t.Fatalf("partitions not taken over: %v %v", cls[0].owned, cls[2].owned)
		}
		wantCode(t, "m2", chb(c2, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "m2", MemberEpoch: cls[1].epoch}).ErrorCode, errUnknownMemberID)
		got := rec2.snapshot()
		if len(got) != 1 || got[0].Term != 7 {
			t.Fatalf("new tenure's records %+v", got)
		}
		c3 := movedCoordinator(t, got, persistOpts(v, 3, nil))
		defer c3.Close()
		if d3 := c3.ConsumerDescribe([]string{"g"})[0]; !reflect.DeepEqual(d3, d) {
			t.Fatalf("third coordinator %+v, want %+v", d3, d)
		}
	})
}

// TestConsumerLoadedRegexReresolves: a loaded regex member's subscription
// is re-resolved against the topics of the new tenure at its next
// heartbeat, with the topic check that heartbeat brings (it is not in the
// record); other members' heartbeats before it do not resolve it without
// the check.
func TestConsumerLoadedRegexReresolves(t *testing.T) {
	var rec records
	v := twoTopics()
	bubble(t, persistOpts(v, 1, rec.persist), func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		cls := consumer3(t, c)
		c2 := movedCoordinator(t, rec.snapshot(), persistOpts(v, 2, nil))
		defer c2.Close()
		v.ts = append(v.ts, TopicInfo{Name: "a2", ID: tid(3), Partitions: 1}, TopicInfo{Name: "a3", ID: tid(4), Partitions: 1})
		cls[0].beat(c2, "g")
		if m3 := c2.cgroups["g"].members["m3"]; !slices.Equal(m3.topics, []string{"a"}) {
			t.Fatalf("m3 resolved without its topic check: %v", m3.topics)
		}
		owned := slices.Clone(cls[2].owned)
		r := chb(c2, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "m3", MemberEpoch: cls[2].epoch, RebalanceTimeoutMs: -1,
			Owned: owned, TopicAllowed: func(topic string) bool { return topic != "a3" }})
		if r.ErrorCode != 0 {
			t.Fatalf("m3: %+v", r)
		}
		if m3 := c2.cgroups["g"].members["m3"]; !slices.Equal(m3.topics, []string{"a", "a2"}) {
			t.Fatalf("m3 resolved to %v, want [a a2]", m3.topics)
		}
		check(t, c2)
	})
}

// TestConsumerHeartbeatAwaitsRecord: an answer handing out an epoch or
// assignment is sent only once the group's record committed; if the
// write fails it is not handed out (NOT_COORDINATOR) and the retried
// heartbeat writes again and gets it. An answer changing nothing is
// immediate.
func TestConsumerHeartbeatAwaitsRecord(t *testing.T) {
	var mu sync.Mutex
	var dones []func(error)
	hold := func(_ Record, done func(error)) {
		mu.Lock()
		dones = append(dones, done)
		mu.Unlock()
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
	v := twoTopics()
	bubble(t, persistOpts(v, 1, hold), func(t *testing.T, c *Coordinator) {
		c.BeginTenure(3, nil)
		j := goCHB(c, hbJoin("g", "m1", "a"))
		blocked(t, j)
		take(t)(nil)
		r := recv(t, j)
		if r.ErrorCode != 0 || r.MemberEpoch != 1 || count(r.Assignment) != 4 {
			t.Fatalf("join after the write: %+v", r)
		}
		c1 := &client{id: "m1"}
		c1.apply(r)
		if r := recv(t, goCHB(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "m1", MemberEpoch: 1})); r.ErrorCode != 0 || r.MemberEpoch != 1 {
			t.Fatalf("heartbeat without a change: %+v", r)
		}

		// m2's join: its record's write fails.
		j = goCHB(c, hbJoin("g", "m2", "a"))
		blocked(t, j)
		take(t)(errors.New("lost leadership"))
		if r := recv(t, j); r.ErrorCode != errNotCoordinator || r.MemberEpoch != 0 || r.HasAssignment {
			t.Fatalf("join after a failed write: %+v", r)
		}
		// The client retries: the record is written again.
		j = goCHB(c, hbJoin("g", "m2", "a"))
		blocked(t, j)
		take(t)(nil)
		if r := recv(t, j); r.ErrorCode != 0 || r.MemberEpoch != 2 || !r.HasAssignment {
			t.Fatalf("retried join: %+v", r)
		}
		// m1 is told to revoke: held until written.
		b := goCHB(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "m1", MemberEpoch: 1, Owned: c1.owned})
		blocked(t, b)
		take(t)(nil)
		if r := recv(t, b); r.ErrorCode != 0 || count(r.Assignment) != 2 {
			t.Fatalf("revocation: %+v", r)
		}
		check(t, c)
	})
}

// FuzzDecodeCgroup: bad bytes are an error, never a panic, and what
// decodes re-encodes to bytes that decode and re-encode to themselves.
func FuzzDecodeCgroup(f *testing.F) {
	g := &cgroup{
		id: "g", epoch: 3, assignmentEpoch: 3, assignor: AssignorUniform, subscribed: twoTopics().ts,
		members: map[string]*cmember{"m1": {
			id: "m1", instanceID: "i1", names: []string{"a"}, regex: "b.*", topics: []string{"a", "b"},
			epoch: 3, prevEpoch: 2, rebalance: 5 * time.Second, staticLeft: true,
			assigned: assignment{tid(1): {0, 1}}, revoking: assignment{tid(2): {0}},
		}},
		target: map[string]assignment{"m1": {tid(1): {0, 1, 2}}},
	}
	seed := encodeCgroup(g)
	f.Add(seed)
	f.Add([]byte{consumerRecordVersion, 0, 0, 0, 0, 0})
	c := New(clock.NewSim(0, 0), nil, Options{})
	defer c.Close()
	if _, err := c.decodeCgroup("g", seed); err != nil {
		f.Fatalf("seed: %v", err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := c.decodeCgroup("g", b)
		if err != nil {
			return
		}
		enc := encodeCgroup(g)
		g2, err := c.decodeCgroup("g", enc)
		if err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if got := encodeCgroup(g2); !slices.Equal(got, enc) {
			t.Fatalf("re-encoded %x, want %x", got, enc)
		}
	})
}
