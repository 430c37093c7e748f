package server

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/meta"
)

// groupsPerShard returns, for each of the cluster's n group shards, one
// group name (prefix-k for the smallest k) that maps to it.
func groupsPerShard(t *testing.T, c *testCluster, prefix string) []string {
	t.Helper()
	n := c.broker(1).Node.GroupShardCount()
	out := make([]string, n)
	for k, found := 0, 0; found < n; k++ {
		name := fmt.Sprintf("%s-%d", prefix, k)
		if i := meta.GroupShardIndex(name, n); out[i] == "" {
			out[i], found = name, found+1
		}
		if k > 10_000 {
			t.Fatalf("no group name for every shard: %v", out)
		}
	}
	return out
}

// TestGroupShardsSpreadCoordinators: on three nodes the group shards'
// leaders, and with them the groups' coordinators, are spread over the
// brokers (at least two distinct ones among groups of every shard), every
// broker's FindCoordinator names the same coordinator per group (its
// shard's leader), and the others answer NOT_COORDINATOR; consumers of
// two groups on different shards consume exactly once; moving one
// group's shard leadership keeps that group's generation and members (no
// rebalance), while the other group's coordinator and generation are
// untouched.
func TestGroupShardsSpreadCoordinators(t *testing.T) {
	c := startClusterWith(t, 3, nil, fastGroups)
	names := groupsPerShard(t, c, "spread")
	coords := map[uint64]bool{}
	byGroup := map[string]uint64{}
	for _, g := range names {
		id := groupCoordinatorNode(t, c, g)
		coords[id], byGroup[g] = true, id
	}
	if len(coords) < 2 {
		t.Fatalf("every group on one coordinator: %v", byGroup)
	}
	for _, g := range names {
		eventually(t, groupWait, func() bool {
			for i := uint64(1); i <= 3; i++ {
				fc := kmsg.NewPtrFindCoordinatorRequest()
				fc.SetVersion(3)
				fc.CoordinatorKey = g
				resp := rawRoundTrip(t, c.addrs[i], fc).(*kmsg.FindCoordinatorResponse)
				if resp.ErrorCode != 0 || resp.NodeID != int32(byGroup[g]) {
					return false
				}
			}
			return true
		}, "every broker names node %d for %s", byGroup[g], g)
		for i := uint64(1); i <= 3; i++ {
			if i == byGroup[g] {
				continue
			}
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.MemberID = g, "m"
			resp := rawRoundTrip(t, c.addrs[i], hb).(*kmsg.HeartbeatResponse)
			grpWantCode(t, "Heartbeat at "+fmt.Sprint(i), resp.ErrorCode, 16) // NOT_COORDINATOR
		}
	}

	// Two groups on different shards (on different coordinators when the
	// spread allows it).
	ga, gb := names[0], names[1]
	for _, g := range names[1:] {
		if byGroup[g] != byGroup[ga] {
			gb = g
			break
		}
	}
	ta, tb := "t-spread-a", "t-spread-b"
	grpCreateTopic(t, c.broker(1), ta, 4)
	grpCreateTopic(t, c.broker(1), tb, 4)
	prod := producer(c)
	seenA, seenB := newSeen(), newSeen()
	prodA, prodB := map[[2]int64]bool{}, map[[2]int64]bool{}
	var rbA, rbB rebalances
	for _, name := range []string{"a1", "a2"} {
		startConsumer(t, c, name, ga, ta, seenA, rbA.opts(name)...)
	}
	for _, name := range []string{"b1", "b2"} {
		startConsumer(t, c, name, gb, tb, seenB, rbB.opts(name)...)
	}
	adm := c.admin()
	waitStable(t, adm, ga, 2)
	waitStable(t, adm, gb, 2)
	produceTo(t, prod, ta, 4, 10, prodA)
	produceTo(t, prod, tb, 4, 10, prodB)
	eventually(t, groupWait, func() bool { return seenA.total() == len(prodA) && seenB.total() == len(prodB) }, "consumed before the move")
	eventually(t, groupWait, func() bool {
		st, err := c.broker(byGroup[ga]).Node.GroupStates()
		return err == nil && slices.ContainsFunc(st.Groups, func(s meta.GroupState) bool { return s.Group == ga })
	}, "group record of %s replicated", ga)

	leaderA, leaderB := byGroup[ga], byGroup[gb]
	beforeA := c.broker(leaderA).Groups.Describe([]string{ga})[0]
	beforeB := c.broker(leaderB).Groups.Describe([]string{gb})[0]
	shardB, _ := c.broker(leaderB).Node.GroupShardOf(gb)
	termB, ok := c.broker(leaderB).Node.GroupShardTerm(context.Background(), shardB)
	if !ok || beforeA.State != group.Stable || beforeB.State != group.Stable {
		t.Fatalf("before the move: %+v %+v (term of %s's shard %d, %v)", beforeA, beforeB, gb, termB, ok)
	}
	eventsA, eventsB := rbA.snapshot(), rbB.snapshot()

	target := leaderA%3 + 1
	eventually(t, groupWait, func() bool {
		if err := c.broker(leaderA).Node.TransferCoordinator(ga, target); err != nil {
			t.Logf("transfer: %v", err)
		}
		return groupCoordinatorNode(t, c, ga) == target
	}, "coordinator of %s moved from %d to %d", ga, leaderA, target)

	produceTo(t, prod, ta, 4, 10, prodA)
	produceTo(t, prod, tb, 4, 10, prodB)
	eventually(t, groupWait, func() bool { return seenA.total() == len(prodA) && seenB.total() == len(prodB) }, "consumed after the move")
	waitStable(t, c.admin(), ga, 2)
	d := c.broker(target).Groups.Describe([]string{ga})[0]
	if d.State != group.Stable || d.Generation != beforeA.Generation || len(d.Members) != 2 ||
		d.Members[0].MemberID != beforeA.Members[0].MemberID || d.Members[1].MemberID != beforeA.Members[1].MemberID {
		t.Fatalf("%s: new coordinator holds %+v, old held %+v", ga, d, beforeA)
	}
	if got := rbA.snapshot(); len(got) != len(eventsA) {
		t.Fatalf("%s: partition callbacks after the move: %v (before: %v)", ga, got[len(eventsA):], eventsA)
	}
	// The other shard did not move, nor did its group.
	if leaderB != target && leaderB != leaderA {
		if tm, ok := c.broker(leaderB).Node.GroupShardTerm(context.Background(), shardB); !ok || tm != termB {
			t.Fatalf("%s's shard moved: term %d (%v), was %d", gb, tm, ok, termB)
		}
	}
	if got := groupCoordinatorNode(t, c, gb); got != leaderB {
		t.Fatalf("%s's coordinator moved from %d to %d", gb, leaderB, got)
	}
	if d := c.broker(leaderB).Groups.Describe([]string{gb})[0]; d.State != group.Stable || d.Generation != beforeB.Generation {
		t.Fatalf("%s: %+v, before %+v", gb, d, beforeB)
	}
	if got := rbB.snapshot(); len(got) != len(eventsB) {
		t.Fatalf("%s: partition callbacks: %v (before: %v)", gb, got[len(eventsB):], eventsB)
	}
	seenA.checkExactlyOnce(t, prodA)
	seenB.checkExactlyOnce(t, prodB)
}

// TestGroupShardsOffsetsAndListGroups: on three nodes, an OffsetCommit
// and OffsetFetch round trip for a group of every group shard, each served
// by its shard's leader; ListGroups (kadm asks every broker) lists the
// groups of every shard once; DeleteGroups removes them shard by shard.
func TestGroupShardsOffsetsAndListGroups(t *testing.T) {
	c := startClusterWith(t, 3, nil, fastGroups)
	const topic = "t-gs-offsets"
	grpCreateTopic(t, c.broker(1), topic, 2)
	names := groupsPerShard(t, c, "offs")
	adm := c.admin()
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	for i, g := range names {
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: topic, Partition: int32(i % 2), At: int64(100 + i), LeaderEpoch: -1})
		r, err := adm.CommitOffsets(ctx, g, os)
		if err != nil || r.Error() != nil {
			t.Fatalf("%s: commit: %v %v", g, err, r.Error())
		}
	}
	for i, g := range names {
		got, err := adm.FetchOffsets(ctx, g)
		if err != nil || got.Error() != nil {
			t.Fatalf("%s: fetch: %v %v", g, err, got.Error())
		}
		if o, ok := got.Lookup(topic, int32(i%2)); !ok || o.At != int64(100+i) {
			t.Fatalf("%s: fetched %+v", g, got)
		}
		// The offsets live in the group's shard (every node holds a
		// replica here).
		idx, _ := c.broker(1).Node.GroupShardOf(g)
		eventually(t, groupWait, func() bool {
			gs, err := c.broker(1).Node.ShardGroups(idx)
			return err == nil && slices.Contains(gs, g)
		}, "%s in broker 1's replica of shard %d", g, idx)
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range names {
		if _, ok := listed[g]; !ok {
			t.Fatalf("ListGroups lacks %s: %v", g, listed.Groups())
		}
	}
	del, err := adm.DeleteGroups(ctx, names...)
	if err != nil || del.Error() != nil {
		t.Fatalf("delete: %v %v", err, del.Error())
	}
	for _, g := range names {
		if got, err := adm.FetchOffsets(ctx, g); err != nil || got.Error() != nil || len(got) != 0 {
			t.Fatalf("%s after delete: %+v %v", g, got, err)
		}
	}
}

// TestGroupShardsTxnOffsets: a consume-transform-produce session whose
// group lives in a group shard: committed rounds' offsets reach the
// shard (the group's marker), aborted rounds' do not, and OffsetFetch
// with RequireStable never answers an offset of an unfinished
// transaction.
func TestGroupShardsTxnOffsets(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.createTopic("gs-in", 1)
	c.createTopic("gs-out", 1)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	p := c.client()
	produced := 0
	produce := func() {
		for range 2 {
			if err := p.ProduceSync(ctx, &kgo.Record{Topic: "gs-in", Value: []byte(fmt.Sprintf("v%d", produced))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			produced++
		}
	}
	const grp = "gs-txn-group"
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(c.seeds()...),
		kgo.TransactionalID("gs-txn"), kgo.TransactionTimeout(10e9),
		kgo.ConsumerGroup(grp), kgo.ConsumeTopics("gs-in"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	adm := c.admin()
	committedAt := func() int64 {
		offs, err := adm.FetchOffsets(ctx, grp)
		if err != nil {
			t.Fatal(err)
		}
		o, ok := offs.Lookup("gs-in", 0)
		if !ok {
			return 0
		}
		return o.At
	}
	var want int64
	for round := 0; round < 4 || want < int64(produced); round++ {
		if ctx.Err() != nil {
			t.Fatalf("round %d: committed %d", round, want)
		}
		if round < 4 {
			produce()
		}
		fs := sess.PollFetches(ctx)
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		var last int64 = -1
		fs.EachRecord(func(r *kgo.Record) {
			last = r.Offset
			sess.Produce(ctx, &kgo.Record{Topic: "gs-out", Value: r.Value}, nil)
		})
		commit := round%2 == 0
		committed, err := sess.End(ctx, kgo.TransactionEndTry(commit))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if committed && last >= 0 {
			want = last + 1
		}
		// Read stable: the transaction is complete once End returned (its
		// markers, the group's included, are written).
		req := kmsg.NewPtrOffsetFetchRequest()
		req.SetVersion(7)
		req.Group, req.RequireStable = grp, true
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "gs-in", []int32{0}
		req.Topics = append(req.Topics, rt)
		eventually(t, groupWait, func() bool {
			resp, err := req.RequestWith(ctx, p)
			if err != nil || resp.ErrorCode != 0 || len(resp.Topics) != 1 {
				return false
			}
			pr := resp.Topics[0].Partitions[0]
			if pr.ErrorCode == 15 || pr.ErrorCode == 16 || pr.ErrorCode == 88 { // coordinator moving, UNSTABLE_OFFSET_COMMIT
				return false
			}
			if pr.ErrorCode != 0 {
				t.Fatalf("round %d: OffsetFetch: %+v", round, pr)
			}
			got := max(pr.Offset, 0)
			if got != want {
				t.Fatalf("round %d (commit %v): stable offset %d, want %d", round, committed, got, want)
			}
			return true
		}, "stable offset of round %d", round)
	}
	if got := committedAt(); got != int64(produced) {
		t.Fatalf("committed %d, want %d", got, produced)
	}
}
