package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronik-go/chronik/core/metric"
)

// benchStageOrder is the produce path's stages in order
// (chronik_produce_stage_seconds), then the Raft log's SaveRaftState
// (chronik_raft_logdb_save_seconds, "logdb-save" here: it runs inside
// "propose") and each fsync of the Raft log's files
// (chronik_raft_logdb_fsync_seconds, "logdb-fsync": inside logdb-save).
var benchStageOrder = []string{"queue", "frontend", "propose", "apply", "result", "answer", "logdb-save", "logdb-fsync"}

// stageSet is one scrape of the stage histograms, summed over nodes.
type stageSet map[string]metric.Snapshot

func (s stageSet) sub(earlier stageSet) stageSet {
	out := stageSet{}
	for k, v := range s {
		out[k] = v.Sub(earlier[k])
	}
	return out
}

// leIndex maps a scraped "le" label back to its bucket.
var leIndex = func() map[string]int {
	m := map[string]int{"+Inf": metric.BucketCount - 1}
	for i := range metric.BucketCount - 1 {
		m[fmt.Sprintf("%g", metric.BucketUpperSeconds(i))] = i
	}
	return m
}()

// scrapeStages reads the stage histograms of every process's /metrics and
// sums them; nil if procs is empty (kfake) or a scrape fails.
func scrapeStages(procs []*process) stageSet {
	if len(procs) == 0 {
		return nil
	}
	sum := stageSet{}
	for _, p := range procs {
		one, err := scrapeStagesOf(p.http)
		if err != nil {
			return nil
		}
		for k, v := range one {
			acc := sum[k]
			for i := range acc.Buckets {
				acc.Buckets[i] += v.Buckets[i]
			}
			acc.Count += v.Count
			acc.SumNs += v.SumNs
			sum[k] = acc
		}
	}
	return sum
}

func scrapeStagesOf(addr string) (stageSet, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	cum := map[string]*[metric.BucketCount]uint64{}
	seen := map[string]*[metric.BucketCount]bool{}
	sums := map[string]float64{}
	var entries uint64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		var stage, rest string
		switch {
		case strings.HasPrefix(line, "chronik_produce_stage_seconds_bucket{stage=\""):
			rest = strings.TrimPrefix(line, "chronik_produce_stage_seconds_bucket{stage=\"")
			i := strings.IndexByte(rest, '"')
			if i < 0 {
				continue
			}
			stage, rest = rest[:i], strings.TrimPrefix(rest[i+1:], ",")
		case strings.HasPrefix(line, "chronik_raft_logdb_save_seconds_bucket{"):
			stage, rest = "logdb-save", strings.TrimPrefix(line, "chronik_raft_logdb_save_seconds_bucket{")
		case strings.HasPrefix(line, "chronik_raft_logdb_fsync_seconds_bucket{"):
			stage, rest = "logdb-fsync", strings.TrimPrefix(line, "chronik_raft_logdb_fsync_seconds_bucket{")
		case strings.HasPrefix(line, "chronik_raft_logdb_entries_total "):
			// Not a histogram: kept as a count only.
			n, _ := strconv.ParseUint(strings.TrimPrefix(line, "chronik_raft_logdb_entries_total "), 10, 64)
			entries = n
			continue
		case strings.HasPrefix(line, "chronik_raft_logdb_fsync_seconds_sum "):
			sums["logdb-fsync"], _ = strconv.ParseFloat(strings.TrimPrefix(line, "chronik_raft_logdb_fsync_seconds_sum "), 64)
			continue
		case strings.HasPrefix(line, "chronik_produce_stage_seconds_sum{stage=\""):
			rest = strings.TrimPrefix(line, "chronik_produce_stage_seconds_sum{stage=\"")
			if i := strings.IndexByte(rest, '"'); i >= 0 {
				sums[rest[:i]], _ = strconv.ParseFloat(strings.TrimSpace(rest[strings.IndexByte(rest, '}')+1:]), 64)
			}
			continue
		case strings.HasPrefix(line, "chronik_raft_logdb_save_seconds_sum "):
			sums["logdb-save"], _ = strconv.ParseFloat(strings.TrimPrefix(line, "chronik_raft_logdb_save_seconds_sum "), 64)
			continue
		default:
			continue
		}
		// rest: le="X"} N
		if !strings.HasPrefix(rest, `le="`) {
			continue
		}
		rest = rest[len(`le="`):]
		q := strings.IndexByte(rest, '"')
		if q < 0 {
			continue
		}
		idx, ok := leIndex[rest[:q]]
		n, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(rest[q+1:], "}")), 10, 64)
		if !ok || err != nil {
			continue
		}
		if cum[stage] == nil {
			cum[stage], seen[stage] = new([metric.BucketCount]uint64), new([metric.BucketCount]bool)
		}
		cum[stage][idx], seen[stage][idx] = n, true
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	out := stageSet{}
	for stage, c := range cum {
		var s metric.Snapshot
		var prev uint64
		for i := range c {
			if !seen[stage][i] { // buckets after the last non-empty one are not written
				c[i] = prev
			}
			s.Buckets[i] = c[i] - prev
			prev = c[i]
		}
		s.Count, s.SumNs = prev, uint64(sums[stage]*1e9)
		out[stage] = s
	}
	out["logdb-entries"] = metric.Snapshot{Count: entries}
	return out, nil
}

// benchRestarts runs chronik-1node's restart rows on a process of its own
// (see BenchmarkKafka).
func benchRestarts(b *testing.B, rs *benchResults) {
	mib := benchEnv("CHRONIK_BENCH_RESTART_MB", 1024)
	many := benchEnv("CHRONIK_BENCH_MANY_PARTITIONS", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := filepath.Join(b.TempDir(), "data")
	raftAddr := freePort(b)
	p := startProcess(b, dir, "--raft-addr", raftAddr)
	target := func() *benchTarget {
		return &benchTarget{seeds: []string{p.kafka}, procs: []*process{p}, dataDir: dir}
	}
	topic := newBenchTopic(b, ctx, target().seeds, 8)
	keep := map[string]int{topic: 8}
	if mib > 0 {
		fill := benchProduce(b, ctx, target(), topic, mib<<20/benchRecordBytes, false)
		// First a crash (nothing snapshotted for the stop: the WAL's
		// budget is read back and replayed), then a clean stop.
		var d time.Duration
		p, d = restartTimed(b, ctx, p, dir, raftAddr, keep, syscall.SIGKILL)
		rs.set("chronik-1node/crash-restart", benchRun{records: mib << 20 / benchRecordBytes, restart: d, restartMiB: mib, diskPerByte: fill.diskPerByte})
		p, d = restartTimed(b, ctx, p, dir, raftAddr, keep, syscall.SIGTERM)
		rs.set("chronik-1node/restart", benchRun{records: mib << 20 / benchRecordBytes, restart: d, restartMiB: mib})
	}
	if many == 0 {
		return
	}
	cstart := time.Now()
	big := newBenchTopic(b, ctx, target().seeds, many)
	created := time.Since(cstart)
	r := benchProduce(b, ctx, target(), big, benchRecords(), false)
	r.hwmKiB, r.rssKiB = procMemKiB(p.cmd.Process.Pid)
	r.created, r.partitions = created, many
	rs.set("chronik-1node/many-partitions", r)

	cl := newBenchClient(b, target().seeds)
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopic(ctx, big); err != nil {
		b.Fatalf("delete %s: %v", big, err)
	}
	for { // wait until the topic is gone from Metadata
		td, err := adm.ListTopics(ctx, big)
		if err == nil && !td.Has(big) {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("topic %s not deleted: %v", big, err)
		}
		time.Sleep(50 * time.Millisecond) // poll, bounded by ctx
	}
	cl.Close()
	_, d := restartTimed(b, ctx, p, dir, raftAddr, keep, syscall.SIGTERM)
	rs.set("chronik-1node/delete-restart", benchRun{restart: d, partitions: many})
}

// restartTimed stops p with sig (SIGTERM: a clean stop; SIGKILL: a crash),
// starts it again on dir and the same Raft address, and returns the new
// process and the time from its start until every partition of topics has
// a leader.
func restartTimed(b *testing.B, ctx context.Context, p *process, dir, raftAddr string, topics map[string]int, sig syscall.Signal) (*process, time.Duration) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		b.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(2 * time.Minute):
		b.Fatalf("no exit within 2 minutes of %v", sig)
	}
	start := time.Now()
	np := launchProcess(b, dir, "--raft-addr", raftAddr)
	for { // the listener first: kgo backs off between failed dials
		c, err := net.DialTimeout("tcp", np.kafka, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("restarted node does not listen: %v\n%s", err, np.out.String())
		}
		time.Sleep(5 * time.Millisecond) // poll, bounded by ctx
	}
	cl := newBenchClient(b, []string{np.kafka})
	defer cl.Close()
	if err := waitBenchLeaders(ctx, cl, topics); err != nil {
		b.Fatalf("after restart: %v", err)
	}
	return np, time.Since(start)
}

// procMemKiB reads a process's peak and current resident set (VmHWM,
// VmRSS) from /proc; -1 where unknown.
func procMemKiB(pid int) (hwm, rss int64) {
	hwm, rss = -1, -1
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmHWM:":
			hwm = n
		case "VmRSS:":
			rss = n
		}
	}
	return
}
