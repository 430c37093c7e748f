package server

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// fast848 shortens the consumer protocol's intervals for tests: members
// heartbeat every 100 ms and a silent member is removed after 3 s.
func fast848(bc *BrokerConfig) {
	fastGroups(bc)
	bc.Groups.ConsumerHeartbeatInterval = 100 * time.Millisecond
	bc.Groups.ConsumerSessionTimeout = 3 * time.Second
}

// describe848 asks for one group with ConsumerGroupDescribe through cl.
func describe848(cl *kgo.Client, grp string) (kmsg.ConsumerGroupDescribeResponseGroup, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{grp}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kmsg.ConsumerGroupDescribeResponseGroup{}, err
	}
	if len(resp.Groups) != 1 {
		return kmsg.ConsumerGroupDescribeResponseGroup{}, fmt.Errorf("%d groups described", len(resp.Groups))
	}
	g := resp.Groups[0]
	return g, kerr.ErrorForCode(g.ErrorCode)
}

// waitStable848 waits until the consumer group is Stable with n members
// that together own all parts partitions, each at the assignment epoch and
// each owning some when there are enough partitions.
func waitStable848(t testing.TB, cl *kgo.Client, grp string, n, parts int) kmsg.ConsumerGroupDescribeResponseGroup {
	t.Helper()
	var g kmsg.ConsumerGroupDescribeResponseGroup
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last description of %s: %s", grp, last)
		}
	}()
	eventually(t, groupWait, func() bool {
		var err error
		g, err = describe848(cl, grp)
		last = fmt.Sprintf("%+v %v", g, err)
		if err != nil || g.State != "Stable" || len(g.Members) != n {
			return false
		}
		total := 0
		for _, m := range g.Members {
			owned := 0
			for _, tp := range m.Assignment.TopicPartitions {
				owned += len(tp.Partitions)
			}
			if m.MemberEpoch != g.AssignmentEpoch || (owned == 0 && parts >= n) {
				return false
			}
			total += owned
		}
		return total == parts
	}, "consumer group %s Stable with %d members owning %d partitions", grp, n, parts)
	return g
}

func opts848(bal kgo.GroupBalancer) []kgo.Opt {
	return []kgo.Opt{kgo.ServerSideBalancer(), kgo.Balancers(bal)}
}

// consumer848Scenario: two consumers of the KIP-848 protocol share a
// 4-partition topic, a third joins, one closes (leaves), then a raw member
// joins and goes silent (a crash: its session times out); after each step
// every produced record is consumed exactly once, and the partitions of
// the departed members move to the others.
func consumer848Scenario(t *testing.T, c *testCluster, grp, topic string, bal kgo.GroupBalancer) {
	grpCreateTopic(t, c.broker(1), topic, 4)
	adm := c.client()
	prod := producer(c)
	seen := newSeen()
	produced := map[[2]int64]bool{}
	a := startConsumer(t, c, "a", grp, topic, seen, opts848(bal)...)
	b := startConsumer(t, c, "b", grp, topic, seen, opts848(bal)...)
	waitStable848(t, adm, grp, 2, 4)
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "phase 1: %d records consumed", len(produced))
	a.commit(t)
	b.commit(t)

	x := startConsumer(t, c, "c", grp, topic, seen, opts848(bal)...)
	waitStable848(t, adm, grp, 3, 4)
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "phase 2: %d records consumed", len(produced))

	cParts := seen.partitionsOf("c")
	x.close()
	waitStable848(t, adm, grp, 2, 4)
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "phase 3: %d records consumed", len(produced))
	moved := map[int32]int{}
	for _, name := range []string{"a", "b"} {
		for p, n := range seen.partitionsOf(name) {
			moved[p] += n
		}
	}
	for p := range cParts {
		if moved[p] == 0 {
			t.Fatalf("partition %d of the closed consumer never consumed by another", p)
		}
	}

	// A member that joins and never heartbeats again: it is given
	// partitions, then removed at its session timeout, and they return.
	join := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	join.Group, join.MemberID, join.MemberEpoch, join.RebalanceTimeoutMillis = grp, "crashing-member", 0, 5000
	join.SubscribedTopicNames, join.Topics = []string{topic}, []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	resp, err := join.RequestWith(ctx, adm)
	cancel()
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("raw join: %v %+v", err, resp)
	}
	eventually(t, groupWait, func() bool {
		g, err := describe848(adm, grp)
		return err == nil && len(g.Members) == 3
	}, "the silent member in the group")
	produceTo(t, prod, topic, 4, 10, produced)
	waitStable848(t, adm, grp, 2, 4)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "phase 4: %d records consumed", len(produced))
	seen.checkExactlyOnce(t, produced)
	a.close()
	b.close()
}

// regex848Scenario: a consumer subscribed by regex consumes a matching
// topic, then one created later, and never one that does not match.
func regex848Scenario(t *testing.T, c *testCluster) {
	grpCreateTopic(t, c.broker(1), "rx-one", 2)
	grpCreateTopic(t, c.broker(1), "other-rx", 1)
	prod := producer(c)
	seen := newSeen()
	produced := map[[2]int64]bool{}
	startConsumer(t, c, "r", "g-regex", "^rx-.*", seen, append(opts848(kgo.CooperativeStickyBalancer()), kgo.ConsumeRegex())...)
	waitStable848(t, c.client(), "g-regex", 1, 2)
	produceTo(t, prod, "rx-one", 2, 5, produced)
	produceTo(t, prod, "other-rx", 1, 5, map[[2]int64]bool{})
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "rx-one consumed")
	grpCreateTopic(t, c.broker(1), "rx-two", 1)
	waitStable848(t, c.client(), "g-regex", 1, 3)
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "rx-two", Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// seenRecords counts by partition, not topic: partition 0 holds the
	// five records of rx-one and the one of rx-two, none of other-rx.
	eventually(t, groupWait, func() bool { return seen.partitionsOf("r")[0] >= 6 }, "rx-two consumed")
	if ps := seen.partitionsOf("r"); ps[0] != 6 || ps[1] != 5 {
		t.Fatalf("records consumed by partition: %v, want 6 and 5 (other-rx must not match)", ps)
	}
}

// TestGroup848SingleNode runs the KIP-848 scenario with both server-side
// assignors, the regex subscription, and the protocol checks of the
// classic APIs, on one node.
func TestGroup848SingleNode(t *testing.T) {
	c := startClusterWith(t, 1, nil, fast848)
	t.Run("uniform", func(t *testing.T) {
		consumer848Scenario(t, c, "g848-uniform", "t848-uniform", kgo.CooperativeStickyBalancer())
	})
	t.Run("range", func(t *testing.T) { consumer848Scenario(t, c, "g848-range", "t848-range", kgo.RangeBalancer()) })
	t.Run("regex", func(t *testing.T) { regex848Scenario(t, c) })
	t.Run("classic-apis", func(t *testing.T) { classicAPIs848(t, c) })
}

// classicAPIs848: ListGroups and DescribeGroups show a consumer group,
// a classic JoinGroup to it is refused, DeleteGroups refuses it while it
// has members, and ConsumerGroupDescribe of an unknown group is
// GROUP_ID_NOT_FOUND.
func classicAPIs848(t *testing.T, c *testCluster) {
	grpCreateTopic(t, c.broker(1), "t848-apis", 1)
	cl := c.client()
	a := startConsumer(t, c, "a", "g848-apis", "t848-apis", newSeen(), opts848(kgo.RangeBalancer())...)
	waitStable848(t, cl, "g848-apis", 1, 1)
	addr := c.addrs[1]

	lg := kmsg.NewPtrListGroupsRequest()
	lg.SetVersion(5)
	lg.TypesFilter = []string{"consumer"}
	lresp := rawRoundTrip(t, addr, lg).(*kmsg.ListGroupsResponse)
	found := false
	for _, g := range lresp.Groups {
		if g.GroupType != "consumer" {
			t.Fatalf("type filter: %+v", lresp.Groups)
		}
		found = found || (g.Group == "g848-apis" && g.GroupState == "Stable" && g.ProtocolType == "consumer")
	}
	if !found {
		t.Fatalf("ListGroups: %+v", lresp.Groups)
	}
	lg.TypesFilter = []string{"classic"}
	for _, g := range rawRoundTrip(t, addr, lg).(*kmsg.ListGroupsResponse).Groups {
		if g.Group == "g848-apis" {
			t.Fatalf("consumer group listed as classic: %+v", g)
		}
	}

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.SetVersion(5)
	dg.Groups = []string{"g848-apis"}
	d := rawRoundTrip(t, addr, dg).(*kmsg.DescribeGroupsResponse).Groups[0]
	if d.ErrorCode != 0 || d.ProtocolType != "consumer" || d.State != "Stable" || len(d.Members) != 1 {
		t.Fatalf("DescribeGroups: %+v", d)
	}

	jg := kmsg.NewPtrJoinGroupRequest()
	jg.SetVersion(9)
	jg.Group, jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis, jg.ProtocolType = "g848-apis", 6000, 6000, "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0}}}
	grpWantCode(t, "JoinGroup", rawRoundTrip(t, addr, jg).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InconsistentGroupProtocol.Code)

	del := kmsg.NewPtrDeleteGroupsRequest()
	del.Groups = []string{"g848-apis"}
	grpWantCode(t, "DeleteGroups", rawRoundTrip(t, addr, del).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, kerr.NonEmptyGroup.Code)

	if _, err := describe848(cl, "g848-nope"); err != kerr.GroupIDNotFound {
		t.Fatalf("ConsumerGroupDescribe of an unknown group: %v", err)
	}
	a.close()
	eventually(t, groupWait, func() bool {
		g, err := describe848(cl, "g848-apis")
		return err == nil && g.State == "Empty"
	}, "group empty after its member left")
	grpWantCode(t, "DeleteGroups", rawRoundTrip(t, addr, del).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, 0)
}

// TestGroup848ThreeNodes runs the scenario on three nodes, then moves the
// coordinator (controller leadership): the new coordinator loads the
// group's record and the members go on without a rebalance.
func TestGroup848ThreeNodes(t *testing.T) {
	c := startClusterWith(t, 3, nil, fast848)
	t.Run("uniform", func(t *testing.T) {
		consumer848Scenario(t, c, "g848-uniform", "t848-uniform", kgo.CooperativeStickyBalancer())
	})
	t.Run("failover", func(t *testing.T) { failover848(t, c) })
}

// failover848: two KIP-848 consumers keep their member ids, member epochs
// and partitions across a move of the coordinator (controller leadership
// transfer): the new coordinator loads the group's replicated record, no
// member sees a revoke, assignment or loss afterwards, the members'
// heartbeats keep them in the group past a session timeout, and every
// record is consumed exactly once.
func failover848(t *testing.T, c *testCluster) {
	const grp, topic = "g848-fail", "t848-fail"
	coord := func() uint64 { return groupCoordinatorNode(t, c, grp) }
	leader := coord()
	grpCreateTopic(t, c.broker(leader), topic, 4)
	prod := producer(c)
	seen := newSeen()
	produced := map[[2]int64]bool{}
	var rb rebalances
	var cs []*groupConsumer
	for _, name := range []string{"a", "b"} {
		opts := append(opts848(kgo.CooperativeStickyBalancer()),
			kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { rb.add(name + " assigned") }),
			kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { rb.add(name + " revoked") }),
			kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { rb.add(name + " lost") }))
		cs = append(cs, startConsumer(t, c, name, grp, topic, seen, opts...))
	}
	before := waitStable848(t, c.client(), grp, 2, 4)
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "before failover")
	for _, gc := range cs {
		gc.commit(t)
	}
	// The group's record as of the stable group has reached the
	// controller.
	eventually(t, groupWait, func() bool {
		st, err := c.broker(leader).Node.GroupStates()
		return err == nil && slices.ContainsFunc(st.Groups, func(g meta.GroupState) bool { return g.Group == grp })
	}, "group record replicated")
	if g, err := describe848(c.client(), grp); err != nil || g.Epoch != before.Epoch {
		t.Fatalf("group moved on before the transfer: %+v %v (was %+v)", g, err, before)
	}
	events := rb.snapshot()

	target := leader%3 + 1
	eventually(t, groupWait, func() bool {
		if err := c.broker(leader).Node.TransferCoordinator(grp, target); err != nil {
			t.Logf("transfer: %v", err)
		}
		return coord() == target
	}, "coordinator moved from %d to %d", leader, target)
	moved := time.Now()
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "after failover")
	// Past a session timeout (3 s) of the new coordinator: only members
	// that heartbeat it are still there.
	eventually(t, groupWait, func() bool { return time.Since(moved) > 4*time.Second }, "a session past the move")
	after := waitStable848(t, c.client(), grp, 2, 4)
	if after.Epoch != before.Epoch || after.AssignmentEpoch != before.AssignmentEpoch {
		t.Fatalf("group epoch %d/%d after the move, %d/%d before", after.Epoch, after.AssignmentEpoch, before.Epoch, before.AssignmentEpoch)
	}
	for i, m := range after.Members {
		b := before.Members[i]
		if m.MemberID != b.MemberID || m.MemberEpoch != b.MemberEpoch || !reflect.DeepEqual(m.Assignment, b.Assignment) {
			t.Fatalf("member after the move %+v, before %+v", m, b)
		}
	}
	if d := c.broker(target).Groups.ConsumerDescribe([]string{grp})[0]; d.ErrorCode != 0 || d.Epoch != before.Epoch {
		t.Fatalf("new coordinator holds %+v", d)
	}
	if got := rb.snapshot(); len(got) != len(events) {
		t.Fatalf("partition callbacks after the move: %v (before: %v)", got[len(events):], events)
	}
	seen.checkExactlyOnce(t, produced)
	for _, gc := range cs {
		gc.close()
	}
}
