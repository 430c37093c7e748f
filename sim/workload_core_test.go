package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/node"
)

// Bounds of the workload.
const (
	requestTimeout   = 2 * time.Second
	retryBackoff     = 50 * time.Millisecond
	batchRecordsMax  = 4
	fetchBytesMax    = 64 << 10
	metadataInterval = 100 * time.Millisecond
)

// leaderOf asks the running nodes' Metadata, in the order rng draws, for
// at's leader; it returns the leader's node if it is running.
func leaderOf(ctx context.Context, c *cluster, rng *rand.Rand, at tp) *node.Node {
	up := c.up()
	rng.Shuffle(len(up), func(i, j int) { up[i], up[j] = up[j], up[i] })
	for _, id := range up {
		b := c.broker(id)
		if b == nil {
			continue
		}
		mctx, cancel := context.WithTimeout(ctx, requestTimeout)
		v := b.Node.Metadata(mctx, []string{at.topic})
		cancel()
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				if p.Partition == at.part && p.Leader > 0 {
					if lb := c.broker(uint64(p.Leader)); lb != nil {
						return lb.Node
					}
				}
			}
		}
	}
	return nil
}

// sleepCtx sleeps d of virtual time unless ctx ends first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// coreProducer is an idempotent acks=all producer on the core API
// (node.Produce): one batch in flight, retried with the same sequence
// numbers until acknowledged, so the partition's producer table must
// deduplicate retries that did commit.
func coreProducer(ctx context.Context, c *cluster, h *history, idx int, tps []tp) {
	rng := newRand(c.seed, fmt.Sprintf("producer-%d", idx))
	name := fmt.Sprintf("P%d", idx)
	var pid int64 = -1
	var epoch int16
	for pid < 0 {
		for _, id := range c.up() {
			if b := c.broker(id); b != nil {
				rctx, cancel := context.WithTimeout(ctx, requestTimeout)
				p, e, code := b.Node.InitProducerID(rctx)
				cancel()
				if code == 0 {
					pid, epoch = p, e
					break
				}
			}
		}
		if pid < 0 && !sleepCtx(ctx, retryBackoff) {
			return
		}
	}
	seqs := map[tp]int32{}
	var next int64
	for ctx.Err() == nil {
		at := tps[rng.IntN(len(tps))]
		n := 1 + rng.IntN(batchRecordsMax)
		keys, vals := make([][]byte, n), make([][]byte, n)
		values := make([]string, n)
		for i := range n {
			values[i] = value(idx, next)
			next++
			keys[i] = []byte(fmt.Sprintf("k%d", rng.IntN(16)))
			vals[i] = []byte(values[i])
		}
		h.produce(values)
		batch := encodeBatch(pid, epoch, seqs[at], keys, vals, time.Now().UnixMilli())
		for ctx.Err() == nil {
			n := leaderOf(ctx, c, rng, at)
			if n == nil {
				sleepCtx(ctx, retryBackoff)
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, requestTimeout)
			res := n.Produce(pctx, at.topic, at.part, batch)
			cancel()
			if res.ErrorCode == 0 {
				h.ack(name, at, res.BaseOffset, values)
				break
			}
			if res.ErrorCode == kerr.OutOfOrderSequenceNumber.Code || res.ErrorCode == kerr.InvalidProducerEpoch.Code {
				h.violate("%s %s: produce answered %v for a retried in-order batch", name, at, kerr.ErrorForCode(res.ErrorCode))
				return
			}
			sleepCtx(ctx, retryBackoff)
		}
		seqs[at] += int32(n)
		sleepCtx(ctx, time.Duration(rng.IntN(20))*time.Millisecond)
	}
}

// coreReader reads every partition from the start through node.Fetch on
// the leader, round robin.
func coreReader(ctx context.Context, c *cluster, h *history, idx int, tps []tp) {
	rng := newRand(c.seed, fmt.Sprintf("reader-%d", idx))
	session := fmt.Sprintf("R%d", idx)
	pos := map[tp]int64{}
	for ctx.Err() == nil {
		for _, at := range tps {
			n := leaderOf(ctx, c, rng, at)
			if n == nil {
				continue
			}
			fctx, cancel := context.WithTimeout(ctx, requestTimeout)
			res := n.Fetch(fctx, at.topic, at.part, pos[at], fetchBytesMax)
			cancel()
			if res.ErrorCode == kerr.OffsetOutOfRange.Code && res.LogStartOffset > pos[at] {
				pos[at] = res.LogStartOffset // retention deleted what was next
				continue
			}
			if res.ErrorCode != 0 {
				continue
			}
			recs, err := decodeBatches(res.Records)
			if err != nil {
				h.violate("%s %s offset %d: served an undecodable batch: %v", session, at, pos[at], err)
			}
			h.read(session, at, recs, res.HighWatermark, res.LogStartOffset)
			if len(recs) > 0 {
				pos[at] = recs[len(recs)-1].offset + 1
			}
		}
		sleepCtx(ctx, time.Duration(5+rng.IntN(50))*time.Millisecond)
	}
}

// leaderSampler asks every running node's Metadata for every topic and
// records (partition, term, leader); it traces leader changes.
func leaderSampler(ctx context.Context, c *cluster, h *history) {
	last := map[tp][2]int32{}
	for sleepCtx(ctx, metadataInterval) {
		for _, id := range c.up() {
			b := c.broker(id)
			if b == nil {
				continue
			}
			mctx, cancel := context.WithTimeout(ctx, requestTimeout)
			v := b.Node.Metadata(mctx, nil)
			cancel()
			for _, t := range v.Topics {
				for _, p := range t.Partitions {
					at := tp{t.Name, p.Partition}
					h.leader(at, p.LeaderEpoch, p.Leader, id)
					if p.Leader > 0 && id == uint64(p.Leader) && last[at] != [2]int32{p.Leader, p.LeaderEpoch} {
						last[at] = [2]int32{p.Leader, p.LeaderEpoch}
						c.tr.add(evLeader, "%s leader b%d epoch %d", at, p.Leader, p.LeaderEpoch)
					}
				}
			}
		}
	}
}

// coreWorkload runs producers and readers on the core API (node.Produce,
// node.Fetch) and admin operations through node: the workload before the
// Kafka handlers existed, kept for checking the checkers without a client.
func coreWorkload(ctx context.Context, c *cluster, h *history, tps []tp, wg *sync.WaitGroup) {
	goRun := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	for i := range c.topo.producers {
		goRun(func() { coreProducer(ctx, c, h, i, tps) })
	}
	for i := range c.topo.readers {
		goRun(func() { coreReader(ctx, c, h, i, tps) })
	}
	goRun(func() { admin(ctx, c) })
}
