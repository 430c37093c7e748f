package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkKafka is the end-to-end benchmark: real kgo clients against the
// chronik binary run as separate processes (one node, and three nodes on
// loopback), beside the same load in the same run against franz-go's fake
// cluster (kfake, in-process, one broker): with BlackholeProduce (stores
// nothing: the ceiling a producer can reach on this machine), with a data
// directory (page cache only) and with SyncWrites (fsync per produce).
//
//	make bench   (go test -run '^$' -bench Kafka -benchtime 1x ./server/cmd/chronik)
//
// Sizes come from the environment, not from b.N (run it with -benchtime
// 1x): CHRONIK_BENCH_MB (payload per throughput run, default 256),
// CHRONIK_BENCH_LATENCY_S (seconds per latency run, default 5),
// CHRONIK_BENCH_RESTART_MB (MiB filled before the restart row, default
// 1024; the figure is for 10240; 0 skips), CHRONIK_BENCH_MANY_PARTITIONS
// (the many-partitions rows, default 0: skipped; 1000 is the
// issue's figure, and creating 1,000 partitions did not finish in 30
// minutes on 2 shared cores). The defaults take
// about 10 minutes on 2 shared cores. Record values are distinct random
// bytes, so kgo's default snappy compression gains nothing.
//
// Per target (sub-benchmarks; -bench 'Kafka/chronik-1node' runs one):
//
//   - produce-8p, produce-1p: TWO acks=all idempotent producers (kgo
//     defaults) write CHRONIK_BENCH_MB of 1 KiB records with async
//     Produce, each with at most benchInflight records buffered, to a
//     fresh topic of 8 (1) partitions; for produce-8p one consumer then
//     reads everything back. produce-MB/s (MB = 1e6 bytes of values).
//   - latency-10k-8p, latency-10k-1p: one producer offers exactly 10,000
//     records/s (a batch every millisecond, topped up to the schedule)
//     with ProducerLinger(0), so the figures are the broker's and the
//     network's, not the client's batching delay: p50, p99, max of
//     promise callback time minus Produce call time. For chronik the
//     per-stage breakdown (chronik_produce_stage_seconds and
//     chronik_raft_logdb_save_seconds, scraped from every node's /metrics
//     before and after the run) is printed.
//   - latency-10k-linger10ms: the same with kgo's default 10 ms linger,
//     which dominates the latency of every target at this rate.
//
// chronik-1node also runs, on a process of its own: crash-restart (fill
// CHRONIK_BENCH_RESTART_MB into 8 partitions, SIGKILL, start again, time
// until every partition has a leader), restart (then the same with
// SIGTERM, a clean stop), many-partitions (a topic of
// CHRONIK_BENCH_MANY_PARTITIONS partitions: produce MB/s and the process's
// peak RSS, VmHWM) and delete-restart (delete that topic, SIGTERM, time the
// restart until every remaining partition has a leader). Bytes on disk per
// payload byte is `du -sk` of chronik-1node's data directory across its
// produce-8p run over the payload bytes.
//
// kfake runs inside the benchmark process, so it shares the clients' CPU
// (and saves a loopback hop); chronik runs as separate processes. To
// profile the brokers, set CHRONIK_CPUPROFILE=/tmp/chronik-%d.pprof: each
// chronik process writes a CPU profile of its whole run there (%d: its
// pid) and is stopped with SIGTERM instead of SIGKILL so that it does;
// CHRONIK_MEMPROFILE the same for a heap profile written at the stop.
//
// The targets (benchGoals) are printed in a table at the end with
// met/missed, never asserted: the machine may be shared.
func BenchmarkKafka(b *testing.B) {
	results := &benchResults{m: map[string]*benchRun{}}
	targets := []struct {
		name  string
		start func(testing.TB) *benchTarget
	}{
		{"chronik-1node", startChronik1},
		{"chronik-3nodes", startChronik3},
		{"kfake-blackhole", func(tb testing.TB) *benchTarget { return startKfake(tb, kfake.BlackholeProduce()) }},
		{"kfake-pagecache", func(tb testing.TB) *benchTarget { return startKfake(tb) }},
		{"kfake-syncwrites", func(tb testing.TB) *benchTarget { return startKfake(tb, kfake.SyncWrites()) }},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			t := tg.start(b)
			blackhole := tg.name == "kfake-blackhole" // nothing to consume
			run := func(sub string, f func(b *testing.B) benchRun) {
				b.Run(sub, func(b *testing.B) { results.set(tg.name+"/"+sub, f(b)) })
			}
			run("produce-8p", func(b *testing.B) benchRun { return benchThroughput(b, t, 8, !blackhole) })
			run("produce-1p", func(b *testing.B) benchRun { return benchThroughput(b, t, 1, false) })
			if blackhole {
				return
			}
			run("latency-10k-8p", func(b *testing.B) benchRun { return benchLatency(b, t, 8, kgo.ProducerLinger(0)) })
			run("latency-10k-1p", func(b *testing.B) benchRun { return benchLatency(b, t, 1, kgo.ProducerLinger(0)) })
			run("latency-10k-linger10ms", func(b *testing.B) benchRun { return benchLatency(b, t, 8) })
			if tg.name == "chronik-1node" {
				b.Run("restart", func(b *testing.B) { benchRestarts(b, results) })
			}
		})
	}
	// b.Log of a benchmark with sub-benchmarks is shown only with -v.
	fmt.Print(results.summary([]string{"chronik-1node", "chronik-3nodes", "kfake-blackhole", "kfake-pagecache", "kfake-syncwrites"}))
}

const (
	benchRecordBytes = 1024
	benchProducers   = 2    // one kgo producer tops out near 420 MB/s of 1 KiB records
	benchInflight    = 8192 // records buffered per producer (kgo.MaxBufferedRecords)
	benchLatencyRate = 10000
	benchRunTimeout  = 5 * time.Minute
)

// benchEnv reads an integer setting of the benchmark (see BenchmarkKafka).
func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= 0 {
		return v
	}
	return def
}

func benchRecords() int { return benchEnv("CHRONIK_BENCH_MB", 256) * 1e6 / benchRecordBytes }

// benchTarget is one system under test: its Kafka seeds and, for chronik,
// its processes (for /metrics) and the data directory of a single node.
type benchTarget struct {
	seeds   []string
	procs   []*process
	dataDir string
}

// startChronik1 runs one `chronik serve` process.
func startChronik1(tb testing.TB) *benchTarget {
	dir := filepath.Join(tb.TempDir(), "data")
	p := startProcess(tb, dir)
	tb.Logf("chronik node 1 pid %d kafka %s", p.cmd.Process.Pid, p.kafka)
	return &benchTarget{seeds: []string{p.kafka}, procs: []*process{p}, dataDir: dir}
}

// startChronik3 runs a 3-node chronik cluster as three processes on
// loopback, once every node is ready.
func startChronik3(tb testing.TB) *benchTarget {
	dir := tb.TempDir()
	raft := make([]string, 3)
	var peers []string
	for i := range raft {
		raft[i] = freePort(tb)
		peers = append(peers, fmt.Sprintf("%d=%s", i+1, raft[i]))
	}
	var ps []*process
	for i := range raft {
		id := strconv.Itoa(i + 1)
		ps = append(ps, launchProcess(tb, filepath.Join(dir, "n"+id),
			"--node-id", id, "--raft-addr", raft[i], "--peers", strings.Join(peers, ",")))
	}
	t := &benchTarget{procs: ps}
	for i, p := range ps {
		p.waitReady(tb)
		tb.Logf("chronik node %d pid %d kafka %s", i+1, p.cmd.Process.Pid, p.kafka)
		t.seeds = append(t.seeds, p.kafka)
	}
	return t
}

// startKfake runs a one-broker kfake cluster with a data directory (page
// cache only) and opts.
func startKfake(tb testing.TB, opts ...kfake.Opt) *benchTarget {
	opts = append([]kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(filepath.Join(tb.TempDir(), "kfake"))}, opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return &benchTarget{seeds: c.ListenAddrs()}
}

var benchTopicSeq atomic.Int64

// newBenchTopic creates a fresh topic of parts partitions (default
// replication factor) and waits until every partition has a leader.
func newBenchTopic(tb testing.TB, ctx context.Context, seeds []string, parts int) string {
	tb.Helper()
	topic := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), benchTopicSeq.Add(1))
	cl := newBenchClient(tb, seeds)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		resp, err := adm.CreateTopic(ctx, int32(parts), -1, nil, topic)
		// The name is this run's own: TOPIC_ALREADY_EXISTS is an earlier
		// attempt that timed out (1,000 partitions can take longer than
		// the request's 15 s) but went through.
		// (kadm returns the topic's error as err too.)
		if err == nil && resp.Err == nil || errors.Is(err, kerr.TopicAlreadyExists) || errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			break
		}
		if ctx.Err() != nil {
			tb.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
		}
		time.Sleep(100 * time.Millisecond) // retry, bounded by ctx
	}
	if err := waitBenchLeaders(ctx, cl, map[string]int{topic: parts}); err != nil {
		tb.Fatalf("topic %s: %v", topic, err)
	}
	return topic
}

// waitBenchLeaders polls Metadata until every partition of the topics (name:
// partition count) has a leader, or ctx is done. Each poll is a Metadata
// request to a broker: kadm's ListTopics answers from kgo's metadata cache
// (5 s, MetadataMinAge), which would be measured as the broker's delay.
func waitBenchLeaders(ctx context.Context, cl *kgo.Client, topics map[string]int) error {
	names := slices.Sorted(maps.Keys(topics))
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	for {
		resp, err := req.RequestWith(ctx, cl)
		ok := err == nil && len(resp.Topics) == len(names)
		if ok {
			for _, t := range resp.Topics {
				ok = ok && t.ErrorCode == 0 && t.Topic != nil && len(t.Partitions) == topics[*t.Topic]
				for _, p := range t.Partitions {
					ok = ok && p.ErrorCode == 0 && p.Leader >= 0
				}
			}
		}
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("partitions without a leader: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // poll, bounded by ctx
	}
}

func newBenchClient(tb testing.TB, seeds []string, opts ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.RecordDeliveryTimeout(benchRunTimeout)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return cl
}

// benchErrs counts failed records and keeps the first error.
type benchErrs struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (e *benchErrs) add(err error) {
	if e.n.Add(1) == 1 {
		e.mu.Lock()
		e.first = err
		e.mu.Unlock()
	}
}

func (e *benchErrs) check(tb testing.TB, what string) {
	tb.Helper()
	if n := e.n.Load(); n > 0 {
		e.mu.Lock()
		defer e.mu.Unlock()
		tb.Fatalf("%s: %d records failed, first: %v", what, n, e.first)
	}
}

// benchValues is a pool of distinct random (incompressible) record values:
// kgo compresses batches with snappy by default, and a batch of one
// repeated value would shrink to almost nothing on the wire and on disk.
// The pool (16 MiB) is far larger than a batch (1 MB at most by default),
// so no batch repeats a value.
var benchValues = sync.OnceValue(func() [][]byte {
	buf := make([]byte, 16<<20)
	_, _ = rand.Read(buf)
	vs := make([][]byte, len(buf)/benchRecordBytes)
	for i := range vs {
		vs[i] = buf[i*benchRecordBytes : (i+1)*benchRecordBytes : (i+1)*benchRecordBytes]
	}
	return vs
})

// benchValue returns the i-th value of the pool (cycling).
func benchValue(i int) []byte {
	vs := benchValues()
	return vs[i%len(vs)]
}

// benchThroughput produces benchRecords() records with benchProducers
// producers to a fresh topic of parts partitions and, if consume, reads
// them back.
func benchThroughput(b *testing.B, t *benchTarget, parts int, consume bool) benchRun {
	ctx, cancel := context.WithTimeout(context.Background(), benchRunTimeout)
	defer cancel()
	topic := newBenchTopic(b, ctx, t.seeds, parts)
	return benchProduce(b, ctx, t, topic, benchRecords(), consume)
}

// benchProduce is benchThroughput on an existing topic (n records).
func benchProduce(b *testing.B, ctx context.Context, t *benchTarget, topic string, n int, consume bool) benchRun {
	benchValues() // not timed
	var producers []*kgo.Client
	for i := range benchProducers {
		cl := newBenchClient(b, t.seeds, kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(benchInflight))
		defer cl.Close()
		// Warm up: producer id, connections, partition metadata.
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: benchValue(i)}).FirstErr(); err != nil {
			b.Fatalf("warm-up produce: %v", err)
		}
		producers = append(producers, cl)
	}
	warm := benchProducers
	duBefore := diskKiB(t.dataDir)
	stagesBefore := scrapeStages(t.procs)

	var errs benchErrs
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, cl := range producers {
		share := n / benchProducers
		if i < n%benchProducers {
			share++
		}
		wg.Go(func() {
			for j := range share {
				// Producers start at different places in the pool.
				cl.Produce(ctx, &kgo.Record{Value: benchValue(i*len(benchValues())/benchProducers + j)}, func(_ *kgo.Record, err error) {
					if err != nil {
						errs.add(err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				errs.add(err)
			}
		})
	}
	wg.Wait()
	produce := time.Since(start)
	b.StopTimer()
	errs.check(b, "produce")
	r := benchRun{
		records:     n,
		produceMBs:  float64(n*benchRecordBytes) / 1e6 / produce.Seconds(),
		produceRPS:  float64(n) / produce.Seconds(),
		diskPerByte: -1,
	}
	if stagesBefore != nil {
		r.stages = scrapeStages(t.procs).sub(stagesBefore)
	}
	if duAfter := diskKiB(t.dataDir); duBefore >= 0 && duAfter >= 0 {
		r.diskPerByte = float64(duAfter-duBefore) * 1024 / float64(n*benchRecordBytes)
	}
	b.ReportMetric(float64(produce.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(r.produceMBs, "produce-MB/s")
	b.ReportMetric(r.produceRPS, "produce-rec/s")
	if consume {
		r.consumeMBs = benchConsume(b, ctx, t.seeds, topic, n+warm)
		b.ReportMetric(r.consumeMBs, "consume-MB/s")
	}
	return r
}

// benchConsume reads total records of topic from the start and returns
// MB/s of values.
func benchConsume(b *testing.B, ctx context.Context, seeds []string, topic string, total int) float64 {
	cons := newBenchClient(b, seeds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cons.Close()
	cstart := time.Now()
	got, bytes := 0, 0
	for got < total {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatalf("consumed %d of %d records: %v", got, total, ctx.Err())
		}
		fs.EachError(func(t string, p int32, err error) { b.Fatalf("fetch %s/%d: %v", t, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got++; bytes += len(r.Value) })
	}
	if got != total {
		b.Fatalf("consumed %d records, produced %d", got, total)
	}
	return float64(bytes) / 1e6 / time.Since(cstart).Seconds()
}

// diskKiB is `du -sk dir` (allocated KiB), -1 if dir is "" or du fails.
func diskKiB(dir string) int64 {
	if dir == "" {
		return -1
	}
	// As du -sk (allocated blocks), but a file removed during the walk (the
	// WAL's unlinker, a segment roll) is skipped, not an error.
	var blocks int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			blocks += st.Blocks // 512-byte units
		}
		return nil
	})
	if err != nil {
		return -1
	}
	return blocks / 2
}

// benchLatency offers benchLatencyRate records/s from one producer
// configured with opts to a fresh topic of parts partitions and reports
// produce latency percentiles (and, for chronik, the stage breakdown).
func benchLatency(b *testing.B, t *benchTarget, parts int, opts ...kgo.Opt) benchRun {
	ctx, cancel := context.WithTimeout(context.Background(), benchRunTimeout)
	defer cancel()
	topic := newBenchTopic(b, ctx, t.seeds, parts)
	n := benchEnv("CHRONIK_BENCH_LATENCY_S", 5) * benchLatencyRate

	cl := newBenchClient(b, t.seeds, append([]kgo.Opt{kgo.DefaultProduceTopic(topic)}, opts...)...)
	defer cl.Close()
	for i := range max(parts, 8) { // warm up: producer id, connections, metadata
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: benchValue(i)}).FirstErr(); err != nil {
			b.Fatalf("warm-up produce: %v", err)
		}
	}
	before := scrapeStages(t.procs)

	lat := make([]time.Duration, n)
	var errs benchErrs
	var wg sync.WaitGroup
	wg.Add(n)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	start := time.Now()
	sent := 0
	for sent < n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			b.Fatalf("offered %d of %d records: %v", sent, n, ctx.Err())
		}
		// Top up to the schedule, so that late ticks do not lower the
		// offered rate.
		due := min(n, int(time.Since(start).Seconds()*benchLatencyRate)+1)
		for ; sent < due; sent++ {
			i, t0 := sent, time.Now()
			cl.Produce(ctx, &kgo.Record{Value: benchValue(i)}, func(_ *kgo.Record, err error) {
				lat[i] = time.Since(t0)
				if err != nil {
					errs.add(err)
				}
				wg.Done()
			})
		}
	}
	offered := float64(n) / time.Since(start).Seconds()
	wg.Wait() // bounded by RecordDeliveryTimeout and ctx
	b.StopTimer()
	errs.check(b, "produce")

	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r := benchRun{
		records: n,
		p50:     ms(lat[n*50/100]),
		p99:     ms(lat[min(n-1, n*99/100)]),
		max:     ms(lat[n-1]),
		offered: offered,
	}
	if before != nil {
		r.stages = scrapeStages(t.procs).sub(before)
	}
	b.ReportMetric(r.p50, "p50-ms")
	b.ReportMetric(r.p99, "p99-ms")
	b.ReportMetric(r.max, "max-ms")
	b.ReportMetric(offered, "offered-rec/s")
	return r
}
