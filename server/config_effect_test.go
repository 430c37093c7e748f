package server

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-go/chronik/core/node"
)

// The topic settings take effect, end to end with kgo and kadm against
// three nodes: each test sets a config through kadm and waits (bounded)
// on the outcome a client sees.

func startConfigCluster(t *testing.T) *testCluster {
	return startCluster(t, 3, func(cfg *node.Config) { cfg.RetentionInterval = 100 * time.Millisecond })
}

func produceValues(t *testing.T, cl *kgo.Client, topic string, n int, size int) {
	t.Helper()
	ctx := adminCtx(t)
	for i := range n {
		r := &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte{byte('a' + i%26)}, size)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d to %s: %v", i, topic, err)
		}
	}
}

// retention.ms set on a live topic deletes its old records on every
// replica: kadm's start offsets advance to the end, a consumer from the
// start gets only what was produced after, and every replica reports the
// same log start.
func TestRetentionTakesEffect(t *testing.T) {
	c := startConfigCluster(t)
	c.createTopic("r", 1)
	cl := c.client(kgo.DefaultProduceTopic("r"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	produceValues(t, cl, "r", 20, 100)

	ctx := adminCtx(t)
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "segment.ms", Value: strp("100")},
		{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("500")},
	}, "r")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %+v %v", ar, err)
	}
	eventually(t, testWait, func() bool {
		so, err := adm.ListStartOffsets(ctx, "r")
		if err != nil {
			return false
		}
		o, ok := so.Lookup("r", 0)
		return ok && o.Err == nil && o.Offset == 20
	}, "log start of r to reach 20")
	for id := uint64(1); id <= 3; id++ {
		eventually(t, testWait, func() bool {
			return c.broker(id).Node.FetchLocal("r", 0, 0, 1<<20).LogStartOffset == 20
		}, "replica on b%d to start at 20", id)
	}
	// Forever again: new records stay.
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("-1")}}, "r")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %+v %v", ar, err)
	}
	produceValues(t, cl, "r", 3, 10)
	cons := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"r": {0: kgo.NewOffset().At(0)}}))
	defer cons.Close()
	var got []int64
	for len(got) < 3 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %v before the deadline", got)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Offset) })
	}
	if got[0] != 20 || got[2] != 22 {
		t.Fatalf("consumed offsets %v, want 20..22 (0..19 deleted, the reset lands on the log start)", got)
	}
}

// max.message.bytes is the one limit: raised above the broker default, a
// larger batch is accepted and replicated; lowered, it is refused with
// MESSAGE_TOO_LARGE.
func TestMaxMessageBytesTakesEffect(t *testing.T) {
	c := startConfigCluster(t)
	c.createTopic("m", 1)
	cl := c.client(kgo.DefaultProduceTopic("m"), kgo.ProducerBatchMaxBytes(4<<20), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordRetries(2))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := adminCtx(t)
	big := &kgo.Record{Topic: "m", Value: bytes.Repeat([]byte("x"), 1_500_000)}
	if err := cl.ProduceSync(ctx, big).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("1.5 MB at the default limit: %v, want MESSAGE_TOO_LARGE", err)
	}
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("2000000")}}, "m")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %+v %v", ar, err)
	}
	for id := uint64(1); id <= 3; id++ {
		eventually(t, testWait, func() bool { return c.broker(id).Node.TopicSettingsOf("m").MaxMessageBytes == 2000000 }, "b%d to apply max.message.bytes=2000000", id)
	}
	big = &kgo.Record{Topic: "m", Value: bytes.Repeat([]byte("x"), 1_500_000)}
	if err := cl.ProduceSync(ctx, big).FirstErr(); err != nil {
		t.Fatalf("1.5 MB under max.message.bytes=2000000: %v", err)
	}
	for id := uint64(1); id <= 3; id++ {
		eventually(t, testWait, func() bool { return c.broker(id).Node.FetchLocal("m", 0, 0, 4<<20).HighWatermark == 1 }, "b%d to apply the large batch", id)
	}
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("1000")}}, "m")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %+v %v", ar, err)
	}
	// The alteration is acknowledged once the controller applied it; each
	// node applies it a moment later (a produce proposed before then is
	// checked against the earlier limit, as on Kafka before propagation).
	for id := uint64(1); id <= 3; id++ {
		eventually(t, testWait, func() bool { return c.broker(id).Node.TopicSettingsOf("m").MaxMessageBytes == 1000 }, "b%d to apply max.message.bytes=1000", id)
	}
	small := &kgo.Record{Topic: "m", Value: bytes.Repeat([]byte("y"), 2000)}
	if err := cl.ProduceSync(ctx, small).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("2 KB under max.message.bytes=1000: %v, want MESSAGE_TOO_LARGE", err)
	}
}

// message.timestamp.type=LogAppendTime: a consumer reads the broker's
// append time, not the producer's (kgo does not copy the produce answer's
// LogAppendTime onto the record; core/node's TestLogAppendTime checks the
// answer).
func TestLogAppendTimeTakesEffect(t *testing.T) {
	c := startConfigCluster(t)
	c.createTopic("lat", 1)
	cl := c.client(kgo.DefaultProduceTopic("lat"))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := adminCtx(t)
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: strp("LogAppendTime")}}, "lat")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %+v %v", ar, err)
	}
	created := time.Unix(1000, 0) // far from now: the broker's time must replace it
	before := time.Now().Add(-time.Second)
	r := &kgo.Record{Topic: "lat", Value: []byte("v"), Timestamp: created}
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(time.Second)
	cons := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"lat": {0: kgo.NewOffset().At(0)}}))
	defer cons.Close()
	for {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("nothing consumed before the deadline")
		}
		var got []*kgo.Record
		fs.EachRecord(func(x *kgo.Record) { got = append(got, x) })
		if len(got) == 0 {
			continue
		}
		if ts := got[0].Timestamp; ts.Before(before) || ts.After(after) || got[0].Attrs.TimestampType() != 1 {
			t.Fatalf("consumed timestamp %v type %d, want the append time in [%v, %v], type 1", ts, got[0].Attrs.TimestampType(), before, after)
		}
		return
	}
}

// A cluster-wide dynamic default (log.retention.ms on the BROKER resource
// "") governs a topic that sets nothing, on every node, without a restart.
func TestBrokerDefaultRetentionTakesEffect(t *testing.T) {
	c := startConfigCluster(t)
	c.createTopic("d", 1)
	cl := c.client(kgo.DefaultProduceTopic("d"))
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx := adminCtx(t)
	produceValues(t, cl, "d", 5, 10)
	br, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "log.roll.ms", Value: strp("100")},
		{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("300")},
	})
	if err != nil || br[0].Err != nil {
		t.Fatalf("alter broker default: %+v %v", br, err)
	}
	eventually(t, testWait, func() bool {
		so, err := adm.ListStartOffsets(ctx, "d")
		if err != nil {
			return false
		}
		o, ok := so.Lookup("d", 0)
		return ok && o.Err == nil && o.Offset == 5
	}, "log start of d to reach 5")
}
