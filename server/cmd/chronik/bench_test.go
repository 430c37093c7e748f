package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkKafka is the end-to-end benchmark: real kgo clients against the
// chronik binary run as separate processes (one node, and three nodes on
// loopback), beside the same load in the same run against franz-go's fake
// cluster (kfake, in-process, one broker) with a data directory (page cache
// only) and with SyncWrites (fsync per produce).
//
//	go test -run '^$' -bench Kafka -benchtime=200000x ./server/cmd/chronik
//
// (about 100 s: 200 MB per throughput run, 10 s per latency run; -bench
// 'Kafka/chronik-1node' runs one target). Record values are distinct
// random bytes, so kgo's default snappy compression gains nothing.
//
// Per target, two sub-benchmarks:
//
//   - produce-consume: TWO acks=all idempotent producers (kgo defaults)
//     write min(b.N, benchMaxRecords) 1 KiB records with async Produce,
//     each with at most benchInflight records buffered, to a fresh topic
//     of 8 partitions; then one consumer reads everything back. Reports
//     produce-MB/s, produce-rec/s and consume-MB/s (MB = 1e6 bytes of
//     record values); ns/op is produce time per record.
//   - latency-10k: one producer offers exactly 10,000 records/s (a batch
//     every millisecond, topped up to the schedule) for min(b.N,
//     benchMaxLatencyRecords) records and reports p50-ms, p99-ms and
//     max-ms of produce latency (promise callback time minus Produce call
//     time). The producer runs with ProducerLinger(0), so the figures are
//     the broker's and the network's, not the client's batching delay.
//   - latency-10k-linger10ms: the same with kgo's default 10 ms linger,
//     which dominates the latency of every target at this rate.
//
// kfake runs inside the benchmark process, so it shares the clients' CPU
// (and saves a loopback hop); chronik runs as separate processes. To
// profile a broker, `perf record -g -p PID` one of the chronik processes
// (children of the test binary) during a run; the binary has no pprof
// endpoint.
//
// The goals (one node, acks=all: produce >= 2x kfake-with-SyncWrites and
// >= kfake-without-sync; p99 <= 3 ms at 10,000 records/s) are printed in a
// summary at the end, never asserted: the machine may be shared.
func BenchmarkKafka(b *testing.B) {
	results := &benchResults{m: map[string]*benchResult{}}
	targets := []struct {
		name  string
		start func(testing.TB) []string
	}{
		{"chronik-1node", startChronik1},
		{"chronik-3nodes", startChronik3},
		{"kfake-pagecache", func(tb testing.TB) []string { return startKfake(tb, false) }},
		{"kfake-syncwrites", func(tb testing.TB) []string { return startKfake(tb, true) }},
	}
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			seeds := tg.start(b)
			b.Run("produce-consume", func(b *testing.B) { benchThroughput(b, seeds, results.get(tg.name)) })
			b.Run("latency-10k", func(b *testing.B) {
				benchLatency(b, seeds, results.get(tg.name).setLatency, kgo.ProducerLinger(0))
			})
			b.Run("latency-10k-linger10ms", func(b *testing.B) {
				benchLatency(b, seeds, results.get(tg.name).setLatencyLinger)
			})
		})
	}
	// b.Log of a benchmark with sub-benchmarks is shown only with -v.
	fmt.Print(results.summary([]string{"chronik-1node", "chronik-3nodes", "kfake-pagecache", "kfake-syncwrites"}))
}

const (
	benchRecordBytes       = 1024
	benchPartitions        = 8
	benchProducers         = 2       // one kgo producer tops out near 420 MB/s of 1 KiB records
	benchInflight          = 8192    // records buffered per producer (kgo.MaxBufferedRecords)
	benchMaxRecords        = 1 << 20 // cap per produce-consume run: 1 GiB of values
	benchLatencyRate       = 10000   // records/s offered in latency-10k
	benchMaxLatencyRecords = 100000  // cap per latency run: 10 s
	benchRunTimeout        = 3 * time.Minute
)

// startChronik1 runs one `chronik serve` process and returns its Kafka
// address.
func startChronik1(tb testing.TB) []string {
	p := startProcess(tb, filepath.Join(tb.TempDir(), "data"))
	tb.Logf("chronik node 1 pid %d kafka %s", p.cmd.Process.Pid, p.kafka)
	return []string{p.kafka}
}

// startChronik3 runs a 3-node chronik cluster as three processes on
// loopback and returns their Kafka addresses once every node is ready.
func startChronik3(tb testing.TB) []string {
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
	var seeds []string
	for i, p := range ps {
		p.waitReady(tb)
		tb.Logf("chronik node %d pid %d kafka %s", i+1, p.cmd.Process.Pid, p.kafka)
		seeds = append(seeds, p.kafka)
	}
	return seeds
}

// startKfake runs a one-broker kfake cluster persisting to a data
// directory, fsyncing every produce if sync.
func startKfake(tb testing.TB, sync bool) []string {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(filepath.Join(tb.TempDir(), "kfake"))}
	if sync {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c.ListenAddrs()
}

var benchTopicSeq atomic.Int64

// newBenchTopic creates a fresh topic of benchPartitions partitions
// (default replication factor) and waits until every partition has a
// leader.
func newBenchTopic(tb testing.TB, ctx context.Context, seeds []string) string {
	tb.Helper()
	topic := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), benchTopicSeq.Add(1))
	cl := newBenchClient(tb, seeds)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for {
		resp, err := adm.CreateTopic(ctx, benchPartitions, -1, nil, topic)
		if err == nil && resp.Err == nil {
			break
		}
		if ctx.Err() != nil {
			tb.Fatalf("create topic %s: %v %v", topic, err, resp.Err)
		}
		time.Sleep(100 * time.Millisecond) // retry, bounded by ctx
	}
	for {
		td, err := adm.ListTopics(ctx, topic)
		if err == nil {
			t := td[topic]
			ok := t.Err == nil && len(t.Partitions) == benchPartitions
			for _, p := range t.Partitions {
				ok = ok && p.Err == nil && p.Leader >= 0
			}
			if ok {
				return topic
			}
		}
		if ctx.Err() != nil {
			tb.Fatalf("topic %s has no leaders: %v %+v", topic, err, td)
		}
		time.Sleep(50 * time.Millisecond) // poll, bounded by ctx
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

func benchThroughput(b *testing.B, seeds []string, res *benchResult) {
	ctx, cancel := context.WithTimeout(context.Background(), benchRunTimeout)
	defer cancel()
	topic := newBenchTopic(b, ctx, seeds)
	n := min(b.N, benchMaxRecords)
	benchValues() // not timed

	var producers []*kgo.Client
	for i := range benchProducers {
		cl := newBenchClient(b, seeds, kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(benchInflight))
		defer cl.Close()
		// Warm up: producer id, connections, partition metadata.
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: benchValue(i)}).FirstErr(); err != nil {
			b.Fatalf("warm-up produce: %v", err)
		}
		producers = append(producers, cl)
	}
	warm := benchProducers

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

	total := n + warm
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
	consume := time.Since(cstart)
	if got != total {
		b.Fatalf("consumed %d records, produced %d", got, total)
	}

	r := benchRun{
		records:    n,
		produceMBs: float64(n*benchRecordBytes) / 1e6 / produce.Seconds(),
		produceRPS: float64(n) / produce.Seconds(),
		consumeMBs: float64(bytes) / 1e6 / consume.Seconds(),
	}
	b.ReportMetric(float64(produce.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(r.produceMBs, "produce-MB/s")
	b.ReportMetric(r.produceRPS, "produce-rec/s")
	b.ReportMetric(r.consumeMBs, "consume-MB/s")
	res.setThroughput(r)
}

// benchLatency offers benchLatencyRate records/s from one producer
// configured with opts and reports produce latency percentiles.
func benchLatency(b *testing.B, seeds []string, set func(benchRun), opts ...kgo.Opt) {
	ctx, cancel := context.WithTimeout(context.Background(), benchRunTimeout)
	defer cancel()
	topic := newBenchTopic(b, ctx, seeds)
	n := min(b.N, benchMaxLatencyRecords)

	cl := newBenchClient(b, seeds, append([]kgo.Opt{kgo.DefaultProduceTopic(topic)}, opts...)...)
	defer cl.Close()
	for i := range benchPartitions { // warm up: producer id, connections, metadata
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: benchValue(i)}).FirstErr(); err != nil {
			b.Fatalf("warm-up produce: %v", err)
		}
	}

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
	b.ReportMetric(r.p50, "p50-ms")
	b.ReportMetric(r.p99, "p99-ms")
	b.ReportMetric(r.max, "max-ms")
	b.ReportMetric(offered, "offered-rec/s")
	set(r)
}
