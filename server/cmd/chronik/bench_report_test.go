package main

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// benchRun is one sub-benchmark's figures: throughput (produceMBs,
// produceRPS, consumeMBs, diskPerByte), latency (p50, p99, max in ms;
// offered records/s; the stage breakdown), restart time, memory.
type benchRun struct {
	records                            int
	produceMBs, produceRPS, consumeMBs float64
	diskPerByte                        float64 // du growth per payload byte; -1 unknown
	p50, p99, max, offered             float64
	stages                             stageSet
	restart                            time.Duration
	restartMiB                         int
	partitions                         int
	created                            time.Duration // topic creation until every partition led
	hwmKiB, rssKiB                     int64
}

// benchResults keeps each sub-benchmark's run, keyed "target/sub".
type benchResults struct {
	mu sync.Mutex
	m  map[string]*benchRun
}

func (rs *benchResults) set(key string, r benchRun) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.m[key] = &r
}

func (rs *benchResults) get(key string) (benchRun, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[key]
	if !ok {
		return benchRun{}, false
	}
	return *r, true
}

// summary renders the per-target figures, the stage breakdown of each
// chronik latency run, and the targets with met/missed (printed,
// never asserted).
func (rs *benchResults) summary(order []string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-18s %11s %11s %11s %17s %17s %17s\n", "target", "MB/s 8p", "MB/s 1p", "cons MB/s",
		"p50/p99 ms 8p", "p50/p99 ms 1p", "p50/p99 linger10")
	f := func(key string, v func(benchRun) string) string {
		if r, ok := rs.get(key); ok {
			return v(r)
		}
		return "-"
	}
	mbs := func(r benchRun) string { return fmt.Sprintf("%.1f", r.produceMBs) }
	lat := func(r benchRun) string { return fmt.Sprintf("%.2f/%.2f", r.p50, r.p99) }
	for _, name := range order {
		fmt.Fprintf(&sb, "%-18s %11s %11s %11s %17s %17s %17s\n", name,
			f(name+"/produce-8p", mbs), f(name+"/produce-1p", mbs),
			f(name+"/produce-8p", func(r benchRun) string {
				if r.consumeMBs == 0 {
					return "-"
				}
				return fmt.Sprintf("%.1f", r.consumeMBs)
			}),
			f(name+"/latency-10k-8p", lat), f(name+"/latency-10k-1p", lat), f(name+"/latency-10k-linger10ms", lat))
	}
	fmt.Fprintf(&sb, "(%d records of %d B per throughput run, CHRONIK_BENCH_MB; %d s per latency run, CHRONIK_BENCH_LATENCY_S; figures from 2 shared cores are noisy)\n",
		benchRecords(), benchRecordBytes, benchEnv("CHRONIK_BENCH_LATENCY_S", 5))
	rs.stageTable(&sb, order)
	rs.goalTable(&sb)
	return sb.String()
}

// stageTable prints p50/p99 (and mean) of each produce stage for every
// chronik throughput and latency run. Stage quantiles do not add up to the end-to-end
// ones: each is its own distribution.
func (rs *benchResults) stageTable(sb *strings.Builder, order []string) {
	fmt.Fprintf(sb, "\nproduce stages (ms, p50/p99/mean; summed over nodes; logdb-save (write+fsync, per SaveRaftState call) is inside propose, logdb-fsync (per fsync) inside logdb-save):\n")
	fmt.Fprintf(sb, "%-38s", "run")
	for _, s := range benchStageOrder {
		fmt.Fprintf(sb, " %17s", s)
	}
	sb.WriteString("\n")
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	for _, name := range order {
		for _, sub := range []string{"produce-8p", "produce-1p", "latency-10k-8p", "latency-10k-1p", "latency-10k-linger10ms"} {
			r, ok := rs.get(name + "/" + sub)
			if !ok || r.stages == nil {
				continue
			}
			fmt.Fprintf(sb, "%-38s", name+"/"+sub)
			for _, s := range benchStageOrder {
				h, ok := r.stages[s]
				if !ok || h.Count == 0 {
					fmt.Fprintf(sb, " %17s", "-")
					continue
				}
				fmt.Fprintf(sb, " %17s", fmt.Sprintf("%.2f/%.2f/%.2f", ms(h.Quantile(0.5)), ms(h.Quantile(0.99)), ms(h.Mean())))
			}
			if h := r.stages["propose"]; h.Count > 0 {
				fmt.Fprintf(sb, "  (%d produces, %d Raft entries, %d saves, %d fsyncs)", h.Count, r.stages["logdb-entries"].Count, r.stages["logdb-save"].Count, r.stages["logdb-fsync"].Count)
			}
			sb.WriteString("\n")
		}
	}
}

// goalTable prints issue 13's table: figure, measured, target, met/missed.
func (rs *benchResults) goalTable(sb *strings.Builder) {
	fmt.Fprintf(sb, "\nissue 13 targets (chronik-1node unless named; 1 KiB records, acks=all, kgo producer):\n")
	fmt.Fprintf(sb, "%-58s %-30s %-24s %s\n", "figure", "measured", "target", "verdict")
	row := func(figure, measured, target string, have, ok bool) {
		v := "not measured"
		if have {
			v = map[bool]string{true: "met", false: "MISSED"}[ok]
		} else {
			measured = "-"
		}
		fmt.Fprintf(sb, "%-58s %-30s %-24s %s\n", figure, measured, target, v)
	}
	c8, h8 := rs.get("chronik-1node/produce-8p")
	k8, hk8 := rs.get("kfake-blackhole/produce-8p")
	row("produce MB/s, 8 partitions", fmt.Sprintf("%.1f (%.2fx of %.1f)", c8.produceMBs, c8.produceMBs/k8.produceMBs, k8.produceMBs),
		">= 0.8x ceiling", h8 && hk8, c8.produceMBs >= 0.8*k8.produceMBs)
	c3, h3 := rs.get("chronik-3nodes/produce-8p")
	row("  (3 nodes) produce MB/s, 8 partitions", fmt.Sprintf("%.1f (%.2fx of %.1f)", c3.produceMBs, c3.produceMBs/k8.produceMBs, k8.produceMBs),
		">= 0.8x ceiling", h3 && hk8, c3.produceMBs >= 0.8*k8.produceMBs)
	c1, h1 := rs.get("chronik-1node/produce-1p")
	k1, hk1 := rs.get("kfake-blackhole/produce-1p")
	row("produce MB/s, 1 partition", fmt.Sprintf("%.1f (%.2fx of %.1f)", c1.produceMBs, c1.produceMBs/k1.produceMBs, k1.produceMBs),
		">= 0.5x ceiling", h1 && hk1, c1.produceMBs >= 0.5*k1.produceMBs)
	l8, hl8 := rs.get("chronik-1node/latency-10k-8p")
	row("p50 / p99 at 10,000 rec/s, 8 partitions", fmt.Sprintf("%.2f / %.2f ms", l8.p50, l8.p99), "p99 <= 2 ms", hl8, l8.p99 <= 2)
	l3, hl3 := rs.get("chronik-3nodes/latency-10k-8p")
	row("  (3 nodes) p50 / p99 at 10,000 rec/s, 8 partitions", fmt.Sprintf("%.2f / %.2f ms", l3.p50, l3.p99), "p99 <= 2 ms", hl3, l3.p99 <= 2)
	l1, hl1 := rs.get("chronik-1node/latency-10k-1p")
	row("p99 at 10,000 rec/s, 1 partition", fmt.Sprintf("%.2f ms (p50 %.2f)", l1.p99, l1.p50), "p99 <= 2 ms", hl1, l1.p99 <= 2)
	row("bytes on disk per payload byte (du across produce-8p)", fmt.Sprintf("%.2f", c8.diskPerByte), "<= 1.2", h8 && c8.diskPerByte >= 0, c8.diskPerByte <= 1.2)
	rr, hr := rs.get("chronik-1node/restart")
	kr, hk := rs.get("chronik-1node/crash-restart")
	row(fmt.Sprintf("  the same across the restart rows' fill, %.2f GiB", float64(kr.restartMiB)/1024), fmt.Sprintf("%.2f", kr.diskPerByte), "<= 1.2", hk && kr.diskPerByte >= 0, kr.diskPerByte <= 1.2)
	row(fmt.Sprintf("restart to every partition led, N = %.2f GiB payload", float64(rr.restartMiB)/1024), fmt.Sprintf("%.2f s", rr.restart.Seconds()),
		"< 2 s with 10 GiB", hr, rr.restart < 2*time.Second)
	row(fmt.Sprintf("  the same after kill -9 (Raft log replayed), N = %.2f GiB", float64(kr.restartMiB)/1024), fmt.Sprintf("%.2f s", kr.restart.Seconds()),
		"< 2 s with 10 GiB", hk, kr.restart < 2*time.Second)
	mp, hm := rs.get("chronik-1node/many-partitions")
	many := fmt.Sprint(mp.partitions)
	if !hm {
		many = "N" // not run
	}
	row(fmt.Sprintf("%s partitions on one node: produce MB/s", many), fmt.Sprintf("%.1f (%.2fx of 8p; created in %.1f s)", mp.produceMBs, mp.produceMBs/c8.produceMBs, mp.created.Seconds()),
		">= 0.8x the 8p figure", hm && h8, mp.produceMBs >= 0.8*c8.produceMBs)
	row(fmt.Sprintf("%s partitions on one node: peak RSS (VmHWM)", many), fmt.Sprintf("%.0f MiB (now %.0f MiB)", float64(mp.hwmKiB)/1024, float64(mp.rssKiB)/1024),
		"< 1 GiB", hm && mp.hwmKiB >= 0, mp.hwmKiB < 1<<20)
	dr, hd := rs.get("chronik-1node/delete-restart")
	row(fmt.Sprintf("restart after deleting a %s-partition topic", many), fmt.Sprintf("%.2f s", dr.restart.Seconds()), "< 2 s", hd, dr.restart < 2*time.Second)
	fmt.Fprintf(sb, "(restart rows: CHRONIK_BENCH_RESTART_MB=%d, CHRONIK_BENCH_MANY_PARTITIONS=%d; 0 skips them)\n",
		benchEnv("CHRONIK_BENCH_RESTART_MB", 1024), benchEnv("CHRONIK_BENCH_MANY_PARTITIONS", 0))
}
