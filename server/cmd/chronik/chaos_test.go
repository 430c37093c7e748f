package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The real-process chaos suite: chronik binaries as separate processes on
// loopback, killed and restarted under a kgo idempotent producer and a
// consumer group. `make chaos` runs all five scenarios with a longer load;
// the default `go test` runs a short form (scenarios 2, 3 and 5).
//
//	-chaos.full / CHAOS_FULL=1        all five scenarios
//	-chaos.records / CHAOS_RECORDS=N  records at least produced per scenario
//	-chaos.rate / CHAOS_RATE=N        producer pace, records per second
var (
	chaosFull    = flag.Bool("chaos.full", envBool("CHAOS_FULL"), "run every chaos scenario (make chaos)")
	chaosRecords = flag.Int("chaos.records", envInt("CHAOS_RECORDS", 300), "records at least produced per chaos scenario")
	chaosRate    = flag.Int("chaos.rate", envInt("CHAOS_RATE", 500), "chaos producer pace in records per second")
)

func envBool(name string) bool { v, _ := strconv.ParseBool(os.Getenv(name)); return v }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// The APIs a chaos scenario needs from the broker.
var chaosAPIs = []int16{
	kmsg.Metadata.Int16(), kmsg.Produce.Int16(), kmsg.Fetch.Int16(), kmsg.ListOffsets.Int16(),
	kmsg.InitProducerID.Int16(), kmsg.CreateTopics.Int16(), kmsg.FindCoordinator.Int16(),
	kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16(), kmsg.Heartbeat.Int16(), kmsg.LeaveGroup.Int16(),
	kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16(),
}

// scenarioRun is one scenario in progress: its cluster, topic and load.
type scenarioRun struct {
	t     *testing.T
	c     *chaosCluster
	topic string
	group string
	n     int64 // records at least produced
	prod  *producerRun
	adm   *kadm.Client
}

// progress waits for another d acknowledgements beyond the current count:
// evidence that producing goes on in the current state of the cluster.
func (s *scenarioRun) progress(d int64, what string) {
	s.t.Helper()
	if err := s.prod.waitAcked(s.prod.ackedN.Load()+d, 90*time.Second); err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

// leaders returns each partition's leader from one node's Metadata.
func (s *scenarioRun) leaders() map[int32]int32 {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := s.adm.Metadata(ctx, s.topic)
	if err != nil {
		s.t.Fatalf("metadata: %v", err)
	}
	out := map[int32]int32{}
	for _, p := range md.Topics[s.topic].Partitions {
		out[p.Partition] = p.Leader
	}
	return out
}

type chaosScenario struct {
	name       string
	nodes      int
	partitions int32
	short      bool // part of the default go test run
	chaos      func(s *scenarioRun)
}

var chaosScenarios = []chaosScenario{
	{name: "single-node", nodes: 1, partitions: 3, chaos: func(s *scenarioRun) {
		s.progress(s.n, "single node producing")
	}},
	{name: "cluster-forms", nodes: 3, partitions: 3, short: true, chaos: func(s *scenarioRun) {
		checkClusterFormed(s)
		s.progress(s.n, "three nodes producing")
	}},
	{name: "leader-sigkill", nodes: 3, partitions: 3, short: true, chaos: func(s *scenarioRun) {
		s.progress(s.n/3, "before the kill")
		leader := s.leaders()[0]
		if leader <= 0 {
			s.t.Fatalf("partition 0 has no leader: %v", s.leaders())
		}
		s.t.Logf("SIGKILL node %d, leader of partition 0", leader)
		s.c.kill(uint64(leader))
		s.progress(s.n/3, fmt.Sprintf("with leader node %d killed", leader))
		s.t.Logf("leaders with node %d down: %v", leader, s.leaders())
		s.c.restart(uint64(leader))
		s.progress(s.n/3, fmt.Sprintf("after node %d restarted", leader))
	}},
	{name: "follower-sigkill", nodes: 3, partitions: 3, chaos: func(s *scenarioRun) {
		s.progress(s.n/3, "before the kill")
		victim := pickFollower(s.leaders(), len(s.c.nodes))
		s.t.Logf("SIGKILL node %d, a follower of partition 0 (leaders %v)", victim, s.leaders())
		s.c.kill(victim)
		s.progress(s.n/3, fmt.Sprintf("with follower node %d killed", victim))
		s.c.restart(victim)
		s.progress(s.n/3, fmt.Sprintf("after node %d rejoined", victim))
	}},
	{name: "rolling-sigterm", nodes: 3, partitions: 3, short: true, chaos: func(s *scenarioRun) {
		for _, nd := range s.c.nodes {
			s.progress(s.n/6, fmt.Sprintf("before stopping node %d", nd.id))
			if code := s.c.signal(nd.id, syscall.SIGTERM); code != 0 {
				s.t.Fatalf("node %d exited with %d after SIGTERM, want 0", nd.id, code)
			}
			s.c.restart(nd.id)
		}
		s.progress(s.n/6, "after the rolling restart")
	}},
}

// pickFollower prefers a node leading no partition, else one that does not
// lead partition 0.
func pickFollower(leaders map[int32]int32, n int) uint64 {
	leading := map[int32]bool{}
	for _, l := range leaders {
		leading[l] = true
	}
	for id := int32(n); id >= 1; id-- {
		if !leading[id] {
			return uint64(id)
		}
	}
	for id := int32(n); id >= 1; id-- {
		if id != leaders[0] {
			return uint64(id)
		}
	}
	return 1
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: real processes; skipped in -short")
	}
	for _, sc := range chaosScenarios {
		t.Run(sc.name, func(t *testing.T) {
			if !sc.short && !*chaosFull {
				t.Skip("not in the short form; make chaos (CHAOS_FULL=1) runs it")
			}
			runChaosScenario(t, sc)
		})
	}
}

func runChaosScenario(t *testing.T, sc chaosScenario) {
	start := time.Now()
	c := newChaosCluster(t, sc.nodes)
	c.startAll()
	requireAPIs(t, c.nodes[0].kafka, chaosAPIs...)
	s := &scenarioRun{t: t, c: c, topic: "chaos-" + sc.name, group: "chaos-group-" + sc.name, n: int64(*chaosRecords)}
	s.adm = kadm.NewClient(c.client(kgo.MetadataMinAge(250 * time.Millisecond)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rf := int16(min(3, sc.nodes))
	if r, err := s.adm.CreateTopic(ctx, sc.partitions, rf, nil, s.topic); err != nil || r.Err != nil {
		t.Fatalf("create topic %s (%d partitions, rf %d): %v %v", s.topic, sc.partitions, rf, err, r.Err)
	}
	waitLeaders(t, s, sc.partitions)

	// The load: one idempotent acks=all producer (kgo's defaults) and one
	// group consumer that commits what it processed and stops half-way.
	pcl := c.client(kgo.DefaultProduceTopic(s.topic), kgo.MetadataMinAge(250*time.Millisecond))
	stop := make(chan struct{})
	var prodErr func() error
	s.prod, prodErr = runProducer(pcl, s.topic, s.n, *chaosRate, stop, 90*time.Second)
	g1 := startGroupConsumer(c, s.topic, s.group, s.n/2)

	func() {
		defer close(stop)
		sc.chaos(s)
	}()
	if err := prodErr(); err != nil {
		t.Fatal(err)
	}
	g1res := g1.wait(90 * time.Second)

	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	log, end, err := readAll(rctx, c.addrs(), s.topic)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	v := check(s.prod, log)
	fmt.Printf("chaos %s: acked=%d lost=%d duplicated=%d reordered=%d\n", sc.name, v.acked, v.lost, v.duplicated, v.reordered)
	t.Logf("chaos %s: produced=%d failed=%d (first error %v) in-log=%d unacked-present=%d moved=%d gaps=%d unknown=%d",
		sc.name, s.prod.produced.Load(), s.prod.failedN.Load(), s.prod.err(), countLog(log), v.unackedPresent, v.moved, v.gaps, v.unknown)
	for _, e := range v.examples {
		t.Log("  ", e)
	}
	if !v.ok() {
		t.Errorf("chaos %s: acknowledged records lost, duplicated, reordered or moved (see above)", sc.name)
	}

	// The group: a consumer in the same group resumes exactly at the
	// committed offsets.
	gv := checkGroupResume(t, s, g1res, log, end)
	fmt.Printf("chaos %s group: consumed-before=%d committed=%d resumed=%d reread=%d skipped=%d offsetfetch-errors=%d\n",
		sc.name, g1res.count(), gv.committed, gv.resumed, gv.reread, gv.skipped, gv.coordErrors)
	for _, e := range gv.examples {
		t.Log("  ", e)
	}
	if gv.reread+gv.skipped+gv.wrong > 0 {
		t.Errorf("chaos %s: the group did not resume at its committed offsets (see above)", sc.name)
	}
	t.Logf("chaos %s: %v", sc.name, time.Since(start).Round(time.Millisecond))
}

func countLog(log map[int32][]logRecord) int {
	n := 0
	for _, rs := range log {
		n += len(rs)
	}
	return n
}

// waitLeaders polls Metadata until every partition has a listed leader.
func waitLeaders(t *testing.T, s *scenarioRun, partitions int32) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := s.leaders()
		ok := int32(len(l)) == partitions
		for _, id := range l {
			ok = ok && id >= 1 && int(id) <= len(s.c.nodes)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions of %s without a leader after 30s: %v", s.topic, l)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// checkClusterFormed: every node answers ApiVersions and Metadata listing
// all brokers at their advertised addresses, and every partition of the
// topic (replication factor 3) is led by a listed broker and replicated on
// listed brokers.
func checkClusterFormed(s *scenarioRun) {
	t := s.t
	want := map[int32]string{}
	for _, nd := range s.c.nodes {
		want[int32(nd.id)] = nd.kafka
	}
	for _, nd := range s.c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := apiVersions(ctx, nd.kafka); err != nil {
			t.Fatalf("node %d ApiVersions: %v", nd.id, err)
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(nd.kafka))
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(s.topic)
		req.Topics = append(req.Topics, rt)
		// Ask this node itself, not whichever broker kgo picks.
		resp, err := cl.Broker(int(nd.id)).Request(ctx, req)
		if err != nil {
			// The client only knows seeds before its first metadata.
			resp, err = cl.Request(ctx, req)
		}
		cl.Close()
		cancel()
		if err != nil {
			t.Fatalf("node %d Metadata: %v", nd.id, err)
		}
		md := resp.(*kmsg.MetadataResponse)
		got := map[int32]string{}
		for _, b := range md.Brokers {
			got[b.NodeID] = fmt.Sprintf("%s:%d", b.Host, b.Port)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("node %d lists brokers %v, want %v", nd.id, got, want)
		}
		if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 || len(md.Topics[0].Partitions) != 3 {
			t.Fatalf("node %d: topic metadata %+v", nd.id, md.Topics)
		}
		for _, p := range md.Topics[0].Partitions {
			if _, ok := want[p.Leader]; !ok || p.ErrorCode != 0 {
				t.Fatalf("node %d: partition %d leader %d (error %d) is not a listed broker", nd.id, p.Partition, p.Leader, p.ErrorCode)
			}
			reps := slices.Clone(p.Replicas)
			sort.Slice(reps, func(i, j int) bool { return reps[i] < reps[j] })
			if fmt.Sprint(reps) != "[1 2 3]" {
				t.Fatalf("node %d: partition %d replicas %v, want [1 2 3]", nd.id, p.Partition, p.Replicas)
			}
		}
		t.Logf("node %d: Metadata lists %v, controller %d", nd.id, got, md.ControllerID)
	}
}

// groupConsumer is the first consumer of the group: it consumes from the
// start, commits what it processed after every poll, and stops (leaving
// the group) once it processed stopAfter records.
type groupConsumer struct {
	done chan groupResult
}

type groupResult struct {
	seen map[int32]map[int64]string // partition -> offset -> value
	err  error
	note []string
}

func (r groupResult) count() int {
	n := 0
	for _, m := range r.seen {
		n += len(m)
	}
	return n
}

func groupOpts(c *chaosCluster, topic, group string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(c.addrs()...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.FetchMaxWait(200 * time.Millisecond), kgo.SessionTimeout(10 * time.Second),
		kgo.RebalanceTimeout(10 * time.Second), kgo.HeartbeatInterval(time.Second),
	}
}

func startGroupConsumer(c *chaosCluster, topic, group string, stopAfter int64) *groupConsumer {
	g := &groupConsumer{done: make(chan groupResult, 1)}
	go func() {
		res := groupResult{seen: map[int32]map[int64]string{}}
		defer func() { g.done <- res }()
		cl, err := kgo.NewClient(groupOpts(c, topic, group)...)
		if err != nil {
			res.err = err
			return
		}
		defer cl.Close() // leaves the group
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var n int64
		for n < stopAfter && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(_ string, p int32, err error) {
				if len(res.note) < 5 {
					res.note = append(res.note, fmt.Sprintf("fetch %d: %v", p, err))
				}
			})
			// Process (and commit) at most up to stopAfter, so the
			// committed offsets stop part-way through the log.
			var processed []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				if n >= stopAfter {
					return
				}
				m := res.seen[r.Partition]
				if m == nil {
					m = map[int64]string{}
					res.seen[r.Partition] = m
				}
				m[r.Offset] = string(r.Value)
				processed = append(processed, r)
				n++
			})
			if len(processed) > 0 {
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				if err := cl.CommitRecords(cctx, processed...); err != nil && len(res.note) < 5 {
					res.note = append(res.note, fmt.Sprintf("commit: %v", err)) // not fatal: the next consumer re-reads
				}
				ccancel()
			}
		}
		if n < stopAfter {
			res.err = fmt.Errorf("group consumer processed only %d of %d records: %v", n, stopAfter, ctx.Err())
		}
	}()
	return g
}

func (g *groupConsumer) wait(timeout time.Duration) groupResult {
	select {
	case r := <-g.done:
		return r
	case <-time.After(timeout):
		return groupResult{err: errors.New("group consumer did not finish in time")}
	}
}

type groupVerdict struct {
	committed, resumed, reread, skipped, wrong int
	coordErrors                                int // OffsetFetch attempts that failed before one answered
	examples                                   []string
}

func (v *groupVerdict) example(format string, args ...any) {
	if len(v.examples) < 10 {
		v.examples = append(v.examples, fmt.Sprintf(format, args...))
	}
}

// fetchCommitted asks for the group's committed offsets until an attempt
// answers without error or timeout passes; it returns the errors of the
// failed attempts (with their time since the first) for the report.
func fetchCommitted(ctx context.Context, adm *kadm.Client, group string, timeout time.Duration) (kadm.OffsetResponses, []string) {
	start := time.Now()
	var errs []string
	for time.Since(start) < timeout {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		offs, err := adm.FetchOffsets(actx, group)
		cancel()
		if err == nil {
			return offs, errs
		}
		errs = append(errs, fmt.Sprintf("after %v: %v", time.Since(start).Round(time.Millisecond), err))
		time.Sleep(100 * time.Millisecond) // retry interval, bounded by timeout
	}
	return nil, errs
}

// checkGroupResume fetches the group's committed offsets, checks the first
// consumer processed everything below them, then resumes with a second
// consumer in the same group and checks it reads exactly from the
// committed offsets to the end of the log.
func checkGroupResume(t *testing.T, s *scenarioRun, g1 groupResult, log map[int32][]logRecord, end map[int32]int64) groupVerdict {
	t.Helper()
	var v groupVerdict
	if g1.err != nil {
		t.Fatalf("first group consumer: %v (notes %v)", g1.err, g1.note)
	}
	if len(g1.note) > 0 {
		t.Logf("first group consumer notes: %v", g1.note)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	offs, errs := fetchCommitted(ctx, s.adm, s.group, 30*time.Second)
	for _, e := range errs {
		t.Logf("OffsetFetch for %s failed before it answered: %s", s.group, e)
	}
	v.coordErrors = len(errs)
	if offs == nil {
		t.Fatalf("no committed offsets of %s within 30s", s.group)
	}
	committed := map[int32]int64{}
	for p := range end {
		committed[p] = 0 // no commit: the resumed consumer starts at the log start (kgo's default reset)
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == s.topic && o.Err == nil && o.At >= 0 {
			committed[o.Partition] = o.At
		}
	})
	for p, at := range committed {
		if at > end[p] {
			v.wrong++
			v.example("partition %d committed %d beyond the end %d", p, at, end[p])
		}
		v.committed += int(at)
		for _, r := range log[p] {
			if r.offset >= at {
				break
			}
			got, ok := g1.seen[p][r.offset]
			if !ok {
				v.skipped++
				v.example("partition %d offset %d committed but never delivered to the first consumer", p, r.offset)
			} else if got != r.value {
				v.wrong++
				v.example("partition %d offset %d: consumer saw %q, log has %q", p, r.offset, got, r.value)
			}
		}
	}

	// Resume.
	cl, err := kgo.NewClient(groupOpts(s.c, s.topic, s.group)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	next := map[int32]int64{}
	for p, at := range committed {
		next[p] = at
	}
	done := func() bool {
		for p, e := range end {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("resumed consumer did not reach the end %v (at %v): %v", end, next, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return // produced after the check; not ours
			}
			v.resumed++
			switch {
			case r.Offset < committed[r.Partition]:
				v.reread++
				v.example("partition %d: resumed consumer re-read committed offset %d (committed %d)", r.Partition, r.Offset, committed[r.Partition])
			case r.Offset > next[r.Partition]:
				v.skipped += int(r.Offset - next[r.Partition])
				v.example("partition %d: resumed consumer skipped from %d to %d", r.Partition, next[r.Partition], r.Offset)
			case r.Offset < next[r.Partition]:
				v.reread++
				v.example("partition %d: resumed consumer got offset %d twice", r.Partition, r.Offset)
			}
			if r.Offset >= next[r.Partition] {
				next[r.Partition] = r.Offset + 1
			}
			if i := r.Offset; i < int64(len(log[r.Partition])) && log[r.Partition][i].value != string(r.Value) {
				v.wrong++
				v.example("partition %d offset %d: resumed consumer saw %q, log has %q", r.Partition, r.Offset, r.Value, log[r.Partition][i].value)
			}
		})
	}
	return v
}
