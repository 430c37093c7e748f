package server

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/meta"
)

// rebalances counts the partition callbacks a kgo consumer saw.
type rebalances struct {
	mu     sync.Mutex
	events []string
}

func (r *rebalances) add(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, what)
}

func (r *rebalances) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *rebalances) opts(name string) []kgo.Opt {
	return []kgo.Opt{
		kgo.Balancers(kgo.RangeBalancer()), // eager: any rebalance revokes everything
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { r.add(name + " assigned") }),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { r.add(name + " revoked") }),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { r.add(name + " lost") }),
	}
}

// TestGroupFailoverKeepsGeneration: a classic group consuming on three
// nodes keeps its generation, members and assignments across a move of
// the coordinator (controller leadership transfer): the new coordinator
// loads the group's replicated record, no member sees a revoke, assign or
// loss afterwards, and every record is consumed exactly once.
func TestGroupFailoverKeepsGeneration(t *testing.T) {
	c := startClusterWith(t, 3, nil, fastGroups)
	const grp, topic = "g-failover", "t-failover"
	coord := func() uint64 { return groupCoordinatorNode(t, c, grp) }
	leader := coord()
	grpCreateTopic(t, c.broker(leader), topic, 4)
	prod := producer(c)
	seen := newSeen()
	produced := map[[2]int64]bool{}
	var rb rebalances
	for _, name := range []string{"a", "b"} {
		startConsumer(t, c, name, grp, topic, seen, rb.opts(name)...)
	}
	waitStable(t, c.admin(), grp, 2)
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "records consumed before the move")

	before := c.broker(leader).Groups.Describe([]string{grp})[0]
	if before.State != group.Stable {
		t.Fatalf("before the move: %+v", before)
	}
	// The generation's record has reached the controller.
	eventually(t, groupWait, func() bool {
		st, err := c.broker(leader).Node.GroupStates()
		return err == nil && slices.ContainsFunc(st.Groups, func(g meta.GroupState) bool { return g.Group == grp })
	}, "group record replicated")
	events := rb.snapshot()

	target := leader%3 + 1
	eventually(t, groupWait, func() bool {
		if err := c.broker(leader).Node.TransferCoordinator(grp, target); err != nil {
			t.Logf("transfer: %v", err)
		}
		return coord() == target
	}, "coordinator moved from %d to %d", leader, target)

	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "records consumed after the move")
	// The members' heartbeats reach the new coordinator, which holds the
	// group at the same generation with the same members.
	waitStable(t, c.admin(), grp, 2)
	d := c.broker(target).Groups.Describe([]string{grp})[0]
	if d.State != group.Stable || d.Generation != before.Generation || len(d.Members) != 2 ||
		d.Members[0].MemberID != before.Members[0].MemberID || d.Members[1].MemberID != before.Members[1].MemberID {
		t.Fatalf("new coordinator holds %+v, old held %+v", d, before)
	}
	if got := rb.snapshot(); len(got) != len(events) {
		t.Fatalf("partition callbacks after the move: %v (before: %v)", got[len(events):], events)
	}
	seen.checkExactlyOnce(t, produced)
}
