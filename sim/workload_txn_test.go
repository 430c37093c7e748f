//go:build synctests

package sim

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The transactional workload (topology.txnProducers): a kgo producer with
// a transactional id runs transactions of 1-6 records on random workload
// partitions, committing about 2 in 3 and aborting the rest; after any
// error it closes its client and starts a new one with the same id (whose
// InitProducerId fences the old one and aborts what it left open). A
// read_committed reader reads every workload partition from the start.
// Checks: history_txn_test.go.

const txnTimeout = 5 * time.Second

func kgoTxnProducer(ctx context.Context, c *cluster, h *history, idx int, tps []tp) {
	rng := newRand(c.seed, fmt.Sprintf("txn-producer-%d", idx))
	name := fmt.Sprintf("T%d", idx)
	var cl *kgo.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	for txn := int64(0); ctx.Err() == nil; txn++ {
		if cl == nil {
			var err error
			cl, err = newClient(c, fmt.Sprintf("%s-%d", name, txn),
				kgo.TransactionalID(name),
				kgo.TransactionTimeout(txnTimeout),
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProduceRequestTimeout(3*time.Second),
				kgo.ProducerBatchCompression(kgo.NoCompression()),
			)
			if err != nil {
				h.violate("%s: kgo.NewClient: %v", name, err)
				return
			}
		}
		txnName := fmt.Sprintf("%s.%d", name, txn)
		recs, err := runTxn(ctx, cl, h, rng, idx, txn, tps)
		commit := err == nil && rng.IntN(3) != 0
		if err == nil {
			err = cl.EndTransaction(ctx, kgo.TransactionEndTry(commit))
		}
		switch {
		case err != nil:
			h.txnEnded(name, txnName, "unknown", recs)
			h.tr.add(evAck, "%s %s: %v", name, txnName, err)
			cl.Close()
			cl = nil
		case commit:
			h.txnEnded(name, txnName, "commit", recs)
		default:
			h.txnEnded(name, txnName, "abort", recs)
		}
		sleepCtx(ctx, time.Duration(5+rng.IntN(60))*time.Millisecond+time.Duration(rng.IntN(int(time.Millisecond))))
	}
}

// runTxn begins a transaction and produces its records, waiting for every
// promise; it returns where they went.
func runTxn(ctx context.Context, cl *kgo.Client, h *history, rng interface{ IntN(int) int }, idx int, txn int64, tps []tp) ([]txnRecord, error) {
	if err := cl.BeginTransaction(); err != nil {
		return nil, err
	}
	n := 1 + rng.IntN(6)
	var mu sync.Mutex
	var firstErr error
	recs := make([]txnRecord, n)
	var wg sync.WaitGroup
	for i := range n {
		at := tps[rng.IntN(len(tps))]
		v := txnValue(idx, txn, i)
		h.produce([]string{v})
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: at.topic, Partition: at.part, Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			recs[i] = txnRecord{at: tp{r.Topic, r.Partition}, offset: r.Offset, value: string(r.Value)}
		})
	}
	wg.Wait()
	return recs, firstErr
}

func kgoCommittedReader(ctx context.Context, c *cluster, h *history, tps []tp) {
	name := "RC0"
	parts := map[string]map[int32]kgo.Offset{}
	for _, at := range tps {
		if parts[at.topic] == nil {
			parts[at.topic] = map[int32]kgo.Offset{}
		}
		parts[at.topic][at.part] = kgo.NewOffset().AtStart()
	}
	cl, err := newClient(c, name, kgo.ConsumePartitions(parts), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		h.violate("%s: kgo.NewClient: %v", name, err)
		return
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		recordFetches(h, name, fs)
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err != nil && len(p.Records) == 0 {
				return
			}
			recs := make([]fetchedRecord, 0, len(p.Records))
			for _, r := range p.Records {
				recs = append(recs, fetchedRecord{offset: r.Offset, value: string(r.Value)})
			}
			h.readCommitted(name, tp{p.Topic, p.Partition}, recs, p.LastStableOffset)
		})
	}
}
