// Package sim is Chronik's simulator: whole Chronik nodes (server.StartBroker:
// the replicated core on dragonboat plus the Kafka handlers) on diskio.Sim
// disks, a netio.Sim network (Kafka and Raft traffic alike) and per-node
// clock.Sim clocks, with real franz-go clients, all inside one
// testing/synctest bubble per seed. Everything lives in _test.go files; the
// tests that run kgo in a bubble need -tags synctests.
//
// # Running
//
//	make sim SEED=N          one schedule (go test -tags synctests ./sim -run TestSim -seed=N)
//	make sim SEEDS=N         N schedules from SEED_BASE
//	make sim-long            thousands
//	-sim-duration=30s        virtual length of the fault phase
//	-sim-profile=recoverable one fault lane: at most one node impaired at a
//	                         time, a quorum with intact data always exists;
//	                         safety and liveness after heal are required
//	-sim-profile=unsafe      one lane per node (correlated crashes, majority
//	                         partitions); safety required, unavailability
//	                         after heal only reported
//	-sim-replay              run each seed twice, compare hashes
//	-sim-workload=core       node API clients instead of kgo (triage)
//
// # One seed
//
// The seed decides, through sub-seeds hashed from (seed, name) (subSeed):
// the topology (1, 3 or 5 nodes, topics, partitions, replication factor,
// snapshot interval, number of producers, readers and group consumers), the
// swarm (a weight per fault kind, some zero, and the mean gap), every
// lane's fault schedule at planned offsets of the fault phase, per-node
// clock offset and drift, the base link latency, crash-image choices
// (diskio.Sim), link decisions (netio.Sim), every client's choices, and
// dragonboat's election jitter (reseedDragonboat replaces the source of
// lni/goutils/random.LockGuardedRand through a layout-checked unsafe cast).
// Nothing reads wall time or global randomness.
//
// # A schedule
//
//  1. setup: nodes start, topics are created, every partition gets a leader;
//  2. fault phase (-sim-duration): the workload runs while fault lanes
//     inject crashes by the crash model (netio.Crash, diskio.Freeze,
//     Broker.Shutdown, CrashImage with a drawn mode, restart on the image),
//     clean restarts (Broker.Shutdown, the SIGTERM path), pauses (a node
//     isolated without crashing), symmetric and one-way partitions between
//     brokers or between a broker and a client, flaky links (delay, jitter,
//     drop), and, in failpoint builds (make failpoint-test), failpoints
//     enabled for a seed-chosen count and window (lost produce answers,
//     failed shard starts, offset commits that fail after applying); a
//     leader sampler reads every node's Metadata;
//  3. heal: faults stop, every running node is power-cut at once and every
//     node restarts from its disk;
//  4. final check (bounded, 60 s virtual): every partition has a leader that
//     serves its log up to the highest acknowledged offset; then the
//     replicas' committed prefixes are compared (node.FetchLocal).
//
// The workload (workload_kgo_test.go): idempotent acks=all kgo producers
// with unique values "P<producer>.<seq>" and keys, on explicit partitions;
// direct readers of every partition from the start; group consumers with
// auto-commit (rebalances come from faults and session timeouts); a watcher
// of the group's committed offsets (kadm OffsetFetch); kadm admin
// operations (create, add partitions, delete topics of their own).
//
// # Checkers (history_test.go)
//
// Online, over every acknowledgement and every fetched partition: at most
// one value per (partition, offset) across all acks and reads; every value
// read was produced (no garbage, torn or flipped bytes served); nothing at
// or above the response's high watermark; per session (one client's fetches
// of one partition) the high watermark never goes back; the group's
// committed offsets never go back as one watcher observes them; at most one
// leader per (partition, term) over every node's Metadata. After heal: no
// acknowledged record lost (and each at its acknowledged offset); no value
// twice (idempotence); each producer's records in sequence order within a
// partition; replicas identical below the high watermark.
//
// # Output
//
// Every schedule logs its topology, counts and two hashes: the canonical
// trace hash (all events sorted by virtual time, kind, text) and the
// schedule hash (topology and fault schedule only). A failure prints the
// violations, the trace path under sim/traces/ (gitignored), the nodes'
// warning log and "reproduce: make sim SEED=N". TestSim ends with
// schedules per minute and the simulated-to-wall time ratio.
//
// # Determinism
//
// The schedule hash reproduces for every seed (checked by -sim-replay).
// The full trace does not: goroutine wake order inside the bubble (the
// runtime's select choice among ready cases, shared random streams such as
// dragonboat's jitter and netio's per-link stream drawn in the order
// goroutines reach them) differs between runs, so which node wins an
// election or which request lands first can change. A failing seed
// therefore replays its topology and faults exactly, but not always its
// interleaving; run it a few times.
//
// # Not injected, and why
//
//   - Disk errors, ENOSPC and read bit flips: dragonboat fail-stops on a
//     storage error by panicking on a worker goroutine, which ends the
//     whole test process; a worker that exits instead leaves
//     NodeHost.Close waiting forever. Containing it needs one OS process
//     per node or a dragonboat change. A dragonboat panic during a run
//     writes the trace first (failstop_test.go).
//   - Slow disk (diskio Latency): dragonboat applies entries while holding
//     its state machine's sync.RWMutex; a sleep there blocks another
//     goroutine on the mutex, which is not durably blocked, so virtual time
//     never advances (wall-clock hang).
//
// # The simulator can fail
//
// TestSimCatchesEarlyAck runs node.Config.UnsafeAckBeforeApply (a
// test-only broken variant that acknowledges before commit) and requires
// the checkers to flag it within 10 seeds. TestSimRaftCrash is the earlier
// proof that dragonboat runs in a bubble on the simulated seams.
package sim
