package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The workload and its checker: one idempotent acks=all kgo producer
// (kgo's defaults) writes keyed records whose values carry a per-producer
// sequence number; the checker reads every partition back in full and
// compares against what was acknowledged.

const chaosProducerID = "p1"

func chaosValue(seq int64) string { return fmt.Sprintf("%s-%09d", chaosProducerID, seq) }

func chaosKey(seq int64) string { return fmt.Sprintf("k%03d", seq%97) }

func parseChaosValue(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, chaosProducerID+"-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return n, err == nil
}

type ackedRecord struct {
	partition int32
	offset    int64
}

// producerRun is the state of one producer: what was sent and what the
// broker acknowledged (value -> partition/offset from the ack).
type producerRun struct {
	produced atomic.Int64
	ackedN   atomic.Int64
	failedN  atomic.Int64

	mu       sync.Mutex
	acked    map[string]ackedRecord
	firstErr error
}

// runProducer produces at about rate records/s until stop is closed and at
// least min records were produced, then flushes within flushTimeout.
func runProducer(cl *kgo.Client, topic string, min int64, rate int, stop <-chan struct{}, flushTimeout time.Duration) (*producerRun, func() error) {
	pr := &producerRun{acked: map[string]ackedRecord{}}
	done := make(chan error, 1)
	go func() {
		const tick = 10 * time.Millisecond
		perTick := max(1, rate/int(time.Second/tick))
		tk := time.NewTicker(tick) // pacing of the load, not synchronisation
		defer tk.Stop()
		stopped := false
		var seq int64
		for !stopped || seq < min {
			if !stopped {
				select {
				case <-stop:
					stopped = true
				case <-tk.C:
				}
			}
			for i := 0; i < perTick && (!stopped || seq < min); i++ {
				v := chaosValue(seq)
				r := &kgo.Record{Topic: topic, Key: []byte(chaosKey(seq)), Value: []byte(v)}
				seq++
				pr.produced.Add(1)
				cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					if err != nil {
						pr.failedN.Add(1)
						pr.mu.Lock()
						if pr.firstErr == nil {
							pr.firstErr = err
						}
						pr.mu.Unlock()
						return
					}
					pr.mu.Lock()
					pr.acked[v] = ackedRecord{r.Partition, r.Offset}
					pr.mu.Unlock()
					pr.ackedN.Add(1)
				})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		if err := cl.Flush(ctx); err != nil {
			done <- fmt.Errorf("producer flush: %w (produced %d, acked %d, failed %d)", err, pr.produced.Load(), pr.ackedN.Load(), pr.failedN.Load())
			return
		}
		done <- nil
	}()
	return pr, func() error { return <-done }
}

// waitAcked polls until at least n records were acknowledged.
func (pr *producerRun) waitAcked(n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for pr.ackedN.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d records acknowledged within %v (failed %d, first error %v)", pr.ackedN.Load(), n, timeout, pr.failedN.Load(), pr.err())
		}
		time.Sleep(20 * time.Millisecond) // poll interval, bounded by the deadline
	}
	return nil
}

func (pr *producerRun) err() error {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.firstErr
}

// logRecord is one record read back from a partition.
type logRecord struct {
	offset int64
	key    string
	value  string
}

// readAll reads every partition of topic from the log start to the high
// watermark (as listed now), in offset order.
// listOffsets returns every partition's end offset and a start position,
// or the first error (including per-partition errors).
func listOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, map[int32]kgo.Offset, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, nil, fmt.Errorf("list start offsets: %w", err)
	}
	end := map[int32]int64{}
	offs := map[int32]kgo.Offset{}
	var ferr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("end offset of %d: %w", o.Partition, o.Err)
		}
		end[o.Partition] = o.Offset
	})
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("start offset of %d: %w", o.Partition, o.Err)
		}
		if o.Offset != 0 && ferr == nil {
			ferr = fmt.Errorf("partition %d starts at %d, not 0", o.Partition, o.Offset)
		}
		offs[o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	return end, offs, ferr
}

func readAll(ctx context.Context, seeds []string, topic string) (map[int32][]logRecord, map[int32]int64, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, nil, err
	}
	defer adm.Close()
	// Right after the faults a partition may still be electing a leader
	// (LEADER_NOT_AVAILABLE): retry the listing until it is clean or ctx
	// ends.
	var (
		end  map[int32]int64
		offs map[int32]kgo.Offset
	)
	for {
		var lerr error
		end, offs, lerr = listOffsets(ctx, kadm.NewClient(adm), topic)
		if lerr == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("%w (last: %v)", ctx.Err(), lerr)
		case <-time.After(200 * time.Millisecond): // backoff between listings
		}
	}
	out := map[int32][]logRecord{}
	remaining := 0
	for p, e := range end {
		out[p] = nil
		if e > 0 {
			remaining++
		}
	}
	if remaining == 0 {
		return out, end, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		kgo.MetadataMinAge(250*time.Millisecond), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	var ferr error
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, end, fmt.Errorf("reading back: %w (partitions not complete: %d)", ctx.Err(), remaining)
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("fetch partition %d: %w", p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= end[r.Partition] {
				return
			}
			out[r.Partition] = append(out[r.Partition], logRecord{r.Offset, string(r.Key), string(r.Value)})
			if r.Offset == end[r.Partition]-1 {
				remaining--
			}
		})
	}
	return out, end, ferr
}

// verdict is the outcome of one scenario's checks.
type verdict struct {
	acked, lost, duplicated, reordered   int
	moved, unknown, gaps, unackedPresent int
	examples                             []string
}

func (v *verdict) example(format string, args ...any) {
	if len(v.examples) < 10 {
		v.examples = append(v.examples, fmt.Sprintf(format, args...))
	}
}

func (v verdict) ok() bool {
	return v.lost == 0 && v.duplicated == 0 && v.reordered == 0 && v.moved == 0 && v.unknown == 0 && v.gaps == 0
}

// check compares the log read back with the acknowledgements.
func check(pr *producerRun, log map[int32][]logRecord) verdict {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	v := verdict{acked: len(pr.acked)}
	type loc struct {
		p   int32
		off int64
	}
	seen := map[string][]loc{}
	parts := make([]int32, 0, len(log))
	for p := range log {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	for _, p := range parts {
		last := int64(-1)
		for i, r := range log[p] {
			if r.offset != int64(i) {
				v.gaps++
				v.example("partition %d: record %d has offset %d", p, i, r.offset)
			}
			seq, ok := parseChaosValue(r.value)
			if !ok || r.key != chaosKey(seq) {
				v.unknown++
				v.example("partition %d offset %d: unexpected record key=%q value=%q", p, r.offset, r.key, r.value)
				continue
			}
			seen[r.value] = append(seen[r.value], loc{p, r.offset})
			if seq <= last {
				v.reordered++
				v.example("partition %d offset %d: seq %d after seq %d", p, r.offset, seq, last)
			}
			last = max(last, seq)
		}
	}
	for val, locs := range seen {
		if len(locs) > 1 {
			v.duplicated += len(locs) - 1
			v.example("%s present %d times: %v", val, len(locs), locs)
		}
		if _, ok := pr.acked[val]; !ok {
			v.unackedPresent++
		}
	}
	for val, a := range pr.acked {
		locs := seen[val]
		if len(locs) == 0 {
			v.lost++
			v.example("acknowledged %s (partition %d offset %d) missing", val, a.partition, a.offset)
			continue
		}
		if locs[0].p != a.partition || locs[0].off != a.offset {
			v.moved++
			v.example("%s acknowledged at partition %d offset %d, found at %v", val, a.partition, a.offset, locs[0])
		}
	}
	sort.Strings(v.examples)
	return v
}
