package server

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPooledBuffersReadBackIdentical: a produce's request frame, its Raft
// proposal, the WAL's record buffer and plog's frame buffer are all reused
// from pools once released. Were any reused while still referenced, a
// later request's bytes would land in an earlier record. A real client
// produces records of varied sizes and contents with several requests in
// flight to 4 partitions; every record read back must be the one sent.
func TestPooledBuffersReadBackIdentical(t *testing.T) {
	c := startCluster(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 4*testWait)
	defer cancel()
	const topic, parts, records = "pooled", 4, 3000
	if _, err := kadm.NewClient(c.client()).CreateTopic(ctx, parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	value := func(i int) []byte {
		b := make([]byte, 1+(i*7919)%5000)
		for j := range b {
			b[j] = byte(i*13 + j*7)
		}
		return b
	}
	// Idempotent (kgo's default), several produce requests in flight, no
	// compression: the bytes on the wire are the values themselves.
	p := c.client(kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(0), kgo.ProducerBatchMaxBytes(64<<10))
	for i := range records {
		r := &kgo.Record{Key: fmt.Appendf(nil, "%d", i), Value: value(i), Partition: int32(i % parts)}
		p.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %d: %v", i, err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cons := c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[int]bool{}
	for len(seen) < records && ctx.Err() == nil {
		fs := cons.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 && ctx.Err() == nil {
			t.Fatalf("fetch: %v", errs)
		}
		for _, r := range fs.Records() {
			var i int
			if _, err := fmt.Sscanf(string(r.Key), "%d", &i); err != nil || i < 0 || i >= records {
				t.Fatalf("record with key %q", r.Key)
			}
			if !bytes.Equal(r.Value, value(i)) {
				t.Fatalf("record %d (partition %d offset %d): value differs from the one produced", i, r.Partition, r.Offset)
			}
			seen[i] = true
		}
	}
	if len(seen) != records {
		t.Fatalf("read back %d of %d records", len(seen), records)
	}
}
