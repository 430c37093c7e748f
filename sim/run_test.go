package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/cryptotest"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
)

// Phase bounds (virtual time).
const (
	setupWaitMax   = 60 * time.Second
	healWaitMax    = 60 * time.Second
	replicaWaitMax = 30 * time.Second
)

// runOpts selects what one schedule does besides its seed.
type runOpts struct {
	duration time.Duration // fault phase, virtual
	profile  string
	// brokenAck: the deliberately broken variant (node acknowledges a
	// produce before it is committed, node.Config.UnsafeAckBeforeApply).
	// The simulator must catch it.
	brokenAck bool
	// lyingSync: the broken disk (diskio.Faults.LyingSync on every node):
	// fsync reports success and makes nothing durable, the "flush that
	// did nothing" the simulator exists to catch.
	lyingSync bool
	// brokenGroup plants a group bug the group checkers must catch
	// (workload_group_test.go); group, if set, replaces the seed's group
	// plan and runs at least two group consumers.
	brokenGroup string
	group       *groupPlan
	// onTrace, if set, receives the run's trace when it starts.
	onTrace func(*trace)
	// beside, if set, runs in the bubble beside the schedule until done
	// is closed (test hooks: a schedule that never ends, budget_test.go;
	// stacks at an instant, diverge_test.go).
	beside func(done <-chan struct{})
	// fine: trace every network operation too (nettrace_test.go).
	fine bool
	// workload starts the clients (on wg, stopping when ctx ends); nil:
	// the core-API workload.
	workload func(ctx context.Context, c *cluster, h *history, tps []tp, wg *sync.WaitGroup)
}

// result is what a schedule leaves behind.
type result struct {
	seed       int64
	topo       topology
	hash       string // canonical trace
	schedHash  string // topology and fault schedule only
	violations []string
	liveness   string // non-empty: the cluster did not converge after heal
	tr         *trace
	logs       string
	virtual    time.Duration
	acks       int
	reads      int64
	txns       string // the transactional workload's summary, if any
	groups     string // the group workload's summary, if any
	// collections ran in the schedule other than the heartbeat's
	// (quietCollector: none unless its heap grew past
	// scheduleHeapLimitBytes).
	collections uint64
}

// runSchedule runs one seed's schedule inside its own synctest bubble,
// under a watchdog that bounds it (budget_test.go).
func runSchedule(t *testing.T, seed int64, o runOpts) (res result) {
	gc := quietCollector()
	defer func() { res.collections = gc.restore() }()
	w := startWatchdog(seed)
	defer w.stop()
	onTrace := o.onTrace
	o.onTrace = func(tr *trace) {
		tr.overBudget = w.wake
		w.running.Store(tr)
		if onTrace != nil {
			onTrace(tr)
		}
	}
	synctest.Test(t, func(t *testing.T) {
		// crypto/rand from the seed: kgo's KIP-848 members name
		// themselves with random UUIDs, sent over the network and
		// sorted by the server's assignors.
		cryptotest.SetGlobalRandom(t, uint64(subSeed(seed, "crypto")))
		done := make(chan struct{})
		beatDone := make(chan struct{})
		go func() { // the heartbeat: virtual time advancing
			defer close(beatDone)
			tk := time.NewTicker(heartbeatEvery)
			defer tk.Stop()
			for {
				select {
				case <-done:
					return
				case <-tk.C:
					w.beats.Add(1)
					if gc.due() {
						// Every other goroutine of the bubble durably
						// blocked: the collection moves none of them.
						synctest.Wait()
						gc.collect()
					}
				}
			}
		}()
		if o.beside != nil {
			go o.beside(done)
		}
		res = runBubble(seed, o)
		close(done)
		<-beatDone
	})
	return res
}

func runBubble(seed int64, o runOpts) (res result) {
	reseedDragonboat(seed)
	start := time.Now()
	tr := newTrace()
	if o.onTrace != nil {
		o.onTrace(tr)
	}
	topo := drawTopology(seed)
	if o.group != nil {
		topo.group = *o.group
		topo.groupConsumers = max(topo.groupConsumers, 2)
	}
	tr.add(evPhase, "seed %d profile %s %v", seed, o.profile, topo)
	c := newCluster(seed, topo, tr)
	c.net.SetDelaySkew(linkSkewMax)
	c.applyLinkBase()
	raftlog.Install(c.log, simLogLevel())
	raftlog.SetPanicHook(c.onPanic)
	defer raftlog.SetPanicHook(nil)
	h := newHistory(tr)
	h.plan = topo.group
	for name := range topo.retention.topics {
		h.retentionTopics[name] = true
	}
	res = result{seed: seed, topo: topo, tr: tr}
	defer func() {
		c.closeAll()
		c.bg.Wait()
		res.virtual = time.Since(start)
		res.violations = h.failed()
		res.acks = h.ackCount()
		res.reads = h.reads
		res.txns = h.txnSummary()
		res.groups = h.groupSummary()
		res.logs = c.logs.String()
		res.hash = tr.hash()
		res.schedHash = tr.scheduleHash()
	}()
	c.brokenAck = o.brokenAck
	c.brokenGroup = o.brokenGroup
	c.lyingSync = o.lyingSync
	c.fine = o.fine
	phase := newRand(seed, "start-phase")
	for i, id := range c.ids() {
		if i > 0 {
			staggerStart(c, phase)
		}
		if err := c.start(id); err != nil {
			res.liveness = fmt.Sprintf("b%d did not start: %v", id, err)
			return res
		}
	}
	tps, err := createTopics(c)
	if err != nil {
		res.liveness = err.Error()
		return res
	}
	tr.add(evPhase, "fault phase for %v", o.duration)
	faultPhase(c, h, tps, o)
	h.checkTxns()
	if s := h.txnSummary(); s != "" {
		tr.add(evCheck, "%s", s)
	}
	if s := h.groupSummary(); s != "" {
		tr.add(evCheck, "%s", s)
	}
	tr.add(evPhase, "heal")
	heal(c, rand.New(rand.NewPCG(uint64(subSeed(seed, "heal")), 1)))
	if err := finalCheck(c, h, tps); err != nil {
		res.liveness = err.Error()
		tr.add(evCheck, "LIVENESS %v", err)
	}
	return res
}

// linkSkewMax bounds each link's constant extra delay (netio.Sim.SetDelaySkew):
// messages sent at one instant over different links arrive at distinct
// instants, so their order is virtual time's, not the scheduler's.
const linkSkewMax = 20 * time.Microsecond

// staggerStart waits a seeded fraction of a Raft tick (at least 1 ns)
// before a node starts. A NodeHost ticks every RTTMillisecond from its
// start, so nodes started at one instant would tick, time out and send at
// the same instants for ever, and which of them goes first would be
// decided by goroutine scheduling (and by the order in which they draw
// from dragonboat's shared random source).
func staggerStart(c *cluster, rng *rand.Rand) {
	tick := int64(time.Duration(c.topo.rttMs) * time.Millisecond)
	time.Sleep(time.Duration(1 + rng.Int64N(tick)))
}

// offGrid sleeps a seeded time shorter than a tick (at least 1 ns)
// before a setup request. Setup starts when the last node's start
// returns, an instant of that node's tick grid, and retries on the
// millisecond grid; a request made at the instant a node applies
// something (a broker's registration, a leader change) would see it or
// not by goroutine order (seen: seed 39's first CreateTopics found 0 or
// 1 registered brokers from run to run, and setup ended 100 ms apart).
func offGrid(c *cluster, rng *rand.Rand) {
	tick := int64(time.Duration(c.topo.rttMs) * time.Millisecond)
	time.Sleep(time.Duration(1 + rng.Int64N(tick)))
}

// createTopics creates the workload's topics and waits until every
// partition has a leader.
func createTopics(c *cluster) ([]tp, error) {
	var tps []tp
	for _, t := range c.topo.topics {
		for p := range t.partitions {
			tps = append(tps, tp{t.name, p})
		}
	}
	deadline := time.Now().Add(setupWaitMax)
	pause := newRand(c.seed, "setup-pause")
	for _, t := range c.topo.topics {
		for {
			offGrid(c, pause)
			b := c.broker(1)
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			r := b.Node.CreateTopics(ctx, []node.TopicSpec{{Name: t.name, Partitions: t.partitions, ReplicationFactor: t.rf,
				Configs: c.topo.retention.topics[t.name]}}, false)[0]
			cancel()
			if r.ErrorCode == 0 || r.ErrorCode == 36 { // TOPIC_ALREADY_EXISTS: an earlier try committed
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("setup: create topic %s: code %d %s", t.name, r.ErrorCode, r.Message)
			}
			time.Sleep(retryBackoff)
		}
	}
	rng := newRand(c.seed, "setup")
	for _, at := range tps {
		for offGrid(c, pause); leaderOf(context.Background(), c, rng, at) == nil; offGrid(c, pause) {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("setup: %s has no leader after %v", at, setupWaitMax)
			}
			time.Sleep(retryBackoff)
		}
	}
	c.tr.add(evPhase, "setup done: %d partitions", len(tps))
	return tps, nil
}

// faultPhase runs the workload and the fault lanes for o.duration.
func faultPhase(c *cluster, h *history, tps []tp, o runOpts) {
	ctx, cancel := context.WithTimeout(context.Background(), o.duration)
	defer cancel()
	var wg sync.WaitGroup
	goRun := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	workload := o.workload
	if workload == nil {
		workload = coreWorkload
	}
	workload(ctx, c, h, tps, &wg)
	goRun(func() { leaderSampler(ctx, c, h) })
	goRun(func() { retentionChanger(ctx, c) })
	s := newScheduler(c, o.profile)
	lanes := 1
	if o.profile == profileUnsafe {
		lanes = c.topo.nodes
	}
	for l := range lanes {
		goRun(func() { s.lane(ctx, l) })
	}
	wg.Wait()
}

// heal stops every fault, then power-cuts every running node at once and
// restarts them all: the cluster must come back from its disks alone.
func heal(c *cluster, rng *rand.Rand) {
	c.net.Heal()
	c.applyLinkBase()
	for _, id := range c.ids() {
		c.setDiskFaults(id, diskio.Faults{})
	}
	c.bg.Wait() // fail-stops in progress finish their crash
	for _, id := range c.up() {
		c.crash(id, crashModes[rng.IntN(len(crashModes))])
	}
	phase := newRand(c.seed, "heal-phase")
	for i, id := range c.ids() {
		if i > 0 {
			staggerStart(c, phase)
		}
		for try := 0; try < restartTries; try++ {
			if c.start(id) == nil {
				break
			}
			time.Sleep(time.Second)
		}
	}
}

// finalCheck waits (bounded) until every partition has a leader that
// serves its whole log up to at least the highest acknowledged offset,
// checks that log from its start, then compares the replicas.
func finalCheck(c *cluster, h *history, tps []tp) error {
	deadline := time.Now().Add(healWaitMax)
	rng := newRand(c.seed, "final")
next:
	for _, at := range tps {
		acked := h.acked(at)
		need := int64(0)
		for off := range acked {
			need = max(need, off+1)
		}
		var log []fetchedRecord
		var hw, start int64 = -1, 0
		for {
			log, hw, start = readAll(c, rng, at)
			if hw >= need && int64(len(log)) >= hw-start {
				break
			}
			if time.Now().After(deadline) {
				if hw >= 0 && hw < need {
					// A leader answers, with every node restarted and
					// every fault gone, below an acknowledged offset:
					// that is loss, not unavailability.
					h.final(at, log, hw, start)
					continue next
				}
				if hw < 0 && len(acked) > 0 && forgotten(c, at) {
					// No node, all up and with a controller, knows the
					// partition any more: its acknowledged records are
					// lost with it, as surely as below a high watermark.
					c.tr.add(evCheck, "%s forgotten by every node", at)
					h.final(at, nil, 0, 0)
					continue next
				}
				return fmt.Errorf("liveness: %s not readable up to offset %d within %v of heal (leader read %d records from %d, hw %d)", at, need, healWaitMax, len(log), start, hw)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if start > 0 {
			c.tr.add(evCheck, "%s retained from log start %d of %d", at, start, hw)
		}
		h.final(at, log, hw, start)
		compareReplicas(c, h, at, hw, start)
	}
	return nil
}

// forgotten reports whether every node is up, knows a controller leader,
// and has no partition at in its metadata (workload topics are never
// deleted).
func forgotten(c *cluster, at tp) bool {
	for _, id := range c.ids() {
		b := c.broker(id)
		if b == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		v := b.Node.Metadata(ctx, []string{at.topic})
		cancel()
		if v.ControllerID < 0 {
			return false
		}
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				if p.Partition == at.part {
					return false
				}
			}
		}
	}
	return true
}

// readAll reads at's log from its log start on its current leader; hw -1
// means no leader answered.
func readAll(c *cluster, rng *rand.Rand, at tp) ([]fetchedRecord, int64, int64) {
	n := leaderOf(context.Background(), c, rng, at)
	if n == nil {
		return nil, -1, 0
	}
	var out []fetchedRecord
	var hw, start int64 = -1, 0
	for pos := int64(0); ; {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		res := n.Fetch(ctx, at.topic, at.part, pos, fetchBytesMax)
		cancel()
		if res.ErrorCode == kerr.OffsetOutOfRange.Code && len(out) == 0 && res.LogStartOffset > pos {
			pos, start = res.LogStartOffset, res.LogStartOffset
			continue
		}
		if res.ErrorCode != 0 {
			return out, -1, start
		}
		hw = res.HighWatermark
		recs, err := decodeBatches(res.Records)
		if err != nil || len(recs) == 0 {
			return out, hw, start
		}
		for _, r := range recs {
			if r.offset >= pos { // a batch holding pos starts before it
				out = append(out, r)
			}
		}
		pos = recs[len(recs)-1].offset + 1
		if pos >= hw {
			return out, hw, start
		}
	}
}

// compareReplicas checks that every replica of at has the leader's log
// start and holds the same records from it to hw, waiting (bounded) for
// followers to apply up to hw.
func compareReplicas(c *cluster, h *history, at tp, hw, start int64) {
	var want []fetchedRecord
	var wantFrom uint64
	for _, id := range c.ids() {
		var got []fetchedRecord
		var from int64
		deadline := time.Now().Add(replicaWaitMax)
		for {
			got, from = readLocal(c, id, at, hw)
			if got == nil || (from == start && int64(len(got)) >= hw-start) || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got == nil {
			continue // not a replica of at
		}
		if from != start {
			h.violate("%s: replica b%d has log start %d, the leader %d, after %v", at, id, from, start, replicaWaitMax)
			continue
		}
		if int64(len(got)) < hw-start {
			h.violate("%s: replica b%d holds %d records in [%d, %d) after %v", at, id, len(got), start, hw, replicaWaitMax)
		}
		if want == nil {
			want, wantFrom = got, id
			continue
		}
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				h.violate("%s: replicas b%d and b%d differ at offset %d: %q vs %q", at, wantFrom, id, got[i].offset, want[i].value, got[i].value)
				break
			}
		}
	}
}

// readLocal reads node id's replica of at from its log start to hw
// (FetchLocal) and returns the records and that log start; nil if the
// node does not host it.
func readLocal(c *cluster, id uint64, at tp, hw int64) ([]fetchedRecord, int64) {
	b := c.broker(id)
	if b == nil {
		return nil, 0
	}
	out := []fetchedRecord{}
	var start int64
	for pos := int64(0); pos < hw; {
		res := b.Node.FetchLocal(at.topic, at.part, pos, fetchBytesMax)
		if res.ErrorCode == kerr.OffsetOutOfRange.Code && len(out) == 0 && res.LogStartOffset > pos {
			pos, start = res.LogStartOffset, res.LogStartOffset
			continue
		}
		if res.ErrorCode != 0 {
			if len(out) == 0 && pos == start {
				if res.ErrorCode == kerr.OffsetOutOfRange.Code {
					return out, res.LogStartOffset // behind: its log ends below the start asked
				}
				return nil, 0
			}
			return out, start
		}
		recs, err := decodeBatches(res.Records)
		if err != nil || len(recs) == 0 {
			return out, start
		}
		for _, r := range recs {
			if r.offset >= pos && r.offset < hw {
				out = append(out, r)
			}
		}
		pos = recs[len(recs)-1].offset + 1
	}
	return slices.Clip(out), start
}
