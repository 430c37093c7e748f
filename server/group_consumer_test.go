package server

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupWait bounds one wait for a group to settle or records to arrive.
const groupWait = 20 * time.Second

// seenRecords counts every record consumed in a test, by partition and
// offset, and which consumer took it.
type seenRecords struct {
	mu    sync.Mutex
	count map[[2]int64]int
	by    map[string]map[int32]int // consumer -> partition -> records
}

func newSeen() *seenRecords {
	return &seenRecords{count: map[[2]int64]int{}, by: map[string]map[int32]int{}}
}

func (s *seenRecords) add(consumer string, r *kgo.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[[2]int64{int64(r.Partition), r.Offset}]++
	if s.by[consumer] == nil {
		s.by[consumer] = map[int32]int{}
	}
	s.by[consumer][r.Partition]++
}

func (s *seenRecords) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

// checkExactlyOnce fails unless every record in produced was consumed
// exactly once and nothing else was.
func (s *seenRecords) checkExactlyOnce(t testing.TB, produced map[[2]int64]bool) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range produced {
		if s.count[k] != 1 {
			t.Errorf("record p%d@%d consumed %d times", k[0], k[1], s.count[k])
		}
	}
	if len(s.count) != len(produced) {
		t.Errorf("%d distinct records consumed, %d produced", len(s.count), len(produced))
	}
}

func (s *seenRecords) partitionsOf(consumer string) map[int32]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int32]int{}
	for p, n := range s.by[consumer] {
		out[p] = n
	}
	return out
}

// groupConsumer is a kgo group consumer polling in its own goroutine.
type groupConsumer struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startConsumer(t testing.TB, c *testCluster, name, grp, topic string, seen *seenRecords, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(c.seeds()...), kgo.ClientID(name),
		kgo.ConsumerGroup(grp), kgo.ConsumeTopics(topic),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second), kgo.AutoCommitInterval(200 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond), kgo.RetryTimeout(groupWait),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gc := &groupConsumer{name: name, cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(gc.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { seen.add(name, r) })
		}
	}()
	t.Cleanup(gc.close)
	return gc
}

// commit commits what the consumer polled (explicit commit).
func (gc *groupConsumer) commit(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	if err := gc.cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("%s: commit: %v", gc.name, err)
	}
}

// close stops polling and closes the client (a dynamic member leaves the
// group; autocommit commits first). Idempotent.
func (gc *groupConsumer) close() {
	if gc.cancel == nil {
		return
	}
	gc.cancel()
	<-gc.done
	gc.cl.Close()
	gc.cancel = nil
}

// produceTo produces n records to each of partitions 0..parts-1 and adds
// them to produced.
func produceTo(t testing.TB, p *kgo.Client, topic string, parts int32, n int, produced map[[2]int64]bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	var recs []*kgo.Record
	for part := int32(0); part < parts; part++ {
		for i := 0; i < n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: part, Value: []byte(strconv.Itoa(i))})
		}
	}
	res := p.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	for _, r := range res {
		produced[[2]int64{int64(r.Record.Partition), r.Record.Offset}] = true
	}
}

func producer(c *testCluster) *kgo.Client {
	return c.client(kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryTimeout(groupWait))
}

// waitStable waits until the group is Stable with n members that all hold
// an assignment, as kadm describes it, and returns the description.
func waitStable(t testing.TB, adm *kadm.Client, grp string, n int) kadm.DescribedGroup {
	t.Helper()
	var d kadm.DescribedGroup
	var last string
	defer func() {
		if t.Failed() {
			t.Logf("last description of %s: %s", grp, last)
		}
	}()
	eventually(t, groupWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ds, err := adm.DescribeGroups(ctx, grp)
		last = fmt.Sprintf("%+v %v", ds, err)
		if err != nil {
			return false
		}
		d = ds[grp]
		if d.Err != nil || d.State != "Stable" || len(d.Members) != n {
			return false
		}
		for _, m := range d.Members {
			ca, ok := m.Assigned.AsConsumer()
			if !ok || len(ca.Topics) == 0 {
				return false
			}
		}
		return true
	}, "group %s Stable with %d assigned members", grp, n)
	return d
}

// consumerGroupScenario: two consumers share a 4-partition topic, a
// third joins, one closes; after each step every produced record is
// consumed exactly once across them; commits happen both by autocommit and
// explicitly; the closed consumer's partitions move to the others.
func consumerGroupScenario(t *testing.T, c *testCluster, grp, topic string, balancer kgo.GroupBalancer) {
	grpCreateTopic(t, c.broker(1), topic, 4)
	adm := c.admin()
	prod := producer(c)
	seen := newSeen()
	produced := map[[2]int64]bool{}
	opt := kgo.Balancers(balancer)
	a := startConsumer(t, c, "a", grp, topic, seen, opt)
	b := startConsumer(t, c, "b", grp, topic, seen, opt)
	waitStable(t, adm, grp, 2)
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "phase 1: %d records consumed", len(produced))
	a.commit(t)
	b.commit(t)

	// A third consumer joins: rebalance, nothing lost or repeated.
	x := startConsumer(t, c, "c", grp, topic, seen, opt)
	waitStable(t, adm, grp, 3)
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "phase 2: %d records consumed", len(produced))

	// Let autocommit run, then check the committed offsets reached the end.
	eventually(t, groupWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		os, err := adm.FetchOffsets(ctx, grp)
		if err != nil {
			return false
		}
		for p := int32(0); p < 4; p++ {
			if o, ok := os.Lookup(topic, p); !ok || o.Err != nil || o.At != 20 {
				return false
			}
		}
		return true
	}, "autocommitted offsets at 20")

	// c closes: its partitions move to a and b.
	cParts := seen.partitionsOf("c")
	x.close()
	d := waitStable(t, adm, grp, 2)
	for _, m := range d.Members {
		if m.ClientID == "c" {
			t.Fatalf("closed consumer still a member: %+v", d)
		}
	}
	produceTo(t, prod, topic, 4, 10, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "phase 3: %d records consumed", len(produced))
	after := map[int32]int{}
	for _, name := range []string{"a", "b"} {
		for p, n := range seen.partitionsOf(name) {
			after[p] += n
		}
	}
	for p := range cParts {
		if after[p] == 0 {
			t.Fatalf("partition %d of the closed consumer never consumed by another", p)
		}
	}
	seen.checkExactlyOnce(t, produced)
	a.close()
	b.close()
}

// TestGroupConsumersSingleNode runs the consumer-group scenario with the
// range and cooperative-sticky balancers on one node, then resume from
// committed offsets, static membership and the kadm group admin calls.
func TestGroupConsumersSingleNode(t *testing.T) {
	c := startClusterWith(t, 1, nil, fastGroups)
	t.Run("range", func(t *testing.T) { consumerGroupScenario(t, c, "g-range", "t-range", kgo.RangeBalancer()) })
	t.Run("cooperative-sticky", func(t *testing.T) {
		consumerGroupScenario(t, c, "g-coop", "t-coop", kgo.CooperativeStickyBalancer())
	})
	t.Run("resume", func(t *testing.T) { resumeScenario(t, c) })
	t.Run("static", func(t *testing.T) { staticScenario(t, c) })
	t.Run("kadm", func(t *testing.T) { kadmScenario(t, c) })
}

// resumeScenario: consume the first half, commit, close; a new consumer
// in the same group starts exactly after the committed offsets.
func resumeScenario(t *testing.T, c *testCluster) {
	const grp, topic = "g-resume", "t-resume"
	grpCreateTopic(t, c.broker(1), topic, 2)
	prod := producer(c)
	produced := map[[2]int64]bool{}
	produceTo(t, prod, topic, 2, 10, produced)
	seen1 := newSeen()
	first := startConsumer(t, c, "r1", grp, topic, seen1, kgo.DisableAutoCommit())
	eventually(t, groupWait, func() bool { return seen1.total() == 20 }, "first half consumed")
	first.commit(t)
	first.close()

	second := map[[2]int64]bool{}
	produceTo(t, prod, topic, 2, 10, second)
	seen2 := newSeen()
	startConsumer(t, c, "r2", grp, topic, seen2)
	eventually(t, groupWait, func() bool { return seen2.total() >= 20 }, "second half consumed")
	seen2.checkExactlyOnce(t, second) // offsets 10..19 of each partition only
}

// staticScenario: two static members (kgo.InstanceID); one restarts
// quickly (a static member does not leave on close): no rebalance — the
// coordinator's generation is unchanged and the group stays Stable with
// the same assignment.
func staticScenario(t *testing.T, c *testCluster) {
	const grp, topic = "g-static", "t-static"
	grpCreateTopic(t, c.broker(1), topic, 4)
	adm := c.admin()
	seen := newSeen()
	s1 := startConsumer(t, c, "s1", grp, topic, seen, kgo.InstanceID("s1"), kgo.SessionTimeout(20*time.Second))
	startConsumer(t, c, "s2", grp, topic, seen, kgo.InstanceID("s2"), kgo.SessionTimeout(20*time.Second))
	before := waitStable(t, adm, grp, 2)
	gen := func() int32 { return c.broker(1).Groups.Describe([]string{grp})[0].Generation }
	g0 := gen()
	s1.close()
	startConsumer(t, c, "s1b", grp, topic, seen, kgo.InstanceID("s1"), kgo.SessionTimeout(20*time.Second))
	// The restarted member consumes: it holds its old assignment.
	prod := producer(c)
	produced := map[[2]int64]bool{}
	produceTo(t, prod, topic, 4, 5, produced)
	eventually(t, groupWait, func() bool { return seen.total() == len(produced) }, "records consumed after the static restart")
	after := waitStable(t, adm, grp, 2)
	if g := gen(); g != g0 {
		t.Fatalf("generation %d after a static restart, was %d", g, g0)
	}
	assigned := func(d kadm.DescribedGroup) map[string]string {
		out := map[string]string{}
		for _, m := range d.Members {
			out[*m.InstanceID] = fmt.Sprint(m.Assigned.AsConsumer())
		}
		return out
	}
	if fmt.Sprint(assigned(before)) != fmt.Sprint(assigned(after)) {
		t.Fatalf("assignment changed: %v -> %v", assigned(before), assigned(after))
	}
	if len(seen.partitionsOf("s1b")) == 0 {
		t.Fatalf("restarted static member consumed nothing: %v", seen.by)
	}
}
