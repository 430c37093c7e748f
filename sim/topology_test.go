package sim

import (
	"fmt"
	"time"
)

// topology is what a seed draws before anything runs: cluster size,
// topics, timing, clock skew and the swarm of fault probabilities.
type topology struct {
	nodes            int
	topics           []topicSpec
	snapshotEntries  uint64
	raftLogBytes     int64  // node.Config.RaftLogBytes (snapshotPace)
	rttMs            uint64 // dragonboat's tick; elections after 10 ticks
	clockOffsetMax   time.Duration
	clockDriftPPMMax int64
	producers        int
	txnProducers     int // transactional producers (0 or 1), with a read_committed reader
	readers          int
	groupConsumers   int
	group            groupPlan // how the group consumers behave
	groupShards      int32     // group coordinator shards (node.Config.GroupShards), 1-3
	swarm            swarm
	retention        retentionPlan
}

type topicSpec struct {
	name       string
	partitions int32
	rf         int16
}

// swarm: each fault kind's weight is drawn per seed (swarm testing: some
// seeds never crash, some partition all the time), 0 disables the kind.
type swarm struct {
	crash, cleanRestart, pause, partition, oneWay, linkFlaky, diskSlow, bitFlip, failpoint, admin int
	syncError, diskFull                                                                           int
	gapMeanMs                                                                                     int64 // mean quiet time between faults
}

func (s swarm) String() string {
	return fmt.Sprintf("crash=%d clean=%d pause=%d partition=%d oneway=%d flaky=%d slow=%d bitflip=%d syncerr=%d full=%d failpoint=%d admin=%d gap=%dms",
		s.crash, s.cleanRestart, s.pause, s.partition, s.oneWay, s.linkFlaky, s.diskSlow, s.bitFlip, s.syncError, s.diskFull, s.failpoint, s.admin, s.gapMeanMs)
}

func drawTopology(seed int64) topology {
	rng := newRand(seed, "topology")
	var t topology
	switch r := rng.IntN(10); {
	case r < 1:
		t.nodes = 1
	case r < 9:
		t.nodes = 3
	default:
		t.nodes = 5
	}
	for i := range 1 + rng.IntN(2) {
		rf := int16(min(t.nodes, 3))
		if rng.IntN(4) == 0 {
			rf = int16(1 + rng.IntN(min(t.nodes, 3)))
		}
		t.topics = append(t.topics, topicSpec{name: fmt.Sprintf("t%d", i), partitions: int32(1 + rng.IntN(3)), rf: rf})
	}
	t.snapshotEntries = []uint64{20, 100, 1000}[rng.IntN(3)]
	t.rttMs = []uint64{10, 20, 20}[rng.IntN(3)]
	t.clockOffsetMax = time.Duration(rng.IntN(3)) * time.Second
	t.clockDriftPPMMax = []int64{0, 100, 20_000}[rng.IntN(3)]
	t.producers = 1 + rng.IntN(3)
	t.readers = 1 + rng.IntN(2)
	t.groupConsumers = rng.IntN(3)
	w := func() int {
		if rng.IntN(3) == 0 {
			return 0
		}
		return 1 + rng.IntN(10)
	}
	t.swarm = swarm{
		crash: w(), cleanRestart: w(), pause: w(), partition: w(), oneWay: w(),
		linkFlaky: w(), diskSlow: 0, bitFlip: 0, admin: w(),
		gapMeanMs: int64(200 + rng.IntN(3000)),
	}
	// Disk faults draw from a stream of their own, so that adding them
	// left every other draw of a seed as it was.
	d := newRand(seed, "disk-faults")
	dw := func() int {
		if d.IntN(3) == 0 {
			return 0
		}
		return 1 + d.IntN(10)
	}
	t.swarm.bitFlip, t.swarm.syncError, t.swarm.diskFull = dw(), dw(), dw()
	t.retention = drawRetention(seed, t.topics)
	// A stream of its own, so that adding transactions left every other
	// draw of a seed as it was.
	if newRand(seed, "transactions").IntN(3) != 0 {
		t.txnProducers = 1
	}
	t.group = drawGroupPlan(seed)
	t.snapshotEntries, t.raftLogBytes = snapshotPace(seed, t.snapshotEntries)
	// A stream of its own, so that adding group shards left every other
	// draw of a seed as it was. Few: each is a Raft group on every node.
	t.groupShards = int32(1 + newRand(seed, "group-shards").IntN(3))
	if failpointsCompiled {
		// A stream of its own, so that builds without failpoints draw the
		// same topology and schedule for a seed.
		t.swarm.failpoint = 1 + newRand(seed, "failpoints").IntN(10)
	}
	return t
}

// snapshotPace draws how often partition replicas snapshot, from a stream
// of its own (every other draw of a seed stays as it was). In 1 seed of 3
// it is eager, as every seed was before: SnapshotEntries as the topology
// drew it (20, 100 or 1000) and a Raft-log budget of 1 KiB, so that the
// byte-driven snapshots of raftlogtrim.go come about once a second per
// active replica, under faults too. In the others it is relaxed: ten
// times the entries (200, 1000, 10000) and 64 KiB. A trade for speed
// made explicit: a snapshot save allocated and cleared a 2 MiB block in
// dragonboat's writer, and eager snapshots were 16% of a schedule's CPU
// (sim/doc.go, "Speed"); relaxed seeds in turn keep longer Raft logs, so
// followers and restarts catch up from the log more often than from a
// snapshot. The topology line shows both (snapshot=, raftlog=).
func snapshotPace(seed int64, entries uint64) (uint64, int64) {
	if newRand(seed, "snapshot-pace").IntN(3) == 0 {
		return entries, 1 << 10
	}
	return 10 * entries, 64 << 10
}

func (t topology) String() string {
	s := fmt.Sprintf("nodes=%d rtt=%dms snapshot=%d raftlog=%d producers=%d readers=%d groups=%d gshards=%d ", t.nodes, t.rttMs, t.snapshotEntries, t.raftLogBytes, t.producers, t.readers, t.groupConsumers, t.groupShards)
	if t.groupConsumers > 0 {
		s += t.group.String() + " "
	}
	if t.txnProducers > 0 {
		s += fmt.Sprintf("txn=%d ", t.txnProducers)
	}
	s += "topics="
	for _, tp := range t.topics {
		s += fmt.Sprintf("%s(p=%d,rf=%d) ", tp.name, tp.partitions, tp.rf)
	}
	return s + "swarm: " + t.swarm.String() + " " + t.retention.String()
}

// groupPlan is how a seed's group consumers run: the group protocol
// (classic JoinGroup/SyncGroup, or KIP-848's ConsumerGroupHeartbeat with
// a server-side assignor), the classic client-side balancer, and whether
// they commit after processing (kgo.AutoCommitMarks, marking what they
// recorded) or kgo's plain auto-commit of what was polled.
type groupPlan struct {
	consumer848 bool
	balancer    string // classic: "range", "cooperative-sticky"; 848: "uniform", "range"
	marks       bool   // commit after processing
	churn       bool   // members leave and rejoin every few seconds
}

func (g groupPlan) String() string {
	proto, commit := "classic", "auto"
	if g.consumer848 {
		proto = "848"
	}
	if g.marks {
		commit = "marks"
	}
	if g.churn {
		commit += "/churn"
	}
	return fmt.Sprintf("group=%s/%s/%s", proto, g.balancer, commit)
}

// drawGroupPlan draws from streams of their own, so that adding the
// group plan left every other draw of a seed as it was.
func drawGroupPlan(seed int64) groupPlan {
	var g groupPlan
	g.consumer848 = newRand(seed, "group-protocol").IntN(2) == 0
	b := newRand(seed, "group-balancer").IntN(2)
	if g.consumer848 {
		g.balancer = []string{"uniform", "range"}[b]
	} else {
		g.balancer = []string{"range", "cooperative-sticky"}[b]
	}
	g.marks = newRand(seed, "group-commit").IntN(3) != 0
	g.churn = newRand(seed, "group-churn").IntN(2) == 0
	return g
}
