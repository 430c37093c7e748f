package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pingcap/failpoint"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// Profiles. recoverable: one lane of faults, so at most one node is
// impaired at a time and a quorum with intact data always exists; every
// seed must stay safe and heal. unsafe: one lane per node, overlapping
// faults on several nodes (correlated crashes, majority partitions);
// availability may be lost (reported), safety may not.
const (
	profileRecoverable = "recoverable"
	profileUnsafe      = "unsafe"
)

// Bounds of fault durations.
const (
	faultHoldMin = 100 * time.Millisecond
	faultHoldMax = 5 * time.Second
	restartTries = 5
)

// segmentPattern matches the partition log segments and the Raft log's
// (core/wal) segments of a node's disk (DataDir /data, see
// cluster.config).
const segmentPattern = "data/partitions/*/log/*.log|data/wal/*.wal"

var crashModes = []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashRandomPrefix, diskio.CrashTornPrefix}

type faultKind int

const (
	fkCrash faultKind = iota
	fkClean
	fkPause
	fkPartition
	fkOneWay
	fkFlaky
	fkDiskSlow
	fkBitFlip
	fkFailpoint
	fkSyncError
	fkDiskFull
	fkCount
)

// simFailpoints are the failpoints the swarm may enable (failpoint builds
// only). Each is recoverable by design: a correct system loses nothing
// acknowledged and heals. Which one, its count and its window come from
// the seed; failpoint's own random terms (N%) are never used, and neither
// are sleep or pause: failpoint evaluates them holding its own mutex, and
// a goroutine waiting on a mutex stops a synctest bubble's clock.
var simFailpoints = []struct{ name, term string }{
	// A produce's answer is lost: the client retries and the idempotent
	// retry must get the original offsets.
	{"github.com/chronik-go/chronik/core/node/beforeProduceResult", "return"},
	// The reconciler fails to start partition shards; it retries.
	{"github.com/chronik-go/chronik/core/node/startPartitionError", "return"},
	// An offset commit reports failure although it was applied.
	{"github.com/chronik-go/chronik/core/node/commitOffsetsAfterPropose", "return"},
}

func (s swarm) weights() [fkCount]int {
	return [fkCount]int{s.crash, s.cleanRestart, s.pause, s.partition, s.oneWay, s.linkFlaky, s.diskSlow, s.bitFlip, s.failpoint, s.syncError, s.diskFull}
}

// scheduler injects faults during the fault phase. Each lane is one
// goroutine applying one fault at a time and reverting it before the next.
type scheduler struct {
	c       *cluster
	start   time.Time // the fault phase's start
	profile string
	netMu   chan struct{} // one-slot semaphore: network rule changes are recomputed as a whole
	active  map[int]func(*netio.Sim)
}

func newScheduler(c *cluster, profile string) *scheduler {
	s := &scheduler{c: c, profile: profile, start: time.Now(), netMu: make(chan struct{}, 1), active: map[int]func(*netio.Sim){}}
	return s
}

// setNet installs (fn != nil) or removes lane's network rule, then rebuilds
// the network's rules from every active lane's: netio.Sim.Heal clears all.
func (s *scheduler) setNet(lane int, fn func(*netio.Sim)) {
	s.netMu <- struct{}{}
	defer func() { <-s.netMu }()
	if fn == nil {
		delete(s.active, lane)
	} else {
		s.active[lane] = fn
	}
	s.c.net.Heal()
	s.c.applyLinkBase()
	for l := range len(s.c.ids()) + 1 {
		if f := s.active[l]; f != nil {
			f(s.c.net)
		}
	}
}

func drawHold(rng *rand.Rand) time.Duration {
	return faultHoldMin + time.Duration(rng.Int64N(int64(faultHoldMax-faultHoldMin)))
}

func pick(rng *rand.Rand, w [fkCount]int) (faultKind, bool) {
	total := 0
	for _, x := range w {
		total += x
	}
	if total == 0 {
		return 0, false
	}
	r := rng.IntN(total)
	for k, x := range w {
		if r < x {
			return faultKind(k), true
		}
		r -= x
	}
	return 0, false
}

// lane runs faults until ctx ends.
func (s *scheduler) lane(ctx context.Context, lane int) {
	rng := newRand(s.c.seed, fmt.Sprintf("faults-%d", lane))
	sw := s.c.topo.swarm
	// Faults start and end at planned instants (offsets from the phase
	// start), whatever their operations cost in virtual time, so the
	// schedule is a function of the seed alone.
	var at time.Duration
	for {
		at += time.Duration(rng.ExpFloat64() * float64(sw.gapMeanMs) * float64(time.Millisecond))
		if !s.sleepUntil(ctx, at) {
			return
		}
		k, ok := pick(rng, sw.weights())
		if !ok {
			<-ctx.Done()
			return
		}
		at = s.apply(ctx, lane, rng, k, at)
	}
}

// sleepUntil sleeps until offset at of the fault phase, or ctx ends.
func (s *scheduler) sleepUntil(ctx context.Context, at time.Duration) bool {
	d := time.Until(s.start.Add(at))
	if d <= 0 {
		return ctx.Err() == nil
	}
	return sleepCtx(ctx, d)
}

// apply injects fault k, holds it, and reverts it (even if ctx ended:
// the heal phase starts from a clean slate).
// It returns the planned end of the fault.
func (s *scheduler) apply(ctx context.Context, lane int, rng *rand.Rand, k faultKind, at time.Duration) time.Duration {
	c := s.c
	ids := c.ids()
	id := ids[rng.IntN(len(ids))]
	other := ids[rng.IntN(len(ids))]
	hold := drawHold(rng)
	end := at + hold
	defer func() { c.tr.add(evFault, "t+%012.6fs lane%d end", end.Seconds(), lane) }()
	host, otherHost := brokerHost(id), brokerHost(other)
	if clients := c.clientHosts(); len(clients) > 0 && rng.IntN(4) == 0 {
		otherHost = clients[rng.IntN(len(clients))]
	}
	switch k {
	case fkCrash:
		mode := crashModes[rng.IntN(len(crashModes))]
		c.tr.add(evFault, "t+%012.6fs lane%d crash b%d mode=%v down=%v", at.Seconds(), lane, id, mode, hold)
		c.crash(id, mode)
		s.sleepUntil(ctx, end)
		s.restart(id)
	case fkClean:
		c.tr.add(evFault, "t+%012.6fs lane%d clean restart b%d down=%v", at.Seconds(), lane, id, hold)
		c.stop(id)
		s.sleepUntil(ctx, end)
		s.restart(id)
	case fkPause:
		c.tr.add(evFault, "t+%012.6fs lane%d pause b%d for %v", at.Seconds(), lane, id, hold)
		s.setNet(lane, func(n *netio.Sim) { n.Isolate(host) })
		s.sleepUntil(ctx, end)
		s.setNet(lane, nil)
	case fkPartition:
		c.tr.add(evFault, "t+%012.6fs lane%d partition %s <-> %s for %v", at.Seconds(), lane, host, otherHost, hold)
		s.setNet(lane, func(n *netio.Sim) { n.Partition(host, otherHost) })
		s.sleepUntil(ctx, end)
		s.setNet(lane, nil)
	case fkOneWay:
		c.tr.add(evFault, "t+%012.6fs lane%d one-way cut %s -> %s for %v", at.Seconds(), lane, host, otherHost, hold)
		s.setNet(lane, func(n *netio.Sim) { n.PartitionOneWay(host, otherHost) })
		s.sleepUntil(ctx, end)
		s.setNet(lane, nil)
	case fkFlaky:
		r := netio.LinkRule{
			Delay:           c.linkBase.Delay + time.Duration(rng.IntN(30))*time.Millisecond,
			Jitter:          time.Duration(1+rng.IntN(30)) * time.Millisecond,
			DropProbability: []float64{0, 0.001, 0.01, 0.05}[rng.IntN(4)],
		}
		c.tr.add(evFault, "t+%012.6fs lane%d flaky %s <-> %s %+v for %v", at.Seconds(), lane, host, otherHost, r, hold)
		s.setNet(lane, func(n *netio.Sim) {
			n.SetLink(host, otherHost, r)
			n.SetLink(otherHost, host, r)
		})
		s.sleepUntil(ctx, end)
		s.setNet(lane, nil)
	case fkDiskSlow:
		f := diskio.Faults{Latency: map[diskio.Op]time.Duration{
			diskio.OpSync:  time.Duration(1+rng.IntN(50)) * time.Millisecond,
			diskio.OpWrite: time.Duration(rng.IntN(5)) * time.Millisecond,
		}}
		c.tr.add(evFault, "t+%012.6fs lane%d slow disk b%d sync=%v for %v", at.Seconds(), lane, id, f.Latency[diskio.OpSync], hold)
		c.setDiskFaults(id, f)
		s.sleepUntil(ctx, end)
		c.setDiskFaults(id, diskio.Faults{})
	case fkBitFlip:
		// Partition log segments and Raft log segments: plog verifies
		// every batch's CRC on read, so a flipped bit must become a fetch
		// error (or an aborted snapshot, or a fail-stop when a replica
		// opens), never a served record (the history checks every value
		// read). The WAL (core/wal) verifies every record it reads and
		// reads a failing one again (wal.ReadRetries) before it
		// believes it: a flip here is transient (the stored bytes are
		// intact), so it must never reach Raft, nor cut a "torn tail"
		// at open.
		//
		// Half of the time the node also restarts cleanly half way
		// through, flips still on, so that opening (the WAL's recovery
		// and the replicas' opens) meets them too. Otherwise, half of
		// the time the flips are sticky (diskio's ReadBitFlipSticky: a
		// bad spot fails every read of its byte until the fault ends),
		// so that the WAL meets a record that fails every read: it
		// must fail-stop the node (cluster.failStop, which clears the
		// disk's faults; the WAL's read after the hook then verifies,
		// and dragonboat, which panics on a LogDB error, winds the dead
		// node down quietly), never serve it. Not at open: a bad spot
		// in the newest segment's last batch would be cut as a torn
		// tail (DESIGN.md, "Not built yet").
		p := []float64{0.001, 0.01, 0.1}[rng.IntN(3)]
		reopen := rng.IntN(2) == 0
		sticky := !reopen && rng.IntN(2) == 0
		c.tr.add(evFault, "t+%012.6fs lane%d read bit flips b%d p=%v for %v reopen=%v sticky=%v", at.Seconds(), lane, id, p, hold, reopen, sticky)
		flips := diskio.Faults{ReadBitFlipProbability: p, ReadBitFlipPattern: segmentPattern, ReadBitFlipSticky: sticky}
		if reopen {
			c.setDiskFaults(id, flips) // kept across the restart
			s.sleepUntil(ctx, at+hold/2)
			c.stop(id)
			s.restart(id)
			s.sleepUntil(ctx, end)
			c.setDiskFaults(id, diskio.Faults{})
		} else {
			c.setRunningDiskFaults(id, flips)
			s.sleepUntil(ctx, end)
			c.setRunningDiskFaults(id, diskio.Faults{})
		}
		// A flip met while a replica opened or recovered a snapshot
		// fail-stops the node (partition.Options.OnStorageFailure).
		s.restart(id)
	case fkSyncError:
		// fsync fails (EIO): the node must fail-stop (diskio.FailStop ->
		// cluster.failStop), lose nothing acknowledged and recover on
		// restart from what its disk really holds.
		p := []float64{0.01, 0.1, 1}[rng.IntN(3)]
		c.tr.add(evFault, "t+%012.6fs lane%d fsync errors b%d p=%v for %v", at.Seconds(), lane, id, p, hold)
		c.setDiskFaults(id, diskio.Faults{Rules: []diskio.FaultRule{{Op: diskio.OpSync, Probability: p}}})
		s.sleepUntil(ctx, end)
		c.setDiskFaults(id, diskio.Faults{})
		s.restart(id)
	case fkDiskFull:
		// The disk fills up a little after now (ENOSPC on writes past the
		// capacity): fail-stop as above; the operator frees space (the
		// fault ends) and the node restarts.
		headroom := int64(rng.IntN(256 << 10))
		used := c.diskUsed(id)
		c.tr.add(evFault, "t+%012.6fs lane%d disk full b%d headroom=%d for %v", at.Seconds(), lane, id, headroom, hold)
		c.setDiskFaults(id, diskio.Faults{CapacityBytes: used + headroom})
		s.sleepUntil(ctx, end)
		c.setDiskFaults(id, diskio.Faults{})
		s.restart(id)
	case fkFailpoint:
		fp := simFailpoints[rng.IntN(len(simFailpoints))]
		term := fmt.Sprintf("%d*%s", 1+rng.IntN(20), fp.term)
		c.tr.add(evFault, "t+%012.6fs lane%d failpoint %s=%s for %v", at.Seconds(), lane, fp.name, term, hold)
		if err := failpoint.Enable(fp.name, term); err != nil {
			panic(fmt.Sprintf("sim: enable failpoint %s: %v", fp.name, err))
		}
		s.sleepUntil(ctx, end)
		_ = failpoint.Disable(fp.name) // already disabled when its count ran out
	}
	return end
}

// restart starts node id, retrying a few times (a start can fail while
// the node's disk is faulty); failures are left to the heal phase.
func (s *scheduler) restart(id uint64) {
	for range restartTries {
		if err := s.c.start(id); err == nil {
			return
		}
		time.Sleep(time.Second)
	}
}

// admin creates, grows and deletes topics of its own through the core
// API while faults run (topic names are never reused).
func admin(ctx context.Context, c *cluster) {
	rng := newRand(c.seed, "admin")
	if c.topo.swarm.admin == 0 {
		return
	}
	call := func(what string, f func(n *node.Node, ctx context.Context) node.TopicResult) {
		for _, id := range c.up() {
			b := c.broker(id)
			if b == nil {
				continue
			}
			actx, cancel := context.WithTimeout(ctx, requestTimeout)
			r := f(b.Node, actx)
			cancel()
			c.tr.add(evAdmin, "%s via b%d: code=%d", what, id, r.ErrorCode)
			return
		}
	}
	for k := 0; ; k++ {
		if !sleepCtx(ctx, time.Duration(1000+rng.IntN(10000/c.topo.swarm.admin))*time.Millisecond) {
			return
		}
		name := fmt.Sprintf("adm%d", k)
		call("create "+name, func(n *node.Node, ctx context.Context) node.TopicResult {
			return n.CreateTopics(ctx, []node.TopicSpec{{Name: name, Partitions: int32(1 + rng.IntN(2))}}, false)[0]
		})
		if !sleepCtx(ctx, time.Duration(rng.IntN(3000))*time.Millisecond) {
			return
		}
		call("add partitions "+name, func(n *node.Node, ctx context.Context) node.TopicResult {
			return n.CreatePartitions(ctx, []meta.CreatePartitions{{Topic: name, Count: 3}})[0]
		})
		if !sleepCtx(ctx, time.Duration(rng.IntN(3000))*time.Millisecond) {
			return
		}
		call("delete "+name, func(n *node.Node, ctx context.Context) node.TopicResult {
			return n.DeleteTopics(ctx, []string{name})[0]
		})
	}
}
