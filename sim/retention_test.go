package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/chronik-go/chronik/core/meta"
)

// The retention lane: some seeds give some workload topics short retention
// and segment settings (retention.ms, segment.ms, retention.bytes), run the
// nodes' retention pass every 0.5-10 s, and change the settings mid-run
// through the controller. What it checks (history and finalCheck): the log
// start offset never goes back and never passes the high watermark as a
// session sees it, nothing below a log start already seen is served again,
// only retention topics ever move their log start, every acknowledged
// record at or above the final log start is still there, and every replica
// ends with the same log start.

// retentionPlan is what a seed draws for the lane (a random stream of its
// own, so the other draws of a seed stay as they were).
type retentionPlan struct {
	checkEvery time.Duration                 // node.Config.RetentionInterval; 0: the node's default
	topics     map[string][]meta.ConfigEntry // initial configs of the retention topics
	changeGap  time.Duration                 // mean gap between mid-run changes; 0: none
}

func drawRetention(seed int64, topics []topicSpec) retentionPlan {
	rng := newRand(seed, "retention")
	p := retentionPlan{topics: map[string][]meta.ConfigEntry{}}
	if rng.IntN(2) == 0 {
		return p
	}
	p.checkEvery = []time.Duration{500 * time.Millisecond, 2 * time.Second, 10 * time.Second}[rng.IntN(3)]
	for _, t := range topics {
		if rng.IntN(3) > 0 {
			p.topics[t.name] = drawRetentionConfigs(rng)
		}
	}
	if len(p.topics) > 0 && rng.IntN(2) == 0 {
		p.changeGap = time.Duration(2000+rng.IntN(6000)) * time.Millisecond
	}
	return p
}

// drawRetentionConfigs draws a retention topic's settings, sorted by key.
func drawRetentionConfigs(rng *rand.Rand) []meta.ConfigEntry {
	cs := []meta.ConfigEntry{
		{Key: "retention.ms", Value: []string{"1500", "4000", "10000", "-1"}[rng.IntN(4)]},
		{Key: "segment.ms", Value: []string{"300", "1000", "2500"}[rng.IntN(3)]},
	}
	if rng.IntN(2) == 0 {
		cs = append(cs, meta.ConfigEntry{Key: "retention.bytes", Value: []string{"2048", "16384"}[rng.IntN(2)]})
	}
	slices.SortFunc(cs, func(a, b meta.ConfigEntry) int { return strings.Compare(a.Key, b.Key) })
	return cs
}

func (p retentionPlan) String() string {
	if len(p.topics) == 0 {
		return "retention=off"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "retention: every=%v changes=%v", p.checkEvery, p.changeGap)
	for _, name := range sortedNames(p.topics) {
		fmt.Fprintf(&b, " %s%v", name, p.topics[name])
	}
	return b.String()
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// retentionChanger alters a retention topic's settings now and then
// through a running node (the controller replicates the change; every
// node applies it without a restart).
func retentionChanger(ctx context.Context, c *cluster) {
	p := c.topo.retention
	if p.changeGap == 0 {
		return
	}
	rng := newRand(c.seed, "retention-changes")
	names := sortedNames(p.topics)
	for sleepCtx(ctx, time.Duration(1+rng.Int64N(int64(2*p.changeGap)))) {
		name := names[rng.IntN(len(names))]
		cfgs := drawRetentionConfigs(rng)
		up := c.up()
		if len(up) == 0 {
			continue
		}
		b := c.broker(up[rng.IntN(len(up))])
		if b == nil {
			continue
		}
		ops := make([]meta.ConfigOp, 0, len(cfgs)+1)
		for _, e := range cfgs {
			ops = append(ops, meta.ConfigOp{Key: e.Key, Value: e.Value})
		}
		if len(cfgs) == 2 {
			ops = append(ops, meta.ConfigOp{Key: "retention.bytes", Op: meta.ConfigDelete})
		}
		actx, cancel := context.WithTimeout(ctx, requestTimeout)
		r := b.Node.AlterConfigs(actx, []meta.AlterConfigs{{Topic: name, Ops: ops}})[0]
		cancel()
		c.tr.add(evAdmin, "retention %s %v: code=%d", name, cfgs, r.ErrorCode)
	}
}
