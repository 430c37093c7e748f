package group

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"pgregory.net/rapid"
)

func tid(b byte) [16]byte { return [16]byte{b} }

// topicsVar is a mutable metadata view for Options.Topics.
type topicsVar struct{ ts []TopicInfo }

func (v *topicsVar) get() []TopicInfo { return v.ts }

func consumerOpts(v *topicsVar) Options {
	return Options{Topics: v.get, ConsumerSessionTimeout: 10 * time.Second, ConsumerHeartbeatInterval: time.Second}
}

func hbJoin(group, id string, topics ...string) ConsumerHeartbeatRequest {
	a := AssignorUniform
	return ConsumerHeartbeatRequest{
		Version: 1, Group: group, MemberID: id, MemberEpoch: 0, RebalanceTimeoutMs: 5000,
		SubscribedTopicNames: topics, ServerAssignor: &a, Owned: []TopicPartitions{},
	}
}

// client is the member side: what it was last told it owns.
type client struct {
	id    string
	epoch int32
	owned []TopicPartitions
}

// beat sends a full heartbeat listing what the client owns and applies
// the answer as kgo does (an assignment replaces what it owns).
func (cl *client) beat(c *Coordinator, group string) ConsumerHeartbeatResponse {
	owned := slices.Clone(cl.owned)
	if owned == nil {
		owned = []TopicPartitions{}
	}
	r := chb(c, ConsumerHeartbeatRequest{
		Version: 1, Group: group, MemberID: cl.id, MemberEpoch: cl.epoch, RebalanceTimeoutMs: -1, Owned: owned,
	})
	cl.apply(r)
	return r
}

func (cl *client) apply(r ConsumerHeartbeatResponse) {
	if r.ErrorCode != 0 {
		return
	}
	cl.epoch = r.MemberEpoch
	if r.HasAssignment {
		cl.owned = r.Assignment
	}
}

func count(tps []TopicPartitions) int {
	n := 0
	for _, t := range tps {
		n += len(t.Partitions)
	}
	return n
}

func TestConsumerJoinRevokeFirst(t *testing.T) {
	v := &topicsVar{ts: []TopicInfo{{Name: "a", ID: tid(1), Partitions: 4}}}
	bubble(t, consumerOpts(v), func(t *testing.T, c *Coordinator) {
		r := chb(c, hbJoin("g", "m1", "a"))
		if r.ErrorCode != 0 || r.MemberEpoch != 1 || count(r.Assignment) != 4 {
			t.Fatalf("first join: %+v", r)
		}
		c1 := &client{id: "m1"}
		c1.apply(r)
		r = chb(c, hbJoin("g", "m2", "a"))
		c2 := &client{id: "m2"}
		c2.apply(r)
		// m2's target has two partitions, but m1 still owns them.
		if r.MemberEpoch != 2 || count(c2.owned) != 0 {
			t.Fatalf("second join: %+v", r)
		}
		check(t, c)
		if r := c1.beat(c, "g"); r.MemberEpoch != 1 || count(c1.owned) != 2 {
			t.Fatalf("m1 revoking: %+v, owns %v", r, c1.owned)
		}
		c2.beat(c, "g")
		if count(c2.owned) != 0 {
			t.Fatalf("m2 got partitions before m1 revoked: %v", c2.owned)
		}
		if r := c1.beat(c, "g"); r.MemberEpoch != 2 {
			t.Fatalf("m1 after revoking: %+v", r)
		}
		c2.beat(c, "g")
		if count(c2.owned) != 2 || c2.epoch != 2 {
			t.Fatalf("m2 after release: %+v", c2)
		}
		d := c.ConsumerDescribe([]string{"g", "nope"})
		if d[0].State != ConsumerStable || len(d[0].Members) != 2 || d[1].ErrorCode != errGroupIDNotFound {
			t.Fatalf("describe: %+v", d)
		}
		// m2 leaves: m1 takes everything back.
		if r := chb(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "m2", MemberEpoch: -1}); r.ErrorCode != 0 || r.MemberEpoch != -1 {
			t.Fatalf("leave: %+v", r)
		}
		c1.beat(c, "g")
		if count(c1.owned) != 4 || c1.epoch != 3 {
			t.Fatalf("m1 after m2 left: %+v", c1)
		}
	})
}

func TestConsumerErrors(t *testing.T) {
	v := &topicsVar{ts: []TopicInfo{{Name: "a", ID: tid(1), Partitions: 2}}}
	bubble(t, consumerOpts(v), func(t *testing.T, c *Coordinator) {
		bad := "sticky"
		req := hbJoin("g", "m1", "a")
		req.ServerAssignor = &bad
		if r := chb(c, req); r.ErrorCode != errUnsupportedAssignor {
			t.Fatalf("assignor: %+v", r)
		}
		req = hbJoin("g", "m1")
		req.SubscribedTopicNames = nil
		if r := chb(c, req); r.ErrorCode != errInvalidRequest {
			t.Fatalf("no subscription: %+v", r)
		}
		re := "a("
		req = hbJoin("g", "m1")
		req.SubscribedTopicRegex = &re
		if r := chb(c, req); r.ErrorCode != errInvalidRegex {
			t.Fatalf("regex: %+v", r)
		}
		if r := chb(c, hbJoin("g", "", "a")); r.ErrorCode != errInvalidRequest {
			t.Fatalf("v1 without member id: %+v", r)
		}
		v0 := hbJoin("g", "", "a")
		v0.Version = 0
		r := chb(c, v0)
		if r.ErrorCode != 0 || r.MemberID == "" {
			t.Fatalf("v0 join: %+v", r)
		}
		if r := chb(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: r.MemberID, MemberEpoch: 7}); r.ErrorCode != errFencedMemberEpoch {
			t.Fatalf("wrong epoch: %+v", r)
		}
		if r := chb(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "ghost", MemberEpoch: 1}); r.ErrorCode != errUnknownMemberID {
			t.Fatalf("unknown member: %+v", r)
		}
		if r := chb(c, ConsumerHeartbeatRequest{Version: 1, Group: "other", MemberID: "ghost", MemberEpoch: 3}); r.ErrorCode != errFencedMemberEpoch {
			t.Fatalf("group not held (coordinator moved): %+v", r)
		}
		// Classic JoinGroup to a non-empty consumer group.
		resp := recv(t, goJoin(c, jreq("g", "", "")))
		if resp.ErrorCode != errInconsistentProtocol {
			t.Fatalf("classic join to consumer group: %+v", resp)
		}
		if code := c.ValidateOffsetCommit("g", r.MemberID, "", 0, 9); code != errStaleMemberEpoch {
			t.Fatalf("stale commit: %d", code)
		}
		if code := c.ValidateOffsetCommit("g", r.MemberID, "", 1, 9); code != 0 {
			t.Fatalf("commit: %d", code)
		}
		if code := c.ValidateOffsetCommit("g", r.MemberID, "", 1, 8); code != errUnsupportedVersion {
			t.Fatalf("v8 commit: %d", code)
		}
		if d := c.Delete([]string{"g"}); d[0].ErrorCode != errNonEmptyGroup {
			t.Fatalf("delete: %+v", d)
		}
	})
}

func TestConsumerUpgradeEmptyClassic(t *testing.T) {
	v := &topicsVar{ts: []TopicInfo{{Name: "a", ID: tid(1), Partitions: 2}}}
	bubble(t, Options{Topics: v.get, InitialRebalanceDelay: -1}, func(t *testing.T, c *Coordinator) {
		j := recv(t, goJoin(c, jreq("g", "", "")))
		j = recv(t, goJoin(c, jreq("g", j.MemberID, "")))
		if j.ErrorCode != 0 {
			t.Fatalf("classic join: %+v", j)
		}
		if r := chb(c, hbJoin("g", "m1", "a")); r.ErrorCode != errInconsistentProtocol {
			t.Fatalf("heartbeat to non-empty classic group: %+v", r)
		}
		c.Leave(LeaveRequest{Group: "g", Members: []LeaveMember{{MemberID: j.MemberID}}})
		if r := chb(c, hbJoin("g", "m1", "a")); r.ErrorCode != 0 || count(r.Assignment) != 2 {
			t.Fatalf("upgrade: %+v", r)
		}
		if l := c.ListConsumer(nil); len(l) != 1 || l[0].Type != "consumer" || l[0].StateName != "Stable" {
			t.Fatalf("list: %+v", l)
		}
		if l := c.List(nil); len(l) != 0 {
			t.Fatalf("classic list: %+v", l)
		}
		chb(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "m1", MemberEpoch: -1})
		if d := c.Delete([]string{"g"}); d[0].ErrorCode != 0 {
			t.Fatalf("delete empty consumer group: %+v", d)
		}
	})
}

func TestConsumerSessionAndRegex(t *testing.T) {
	v := &topicsVar{ts: []TopicInfo{{Name: "a1", ID: tid(1), Partitions: 2}, {Name: "b", ID: tid(2), Partitions: 1}}}
	bubble(t, consumerOpts(v), func(t *testing.T, c *Coordinator) {
		re := "a.*"
		req := hbJoin("g", "m1")
		req.SubscribedTopicNames, req.SubscribedTopicRegex = nil, &re
		c1 := &client{id: "m1"}
		c1.apply(chb(c, req))
		if count(c1.owned) != 2 {
			t.Fatalf("regex join: %+v", c1)
		}
		v.ts = append(v.ts, TopicInfo{Name: "a2", ID: tid(3), Partitions: 3}, TopicInfo{Name: "__internal_a", ID: tid(4), Partitions: 1})
		c1.beat(c, "g")
		if count(c1.owned) != 5 {
			t.Fatalf("regex after new topic: %+v", c1)
		}
		c2 := &client{id: "m2"}
		c2.apply(chb(c, hbJoin("g", "m2", "a1")))
		// m2 stops heartbeating; m1 keeps on. After the session timeout
		// m2 is gone and m1 owns everything again.
		for range 15 {
			time.Sleep(time.Second)
			c1.beat(c, "g")
		}
		if d := c.ConsumerDescribe([]string{"g"}); len(d[0].Members) != 1 || count(c1.owned) != 5 {
			t.Fatalf("after m2's session: %+v, m1 %+v", d, c1)
		}
	})
}

func TestConsumerTenure(t *testing.T) {
	v := &topicsVar{ts: []TopicInfo{{Name: "a", ID: tid(1), Partitions: 2}}}
	bubble(t, consumerOpts(v), func(t *testing.T, c *Coordinator) {
		c1 := &client{id: "m1"}
		c1.apply(chb(c, hbJoin("g", "m1", "a")))
		c.BeginTenure(2, nil)
		if r := c1.beat(c, "g"); r.ErrorCode != errFencedMemberEpoch {
			t.Fatalf("after tenure: %+v", r)
		}
		if code := c.ValidateOffsetCommit("g", "m1", "", c1.epoch, 9); code != 0 {
			t.Fatalf("commit of the earlier tenure: %d", code)
		}
		if r := chb(c, hbJoin("g", "m1", "a")); r.ErrorCode != 0 || count(r.Assignment) != 2 {
			t.Fatalf("rejoin: %+v", r)
		}
	})
}

func TestConsumerStaticLeave(t *testing.T) {
	v := &topicsVar{ts: []TopicInfo{{Name: "a", ID: tid(1), Partitions: 4}}}
	bubble(t, consumerOpts(v), func(t *testing.T, c *Coordinator) {
		inst := "i1"
		j := hbJoin("g", "m1", "a")
		j.InstanceID = &inst
		c1 := &client{id: "m1"}
		c1.apply(chb(c, j))
		c2 := &client{id: "m2"}
		c2.apply(chb(c, hbJoin("g", "m2", "a")))
		c1.beat(c, "g")
		c1.beat(c, "g")
		c2.beat(c, "g")
		before := c1.owned
		epoch := c.ConsumerDescribe([]string{"g"})[0].Epoch
		if r := chb(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: "m1", MemberEpoch: -2, InstanceID: &inst}); r.ErrorCode != 0 || r.MemberEpoch != -2 {
			t.Fatalf("static leave: %+v", r)
		}
		j = hbJoin("g", "m1b", "a")
		j.InstanceID = &inst
		r := chb(c, j)
		if r.ErrorCode != 0 || !slices.EqualFunc(r.Assignment, before, func(a, b TopicPartitions) bool { return slices.Equal(a.Partitions, b.Partitions) }) {
			t.Fatalf("static return: %+v, before %v", r, before)
		}
		if e := c.ConsumerDescribe([]string{"g"})[0].Epoch; e != epoch {
			t.Fatalf("static return bumped the epoch %d -> %d", epoch, e)
		}
		j = hbJoin("g", "m1c", "a")
		j.InstanceID = &inst
		if r := chb(c, j); r.ErrorCode != errUnreleasedInstanceID {
			t.Fatalf("second holder of the instance id: %+v", r)
		}
	})
}

// TestConsumerModel drives random joins, heartbeats (some answers lost),
// leaves, silences and metadata changes, and checks after every step the
// coordinator's invariants and that no two live clients believe they own
// the same partition.
func TestConsumerModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var pv any
		synctest.Test(t, func(*testing.T) {
			defer func() { pv = recover() }()
			v := &topicsVar{ts: []TopicInfo{{Name: "a", ID: tid(1), Partitions: 3}, {Name: "b", ID: tid(2), Partitions: 2}}}
			c := New(clock.NewSim(0, 0), nil, consumerOpts(v))
			defer c.Close()
			assignor := rapid.SampledFrom([]string{AssignorUniform, AssignorRange}).Draw(rt, "assignor")
			cls := make([]*client, 4)
			live := make([]bool, 4)
			for i := range cls {
				cls[i] = &client{id: fmt.Sprintf("m%d", i)}
			}
			steps := rapid.IntRange(1, 60).Draw(rt, "steps")
			for range steps {
				i := rapid.IntRange(0, 3).Draw(rt, "member")
				cl := cls[i]
				switch op := rapid.SampledFrom([]string{"join", "beat", "beat", "beat", "lost", "leave", "sleep", "topics"}).Draw(rt, "op"); op {
				case "join":
					if live[i] {
						continue
					}
					req := hbJoin("g", cl.id, "a", "b")
					req.ServerAssignor = &assignor
					r := chb(c, req)
					cl.owned, cl.epoch = nil, 0
					cl.apply(r)
					live[i] = r.ErrorCode == 0
				case "beat", "lost":
					if !live[i] {
						continue
					}
					saved := *cl
					r := cl.beat(c, "g")
					if r.ErrorCode != 0 {
						live[i] = false
						cl.owned = nil
					} else if op == "lost" {
						*cl = saved // answer lost: nothing changed for the client
					}
				case "leave":
					if live[i] {
						chb(c, ConsumerHeartbeatRequest{Version: 1, Group: "g", MemberID: cl.id, MemberEpoch: -1})
						live[i], cl.owned = false, nil
					}
				case "sleep":
					time.Sleep(11 * time.Second) // every session expires
					for j := range live {
						live[j], cls[j].owned = false, nil
					}
				case "topics":
					v.ts = []TopicInfo{{Name: "a", ID: tid(1), Partitions: rapid.Int32Range(1, 5).Draw(rt, "parts")}, {Name: "b", ID: tid(2), Partitions: 2}}
				}
				synctest.Wait()
				if err := c.checkInvariants(); err != nil {
					rt.Fatal(err)
				}
				seen := map[topicPartition]string{}
				for j, o := range cls {
					if !live[j] {
						continue
					}
					for _, t := range o.owned {
						for _, p := range t.Partitions {
							tp := topicPartition{t.TopicID, p}
							if other, ok := seen[tp]; ok {
								rt.Fatalf("%v owned by %s and %s", tp, other, o.id)
							}
							seen[tp] = o.id
						}
					}
				}
			}
		})
		if pv != nil {
			panic(pv)
		}
	})
}

func members(n int, topics ...string) []assignorMember {
	ms := make([]assignorMember, n)
	for i := range ms {
		ms[i] = assignorMember{id: fmt.Sprintf("m%02d", i), topics: topics}
	}
	return ms
}

func TestAssignRange(t *testing.T) {
	topics := []TopicInfo{{Name: "a", ID: tid(1), Partitions: 5}, {Name: "b", ID: tid(2), Partitions: 2}}
	ms := members(2, "a", "b")
	ms[1].topics = []string{"a"}
	got := assignRange(ms, topics)
	want := map[string]assignment{
		"m00": {tid(1): {0, 1, 2}, tid(2): {0, 1}},
		"m01": {tid(1): {3, 4}},
	}
	if !maps.EqualFunc(got, want, func(a, b assignment) bool { return maps.EqualFunc(a, b, slices.Equal) }) {
		t.Fatalf("range: %v, want %v", got, want)
	}
}

// TestAssignUniformProperties: every subscribed partition is assigned to
// exactly one subscribed member; with one subscription for all, loads
// differ by at most one; the result does not depend on the order of the
// previous assignment; and a new member takes at most its share from the
// others (stickiness).
func TestAssignUniformProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		nt := rapid.IntRange(1, 4).Draw(rt, "topics")
		var topics []TopicInfo
		var names []string
		total := 0
		for i := range nt {
			p := rapid.Int32Range(0, 12).Draw(rt, "parts")
			topics = append(topics, TopicInfo{Name: fmt.Sprintf("t%d", i), ID: tid(byte(i + 1)), Partitions: p})
			names = append(names, fmt.Sprintf("t%d", i))
			total += int(p)
		}
		n := rapid.IntRange(1, 6).Draw(rt, "members")
		ms := members(n, names...)
		first := assignUniform(ms, topics)
		checkUniform(rt, first, ms, topics, total)
		again := assignUniform(ms, topics)
		if !maps.EqualFunc(first, again, func(a, b assignment) bool { return maps.EqualFunc(a, b, slices.Equal) }) {
			rt.Fatalf("not deterministic: %v vs %v", first, again)
		}
		// Stickiness: one more member.
		for i := range ms {
			ms[i].prev = first[ms[i].id].flatten()
		}
		ms = append(ms, assignorMember{id: "zz", topics: names})
		second := assignUniform(ms, topics)
		checkUniform(rt, second, ms, topics, total)
		moved := 0
		for _, m := range ms[:n] {
			for _, tp := range m.prev {
				if !second[m.id].has(tp) {
					moved++
				}
			}
		}
		if share := (total + n) / (n + 1); moved > share {
			rt.Fatalf("%d partitions moved, the new member's share is %d", moved, share)
		}
	})
}

func checkUniform(rt *rapid.T, got map[string]assignment, ms []assignorMember, topics []TopicInfo, total int) {
	owner := map[topicPartition]string{}
	lo, hi := total, 0
	for _, m := range ms {
		a := got[m.id]
		for _, tp := range a.flatten() {
			if o, ok := owner[tp]; ok {
				rt.Fatalf("%v assigned to %s and %s", tp, o, m.id)
			}
			owner[tp] = m.id
		}
		lo, hi = min(lo, a.size()), max(hi, a.size())
	}
	if len(owner) != total {
		rt.Fatalf("%d of %d partitions assigned", len(owner), total)
	}
	if hi-lo > 1 {
		rt.Fatalf("loads from %d to %d: %v", lo, hi, got)
	}
}

// chb is a ConsumerHeartbeat that must not block (no persisted record is
// awaited in these tests).
func chb(c *Coordinator, req ConsumerHeartbeatRequest) ConsumerHeartbeatResponse {
	r, err := c.ConsumerHeartbeat(context.Background(), req)
	if err != nil {
		panic(err)
	}
	return r
}
