package main

import (
	"fmt"
	"strings"
	"sync"
)

// benchRun is one run's figures: throughput (produceMBs, produceRPS,
// consumeMBs) or latency (p50, p99, max in ms; offered records/s).
type benchRun struct {
	records                            int
	produceMBs, produceRPS, consumeMBs float64
	p50, p99, max, offered             float64
}

// benchResult keeps the last (largest b.N) run of each sub-benchmark of a
// target.
type benchResult struct {
	mu                                 sync.Mutex
	throughput, latency, latencyLinger benchRun
	haveThrough, haveLat, haveLinger   bool
}

func (r *benchResult) setThroughput(x benchRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.throughput, r.haveThrough = x, true
}

func (r *benchResult) setLatency(x benchRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latency, r.haveLat = x, true
}

func (r *benchResult) setLatencyLinger(x benchRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latencyLinger, r.haveLinger = x, true
}

type benchResults struct {
	mu sync.Mutex
	m  map[string]*benchResult
}

func (rs *benchResults) get(name string) *benchResult {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m[name] == nil {
		rs.m[name] = &benchResult{}
	}
	return rs.m[name]
}

// summary renders the figures side by side and the goals for one chronik
// node against kfake (printed, never asserted).
func (rs *benchResults) summary(order []string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-18s %9s %12s %11s %9s %9s %22s %14s\n", "target", "prod MB/s", "prod rec/s", "cons MB/s",
		"p50 ms", "p99 ms", "p50/p99 ms linger10ms", "(records)")
	cell := func(ok bool, v float64, f string) string {
		if !ok {
			return "-"
		}
		return fmt.Sprintf(f, v)
	}
	for _, name := range order {
		r := rs.get(name)
		r.mu.Lock()
		t, l, ll := r.throughput, r.latency, r.latencyLinger
		fmt.Fprintf(&sb, "%-18s %9s %12s %11s %9s %9s %22s %14s\n", name,
			cell(r.haveThrough, t.produceMBs, "%.1f"), cell(r.haveThrough, t.produceRPS, "%.0f"),
			cell(r.haveThrough, t.consumeMBs, "%.1f"), cell(r.haveLat, l.p50, "%.2f"), cell(r.haveLat, l.p99, "%.2f"),
			cell(r.haveLinger, ll.p50, "%.2f")+"/"+cell(r.haveLinger, ll.p99, "%.2f"),
			fmt.Sprintf("%d/%d", t.records, l.records))
		r.mu.Unlock()
	}
	c1, kp, ks := rs.get("chronik-1node"), rs.get("kfake-pagecache"), rs.get("kfake-syncwrites")
	goal := func(what string, have bool, ok bool) {
		state := "not measured"
		if have {
			state = map[bool]string{true: "met", false: "NOT met"}[ok]
		}
		fmt.Fprintf(&sb, "goal: %-55s %s\n", what, state)
	}
	goal("chronik-1node produce >= 2x kfake-syncwrites", c1.haveThrough && ks.haveThrough,
		c1.throughput.produceMBs >= 2*ks.throughput.produceMBs)
	goal("chronik-1node produce >= kfake-pagecache", c1.haveThrough && kp.haveThrough,
		c1.throughput.produceMBs >= kp.throughput.produceMBs)
	goal("chronik-1node p99 <= 3 ms at 10,000 records/s", c1.haveLat, c1.latency.p99 <= 3)
	return sb.String()
}
