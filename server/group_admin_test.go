package server

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kadmScenario (after the other single-node scenarios): kadm's
// CommitOffsets/FetchOffsets/DeleteOffsets on an offsets-only group,
// ListGroups and DescribeGroups across member and offsets-only groups,
// DeleteGroups of an Empty group (offsets gone), of a group with members
// (NON_EMPTY_GROUP) and of an unknown group.
func kadmScenario(t *testing.T, c *testCluster) {
	const grp, topic = "g-admin", "t-admin"
	grpCreateTopic(t, c.broker(1), topic, 2)
	adm := c.admin()
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()

	var os kadm.Offsets
	os.AddOffset(topic, 0, 5, -1)
	os.AddOffset(topic, 1, 7, -1)
	if err := adm.CommitAllOffsets(ctx, grp, os); err != nil {
		t.Fatalf("CommitOffsets: %v", err)
	}
	got, err := adm.FetchOffsets(ctx, grp)
	if err != nil || got.Error() != nil {
		t.Fatalf("FetchOffsets: %v %v", err, got.Error())
	}
	if o, ok := got.Lookup(topic, 1); !ok || o.At != 7 {
		t.Fatalf("FetchOffsets: %+v", got)
	}
	// A member group's commit with a stale generation is refused.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID = "g-static", 999, "nobody"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1}}}}
	if resp, err := req.RequestWith(ctx, c.client()); err != nil || resp.Topics[0].Partitions[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("stale member commit: %+v %v", resp, err)
	}

	// ListGroups: member groups and the offsets-only group.
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	want := map[string]string{"g-admin": "Empty", "g-range": "Empty", "g-coop": "Empty", "g-resume": "Empty", "g-static": "Stable"}
	for g, st := range want {
		if l, ok := lg[g]; !ok || l.State != st || l.Coordinator != 1 {
			t.Fatalf("ListGroups %s: %+v (all %+v)", g, l, lg)
		}
	}
	if lg["g-static"].ProtocolType != "consumer" || lg["g-admin"].ProtocolType != "" {
		t.Fatalf("ListGroups protocol types: %+v", lg)
	}
	if stable, err := adm.ListGroups(ctx, "Stable"); err != nil || len(stable) != 1 {
		t.Fatalf("ListGroups Stable: %+v %v", stable, err)
	}

	// DescribeGroups.
	ds, err := adm.DescribeGroups(ctx, grp, "g-static", "nope")
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	if ds[grp].State != "Empty" || ds["g-static"].State != "Stable" || len(ds["g-static"].Members) != 2 || ds["nope"].State != "Dead" {
		t.Fatalf("DescribeGroups: %+v", ds)
	}
	if m := ds["g-static"].Members[0]; m.InstanceID == nil || m.ClientHost != "/127.0.0.1" {
		t.Fatalf("DescribeGroups member: %+v", m)
	}

	// DeleteOffsets: allowed for the offsets-only group, refused for the
	// topic a Stable group subscribes to.
	dr, err := adm.DeleteOffsets(ctx, grp, kadm.TopicsSet{topic: {0: {}}})
	if err != nil || dr.Error() != nil {
		t.Fatalf("DeleteOffsets: %v %v", err, dr.Error())
	}
	if got, _ := adm.FetchOffsets(ctx, grp); func() bool { _, ok := got.Lookup(topic, 0); return ok }() {
		if o, _ := got.Lookup(topic, 0); o.At != -1 {
			t.Fatalf("offset survived DeleteOffsets: %+v", o)
		}
	}
	dr, err = adm.DeleteOffsets(ctx, "g-static", kadm.TopicsSet{"t-static": {0: {}}})
	if err != nil {
		t.Fatalf("DeleteOffsets g-static: %v", err)
	}
	if e, _ := dr.Lookup("t-static", 0); !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Fatalf("DeleteOffsets subscribed topic: %v", e)
	}

	// DeleteGroups.
	del, err := adm.DeleteGroups(ctx, grp, "g-range", "g-static", "nope")
	if err != nil {
		t.Fatalf("DeleteGroups: %v", err)
	}
	for g, want := range map[string]error{grp: nil, "g-range": nil, "g-static": kerr.NonEmptyGroup, "nope": kerr.GroupIDNotFound} {
		if !errors.Is(del[g].Err, want) || (want == nil && del[g].Err != nil) {
			t.Fatalf("DeleteGroups %s: %v, want %v", g, del[g].Err, want)
		}
	}
	for _, g := range []string{grp, "g-range"} {
		got, err := adm.FetchOffsets(ctx, g)
		if err != nil || len(got.Offsets().Sorted()) != 0 {
			t.Fatalf("offsets of deleted %s: %+v %v", g, got, err)
		}
	}
	lg, _ = adm.ListGroups(ctx)
	if _, ok := lg["g-range"]; ok {
		t.Fatalf("deleted group still listed: %+v", lg)
	}
}

// TestGroupConsumersThreeNodes runs the consumer-group scenario with the
// range and cooperative-sticky balancers on three nodes, then the
// coordinator failover (which stops a broker, so it comes last).
func TestGroupConsumersThreeNodes(t *testing.T) {
	c := startClusterWith(t, 3, nil, fastGroups)
	t.Run("range", func(t *testing.T) { consumerGroupScenario(t, c, "g-range", "t-range", kgo.RangeBalancer()) })
	t.Run("cooperative-sticky", func(t *testing.T) {
		consumerGroupScenario(t, c, "g-coop", "t-coop", kgo.CooperativeStickyBalancer())
	})
	t.Run("failover", func(t *testing.T) { failoverScenario(t, c) })
}

// groupCoordinatorNode waits until one of the 3 brokers of c coordinates
// grp (leads its group shard in a term it is ready in) and returns it.
func groupCoordinatorNode(t *testing.T, c *testCluster, grp string) uint64 {
	t.Helper()
	var id uint64
	eventually(t, groupWait, func() bool {
		for i := uint64(1); i <= 3; i++ {
			if b := c.broker(i); b != nil {
				idx, ok := b.Node.GroupShardOf(grp)
				if !ok {
					continue
				}
				if _, ok := b.Node.GroupShardTerm(context.Background(), idx); ok {
					id = i
					return true
				}
			}
		}
		return false
	}, "a coordinator of %s", grp)
	return id
}

// failoverScenario on three nodes: FindCoordinator on every
// broker names the controller leader and the others answer
// NOT_COORDINATOR; two consumers (cooperative-sticky and range runs share
// the cluster: one group each) consume and commit; the coordinator broker
// stops; the consumers rediscover the coordinator, rejoin, and go on
// consuming without loss or repeats from the committed offsets, which a
// kadm FetchOffsets (served by a surviving broker) still shows.
func failoverScenario(t *testing.T, c *testCluster) {
	// The coordinator of f-coop stops (f-range's may be another broker).
	coord := func() uint64 { return groupCoordinatorNode(t, c, "f-coop") }
	leader := coord()
	eventually(t, groupWait, func() bool {
		for i := uint64(1); i <= 3; i++ {
			if c.broker(i).Node.GroupShardLeader(groupShardIndex(t, c, "f-coop")) != int32(leader) {
				return false
			}
		}
		return true
	}, "every broker knows the coordinator")
	for i := uint64(1); i <= 3; i++ {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.SetVersion(3)
		fc.CoordinatorKey = "f-coop"
		resp := rawRoundTrip(t, c.addrs[i], fc).(*kmsg.FindCoordinatorResponse)
		if resp.ErrorCode != 0 || resp.NodeID != int32(leader) {
			t.Fatalf("FindCoordinator at %d: %+v, want node %d", i, resp, leader)
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID = "f-coop", "m"
		want := kerr.NotCoordinator.Code
		if i == leader {
			want = kerr.UnknownMemberID.Code
		}
		grpWantCode(t, "Heartbeat", rawRoundTrip(t, c.addrs[i], hb).(*kmsg.HeartbeatResponse).ErrorCode, want)
	}

	// The clients run until the end; the whole scenario spans the failover.
	type run struct {
		grp, topic string
		seen       *seenRecords
		produced   map[[2]int64]bool
		cs         []*groupConsumer
	}
	runs := []*run{
		{grp: "f-coop", topic: "tf-coop", seen: newSeen(), produced: map[[2]int64]bool{}},
		{grp: "f-range", topic: "tf-range", seen: newSeen(), produced: map[[2]int64]bool{}},
	}
	adm := c.admin()
	prod := producer(c)
	for i, r := range runs {
		grpCreateTopic(t, c.broker(leader), r.topic, 4)
		bal := kgo.CooperativeStickyBalancer()
		if i == 1 {
			bal = kgo.RangeBalancer()
		}
		for _, name := range []string{"a", "b"} {
			r.cs = append(r.cs, startConsumer(t, c, r.grp+"-"+name, r.grp, r.topic, r.seen, kgo.Balancers(bal)))
		}
	}
	for _, r := range runs {
		waitStable(t, adm, r.grp, 2)
		produceTo(t, prod, r.topic, 4, 10, r.produced)
	}
	for _, r := range runs {
		eventually(t, groupWait, func() bool { return r.seen.total() == len(r.produced) }, "%s: before failover", r.grp)
		for _, gc := range r.cs {
			gc.commit(t)
		}
	}

	shard := groupShardIndex(t, c, "f-coop")
	c.stop(leader)
	next := coord()
	if next == leader {
		t.Fatalf("coordinator still %d", leader)
	}
	// Every running broker names the new coordinator before the fresh
	// admin client asks one: a follower learns the new leader a moment
	// after it is elected, and a kgo client that found the stopped one
	// keeps dialing it (failed once in make test on a loaded machine).
	eventually(t, groupWait, func() bool {
		for i := uint64(1); i <= 3; i++ {
			if i != leader && c.broker(i).Node.GroupShardLeader(shard) != int32(next) {
				return false
			}
		}
		return true
	}, "every running broker knows the new coordinator")
	// A fresh admin client: kgo's sharded requests (DescribeGroups) keep
	// failing on a cached coordinator whose broker is gone ("unable to
	// dial"), as they would against Kafka.
	adm = c.admin()
	// Both members rejoin at the new coordinator (its groups are built
	// afresh, so Stable with two members means both rejoined). Records
	// produced before that could be consumed under the lost assignment and
	// again from the committed offsets after the rejoin: at-least-once, as
	// with Kafka.
	for _, r := range runs {
		waitStable(t, adm, r.grp, 2)
	}
	for _, r := range runs {
		produceTo(t, prod, r.topic, 4, 10, r.produced)
	}
	for _, r := range runs {
		eventually(t, groupWait, func() bool { return r.seen.total() == len(r.produced) }, "%s: after failover", r.grp)
		r.seen.checkExactlyOnce(t, r.produced)
		ctx, cancel := context.WithTimeout(context.Background(), groupWait)
		os, err := adm.FetchOffsets(ctx, r.grp)
		cancel()
		if err != nil || os.Error() != nil {
			t.Fatalf("%s: FetchOffsets: %v %v", r.grp, err, os.Error())
		}
		for p := int32(0); p < 4; p++ {
			if o, ok := os.Lookup(r.topic, p); !ok || o.At < 10 {
				t.Fatalf("%s: committed offset of p%d after failover: %+v", r.grp, p, o)
			}
		}
		for _, gc := range r.cs {
			gc.close()
		}
	}
}

// groupShardIndex is grp's group shard (waiting for the shards to exist).
func groupShardIndex(t *testing.T, c *testCluster, grp string) int32 {
	t.Helper()
	var idx int32
	eventually(t, groupWait, func() bool {
		var ok bool
		idx, ok = c.broker(1).Node.GroupShardOf(grp)
		return ok
	}, "group shards")
	return idx
}
