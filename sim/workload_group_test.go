//go:build synctests

package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupConsumer is one member of the workload's group: what it owns (kept
// from kgo's assignment callbacks, which run one at a time) and its name.
type groupConsumer struct {
	c    *cluster
	h    *history
	name string
	plan groupPlan

	mu    sync.Mutex
	owned map[tp]bool
}

func (g *groupConsumer) assigned(_ context.Context, cl *kgo.Client, added map[string][]int32) {
	g.mu.Lock()
	for t, ps := range added {
		for _, p := range ps {
			g.owned[tp{t, p}] = true
		}
	}
	owned := make([]tp, 0, len(g.owned))
	for at := range g.owned {
		owned = append(owned, at)
	}
	g.mu.Unlock()
	slices.SortFunc(owned, func(a, b tp) int { return strings.Compare(a.String(), b.String()) })
	member, gen := cl.GroupMetadata()
	g.h.groupAssigned(g.name, member, gen, g.plan.consumer848, owned)
}

func (g *groupConsumer) revoked(_ context.Context, _ *kgo.Client, gone map[string][]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for t, ps := range gone {
		for _, p := range ps {
			delete(g.owned, tp{t, p})
		}
	}
}

func (g *groupConsumer) lost(ctx context.Context, cl *kgo.Client, gone map[string][]int32) {
	g.revoked(ctx, cl, gone)
	member, _ := cl.GroupMetadata()
	g.h.groupFenced(member)
}

// committed records what a commit acknowledged, partition by partition.
func (g *groupConsumer) committed(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil || resp == nil {
		return
	}
	at := map[tp]int64{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			at[tp{t.Topic, p.Partition}] = p.Offset
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if off, ok := at[tp{t.Topic, p.Partition}]; ok && p.ErrorCode == 0 {
				g.h.commitAcked(g.name, tp{t.Topic, p.Partition}, off)
			}
		}
	}
}

// kgoGroupConsumer is a member of the workload's group, by the seed's
// group plan: classic or KIP-848, committing what it polled (auto-commit)
// or only what it processed (marks). Processing is recording the records
// in the history; with marks a poll's records are marked after that, and
// rebalances wait for the marking (BlockRebalanceOnPoll).
func kgoGroupConsumer(ctx context.Context, c *cluster, h *history, idx int, tps []tp) {
	plan := c.topo.group
	g := &groupConsumer{c: c, h: h, name: fmt.Sprintf("G%d", idx), plan: plan, owned: map[tp]bool{}}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(groupName),
		kgo.ConsumeTopics(workloadTopics(tps)...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(470 * time.Millisecond),
		kgo.RebalanceTimeout(5 * time.Second),
		kgo.AutoCommitInterval(530 * time.Millisecond),
		kgo.OnPartitionsAssigned(g.assigned),
		kgo.OnPartitionsRevoked(g.revoked),
		kgo.OnPartitionsLost(g.lost),
		kgo.AutoCommitCallback(g.committed),
	}
	if plan.marks {
		opts = append(opts, kgo.AutoCommitMarks(), kgo.BlockRebalanceOnPoll())
	}
	switch {
	case plan.consumer848:
		opts = append(opts, kgo.ServerSideBalancer())
		if plan.balancer == "range" {
			opts = append(opts, kgo.Balancers(kgo.RangeBalancer()))
		} else {
			opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
		}
	case c.brokenGroup == brokenDoubleAssign:
		opts = append(opts, kgo.Balancers(doubleAssign{kgo.RangeBalancer()}))
	case plan.balancer == "range":
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()))
	default:
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	rng := newRand(c.seed, "group-consumer-"+g.name)
	for ctx.Err() == nil {
		// With churn, each client lives 2-6 s (off the millisecond
		// grid), then closes (leaving the group) and a new one joins.
		life := ctx
		cancel := context.CancelFunc(func() {})
		if plan.churn {
			d := time.Duration(2000+rng.IntN(4000))*time.Millisecond + time.Duration(rng.IntN(int(time.Millisecond)))
			life, cancel = context.WithTimeout(ctx, d)
		}
		g.consume(life, opts)
		cancel()
	}
}

// consume runs one client of the member until ctx ends.
func (g *groupConsumer) consume(ctx context.Context, opts []kgo.Opt) {
	c, h := g.c, g.h
	g.mu.Lock()
	clear(g.owned)
	g.mu.Unlock()
	cl, err := newClient(c, g.name, opts...)
	if err != nil {
		h.violate("%s: kgo.NewClient: %v", g.name, err)
		return
	}
	defer cl.Close()
	polls := 0
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		recordFetches(h, g.name, fs)
		recs := fs.Records()
		if c.brokenGroup == brokenSkip && len(recs) > 0 {
			recs = recs[:len(recs)-1] // the last one is marked below, never processed
		}
		for _, r := range recs {
			h.processed(tp{r.Topic, r.Partition}, r.Offset)
		}
		if g.plan.marks {
			cl.MarkCommitRecords(fs.Records()...)
			cl.AllowRebalance()
		}
		if len(recs) > 0 {
			polls++
		}
		if c.brokenGroup == brokenCommitBack && polls%5 == 4 {
			commitBack(ctx, g, cl)
		}
	}
}

// commitBack is the planted bug brokenCommitBack: it commits 3 below what
// the client committed last on one of its partitions.
func commitBack(ctx context.Context, g *groupConsumer, cl *kgo.Client) {
	cur := cl.CommittedOffsets()
	var topics []string
	for t := range cur {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		for p, eo := range cur[t] {
			if eo.Offset < 3 {
				continue
			}
			back := map[string]map[int32]kgo.EpochOffset{t: {p: {Epoch: -1, Offset: eo.Offset - 3}}}
			cl.CommitOffsetsSync(ctx, back, g.committed)
			return
		}
	}
}

// doubleAssign is the planted bug brokenDoubleAssign: the range balancer,
// then every member also gets partition 0 of the first topic.
type doubleAssign struct{ kgo.GroupBalancer }

func (d doubleAssign) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	b, topics, err := d.GroupBalancer.MemberBalancer(members)
	return doubleAssignMember{b}, topics, err
}

type doubleAssignMember struct{ kgo.GroupMemberBalancer }

func (d doubleAssignMember) Balance(topics map[string]int32) kgo.IntoSyncAssignment {
	out, _ := d.BalanceOrError(topics)
	return out
}

func (d doubleAssignMember) BalanceOrError(topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	var out kgo.IntoSyncAssignment
	if be, ok := d.GroupMemberBalancer.(kgo.GroupMemberBalancerOrError); ok {
		var err error
		if out, err = be.BalanceOrError(topics); err != nil {
			return nil, err
		}
	} else {
		out = d.GroupMemberBalancer.Balance(topics)
	}
	plan, ok := out.(*kgo.BalancePlan)
	if !ok || len(topics) == 0 {
		return out, nil
	}
	var names []string
	for t := range topics {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, m := range plan.AsMemberIDMap() {
		if !slices.Contains(m[names[0]], 0) {
			m[names[0]] = append(m[names[0]], 0)
		}
	}
	return plan, nil
}

// kgoOffsetWatcher reads the group's committed offsets (OffsetFetch) for
// the committed-offset checks and, for a KIP-848 group, describes it
// (ConsumerGroupDescribe) to check that no partition has two owners in
// one answer.
func kgoOffsetWatcher(ctx context.Context, c *cluster, h *history, tps []tp) {
	cl, err := newClient(c, "offsets")
	if err != nil {
		h.violate("offsets: kgo.NewClient: %v", err)
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for sleepCtx(ctx, offsetPollInterval) {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp, err := adm.FetchOffsets(rctx, groupName)
		cancel()
		if err == nil {
			resp.Each(func(o kadm.OffsetResponse) {
				if o.Err == nil && o.At >= 0 {
					h.commitSeen("offsets", tp{o.Topic, o.Partition}, o.At, start)
				}
			})
		}
		if c.topo.group.consumer848 {
			describe848(ctx, cl, h)
		}
	}
}

// describe848 checks one ConsumerGroupDescribe answer: a partition is in
// at most one member's assignment.
func describe848(ctx context.Context, cl *kgo.Client, h *history) {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{groupName}
	rctx, cancel := context.WithTimeout(ctx, requestTimeout)
	resp, err := req.RequestWith(rctx, cl)
	cancel()
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != 0 {
		return
	}
	g := resp.Groups[0]
	owner := map[string]string{}
	for _, m := range g.Members {
		for _, t := range m.Assignment.TopicPartitions {
			for _, p := range t.Partitions {
				k := fmt.Sprintf("%x/%d", t.TopicID, p)
				if o, ok := owner[k]; ok {
					h.violate("group %s epoch %d: partition %s assigned to two members, %s and %s (ConsumerGroupDescribe)", groupName, g.Epoch, k, o, m.MemberID)
				}
				owner[k] = m.MemberID
			}
		}
	}
}
