//go:build synctests

package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-go/chronik/netio"
)

// Bounds of the real-client workload.
const (
	producerInflightMax = 16 // records a producer has outstanding
	offsetPollInterval  = 250 * time.Millisecond
)

// kgoWorkload runs real franz-go clients over the simulated network:
// idempotent acks=all producers, direct readers of every partition from
// the start, group consumers that commit (workload_group_test.go), an
// OffsetFetch watcher of the group's commits, and admin operations
// through kadm.
func kgoWorkload(ctx context.Context, c *cluster, h *history, tps []tp, wg *sync.WaitGroup) {
	goRun := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	for i := range c.topo.producers {
		goRun(func() { kgoProducer(ctx, c, h, i, tps) })
	}
	for i := range c.topo.readers {
		goRun(func() { kgoReader(ctx, c, h, i, tps) })
	}
	for i := range c.topo.groupConsumers {
		goRun(func() { kgoGroupConsumer(ctx, c, h, i, tps) })
	}
	if c.topo.groupConsumers > 0 {
		goRun(func() { kgoOffsetWatcher(ctx, c, h, tps) })
	}
	goRun(func() { kgoAdmin(ctx, c) })
	for i := range c.topo.txnProducers {
		goRun(func() { kgoTxnProducer(ctx, c, h, i, tps) })
	}
	if c.topo.txnProducers > 0 {
		goRun(func() { kgoCommittedReader(ctx, c, h, tps) })
	}
}

// newClient is a kgo client on host "client-<name>" seeded with every
// broker, with timeouts scaled to the simulated cluster.
func newClient(c *cluster, name string, opts ...kgo.Opt) (*kgo.Client, error) {
	var seeds []string
	for _, id := range c.ids() {
		seeds = append(seeds, brokerAddr(id))
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.Dialer(netio.KgoDialer(c.host("client-" + name))),
		kgo.ClientID(name),
		kgo.DialTimeout(time.Second),
		kgo.RequestTimeoutOverhead(2 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.MetadataMaxAge(2 * time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
		kgo.RetryTimeout(5 * time.Second),
	}
	return kgo.NewClient(append(base, opts...)...)
}

func kgoProducer(ctx context.Context, c *cluster, h *history, idx int, tps []tp) {
	rng := newRand(c.seed, fmt.Sprintf("producer-%d", idx))
	name := fmt.Sprintf("P%d", idx)
	cl, err := newClient(c, name,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(time.Duration(rng.IntN(5))*time.Millisecond),
		kgo.ProduceRequestTimeout(3*time.Second),
		kgo.DefaultProduceTopic(tps[0].topic),
		// Uncompressed: the final check decodes batches itself.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
	if err != nil {
		h.violate("%s: kgo.NewClient: %v", name, err)
		return
	}
	defer cl.Close()
	sem := make(chan struct{}, producerInflightMax)
	var pending sync.WaitGroup
	defer pending.Wait()
	for seq := int64(0); ctx.Err() == nil; seq++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		at := tps[rng.IntN(len(tps))]
		v := value(idx, seq)
		h.produce([]string{v})
		r := &kgo.Record{Topic: at.topic, Partition: at.part, Key: []byte(fmt.Sprintf("k%d", rng.IntN(16))), Value: []byte(v)}
		pending.Add(1)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer pending.Done()
			<-sem
			if err == nil {
				h.ack(name, tp{r.Topic, r.Partition}, r.Offset, []string{string(r.Value)})
			}
		})
		// Off the millisecond grid (that linger, backoffs and the other
		// producers' pauses are on): a pause ending at the very instant a
		// linger timer fires would leave it to goroutine scheduling
		// whether the next record joins the batch.
		if d := rng.IntN(40); d > 0 {
			sleepCtx(ctx, time.Duration(d)*time.Millisecond+time.Duration(rng.IntN(int(time.Millisecond))))
		}
	}
}

// recordFetches feeds every fetched partition of fs into the history.
func recordFetches(h *history, session string, fs kgo.Fetches) {
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if p.Err != nil {
			// A partition error carries no broker answer (kgo also
			// reports connection failures this way, with HW 0).
			h.tr.add(evRead, "%s %s/%d fetch error: %v", session, p.Topic, p.Partition, p.Err)
			if len(p.Records) == 0 {
				return
			}
		}
		recs := make([]fetchedRecord, 0, len(p.Records))
		for _, r := range p.Records {
			recs = append(recs, fetchedRecord{offset: r.Offset, value: string(r.Value)})
		}
		h.read(session, tp{p.Topic, p.Partition}, recs, p.HighWatermark, p.LogStartOffset)
	})
}

func kgoReader(ctx context.Context, c *cluster, h *history, idx int, tps []tp) {
	name := fmt.Sprintf("R%d", idx)
	parts := map[string]map[int32]kgo.Offset{}
	for _, at := range tps {
		if parts[at.topic] == nil {
			parts[at.topic] = map[int32]kgo.Offset{}
		}
		parts[at.topic][at.part] = kgo.NewOffset().AtStart()
	}
	cl, err := newClient(c, name, kgo.ConsumePartitions(parts), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		h.violate("%s: kgo.NewClient: %v", name, err)
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		recordFetches(h, name, cl.PollFetches(ctx))
	}
}

func workloadTopics(tps []tp) []string {
	var out []string
	for _, at := range tps {
		if len(out) == 0 || out[len(out)-1] != at.topic {
			out = append(out, at.topic)
		}
	}
	return out
}

// kgoAdmin creates, grows and deletes topics of its own through kadm
// while faults run (topic names are never reused).
func kgoAdmin(ctx context.Context, c *cluster) {
	if c.topo.swarm.admin == 0 {
		return
	}
	rng := newRand(c.seed, "admin")
	cl, err := newClient(c, "admin")
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	step := func(what string, f func(ctx context.Context) error) bool {
		if !sleepCtx(ctx, time.Duration(500+rng.IntN(10000/c.topo.swarm.admin))*time.Millisecond) {
			return false
		}
		actx, cancel := context.WithTimeout(ctx, 3*requestTimeout)
		err := f(actx)
		cancel()
		c.tr.add(evAdmin, "%s: err=%v", what, err != nil)
		return true
	}
	for k := 0; ; k++ {
		name := fmt.Sprintf("adm%d", k)
		if !step("create "+name, func(ctx context.Context) error {
			r, err := adm.CreateTopic(ctx, int32(1+rng.IntN(2)), -1, nil, name)
			if err == nil {
				err = r.Err
			}
			return err
		}) {
			return
		}
		if !step("add partitions "+name, func(ctx context.Context) error {
			_, err := adm.CreatePartitions(ctx, 1, name)
			return err
		}) {
			return
		}
		if !step("delete "+name, func(ctx context.Context) error {
			_, err := adm.DeleteTopics(ctx, name)
			return err
		}) {
			return
		}
	}
}
