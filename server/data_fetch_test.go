package server

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

func fetchOne(t testing.TB, addr string, req *kmsg.FetchRequest) (*kmsg.FetchResponse, kmsg.FetchResponseTopicPartition) {
	t.Helper()
	resp := rawRoundTrip(t, addr, req).(*kmsg.FetchResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch v%d: %+v", req.Version, resp)
	}
	return resp, resp.Topics[0].Partitions[0]
}

func (c *testCluster) topicID(topic string) [16]byte {
	c.t.Helper()
	id, ok := c.anyBroker().Node.TopicID(topic)
	if !ok {
		c.t.Fatalf("no id for %s", topic)
	}
	return id
}

func leaderEpoch(t testing.TB, c *testCluster, topic string, p int32) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	r := c.broker(c.leaderOf(topic, p)).Node.ListOffsets(ctx, topic, p, node.TimestampLatest)
	if r.ErrorCode != 0 {
		t.Fatalf("ListOffsets: %d", r.ErrorCode)
	}
	return r.LeaderEpoch
}

// testFetchVersions: every advertised Fetch version (4-16) reads the same
// batches with correct high watermark, LSO, log start, preferred replica
// and session id; v13+ by topic id.
func testFetchVersions(t *testing.T, c *testCluster) {
	topic := "fv"
	c.createTopic(topic, 1)
	addr := c.addrs[c.leaderOf(topic, 0)]
	for i := 0; i < 3; i++ {
		if p := rawProduce(t, addr, 9, -1, topic, 0, rawBatch(-1, 0, 0, "a", "b")); p.ErrorCode != 0 {
			t.Fatalf("produce: %+v", p)
		}
	}
	id := c.topicID(topic)
	epoch := leaderEpoch(t, c, topic, 0)
	for v := int16(4); v <= 16; v++ {
		spec := fetchSpec{topic: topic, offset: 0}
		if v >= 13 {
			spec = fetchSpec{topicID: id, offset: 0}
		}
		if v >= 9 {
			spec.leaderEpc = epoch
		}
		req := rawFetchReq(v, 100, 1, 1<<20, spec)
		resp, p := fetchOne(t, addr, req)
		if resp.ErrorCode != 0 || resp.SessionID != 0 || p.ErrorCode != 0 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		if v >= 13 && resp.Topics[0].TopicID != id {
			t.Fatalf("v%d: topic id %x", v, resp.Topics[0].TopicID)
		}
		if v < 13 && resp.Topics[0].Topic != topic {
			t.Fatalf("v%d: topic %q", v, resp.Topics[0].Topic)
		}
		if p.HighWatermark != 6 || p.LastStableOffset != 6 || p.AbortedTransactions != nil {
			t.Fatalf("v%d: hw %d lso %d", v, p.HighWatermark, p.LastStableOffset)
		}
		if v >= 5 && p.LogStartOffset != 0 {
			t.Fatalf("v%d: log start %d", v, p.LogStartOffset)
		}
		if v >= 11 && p.PreferredReadReplica != -1 {
			t.Fatalf("v%d: preferred read replica %d", v, p.PreferredReadReplica)
		}
		if got := batchBases(t, p.RecordBatches); len(got) != 3 || got[0] != 0 || got[1] != 2 || got[2] != 4 {
			t.Fatalf("v%d: batches at %v", v, got)
		}
		// At the high watermark there is no data: the record set must be
		// empty, not null (librdkafka fails on "MessageSetSize -1").
		spec.offset = 6
		if _, p := fetchOne(t, addr, rawFetchReq(v, 0, 0, 1<<20, spec)); p.ErrorCode != 0 || p.RecordBatches == nil || len(p.RecordBatches) != 0 {
			t.Fatalf("v%d: fetch at the high watermark: code %d, records %v (nil: %v), want empty and non-null", v, p.ErrorCode, p.RecordBatches, p.RecordBatches == nil)
		}
	}
}

// testFetchMidBatch: a fetch inside a batch returns the whole batch, and a
// kgo consumer starting there receives exactly the records from there on.
func testFetchMidBatch(t *testing.T, c *testCluster) {
	topic := "mid"
	c.createTopic(topic, 1)
	addr := c.addrs[c.leaderOf(topic, 0)]
	vals := []string{"r0", "r1", "r2", "r3", "r4"}
	if p := rawProduce(t, addr, 9, -1, topic, 0, rawBatch(-1, 0, 0, vals...)); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	if p := rawProduce(t, addr, 9, -1, topic, 0, rawBatch(-1, 0, 0, "r5")); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	_, p := fetchOne(t, addr, rawFetchReq(16, 0, 1, 1<<20, fetchSpec{topicID: c.topicID(topic), offset: 2}))
	if got := batchBases(t, p.RecordBatches); p.ErrorCode != 0 || len(got) != 2 || got[0] != 0 || got[1] != 5 {
		t.Fatalf("fetch at 2: code %d batches %v", p.ErrorCode, got)
	}
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(2)}}))
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 4 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d records", len(got))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		got = append(got, fs.Records()...)
	}
	for i, r := range got {
		if want := int64(i + 2); r.Offset != want || string(r.Value) != []string{"r2", "r3", "r4", "r5"}[i] {
			t.Fatalf("record %d: offset %d value %q", i, r.Offset, r.Value)
		}
	}
	if len(got) != 4 {
		t.Fatalf("%d records, want 4", len(got))
	}
}

// testFetchLongPoll: a fetch waiting (MaxWaitMillis 5000, MinBytes 1) at
// the end of the log returns as soon as a record is produced, with it;
// with nothing produced it returns empty at MaxWaitMillis with the right
// high watermark.
func testFetchLongPoll(t *testing.T, c *testCluster) {
	topic := "lp"
	c.createTopic(topic, 2)
	addr := c.addrs[c.leaderOf(topic, 1)]
	if p := rawProduce(t, addr, 9, -1, topic, 1, rawBatch(-1, 0, 0, "x")); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	id := c.topicID(topic)

	start := time.Now()
	_, p := fetchOne(t, addr, rawFetchReq(16, 300, 1, 1<<20, fetchSpec{topicID: id, part: 1, offset: 1}))
	if el := time.Since(start); p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 1 || el < 300*time.Millisecond {
		t.Fatalf("expiry: code %d hw %d %d bytes after %v", p.ErrorCode, p.HighWatermark, len(p.RecordBatches), el)
	}

	// MinBytes above what is there: the data comes back at MaxWaitMillis
	// (the wait does not spin on the partition that has some).
	start = time.Now()
	_, p = fetchOne(t, addr, rawFetchReq(16, 300, 1<<20, 1<<20, fetchSpec{topicID: id, part: 1, offset: 0}))
	if el := time.Since(start); p.ErrorCode != 0 || len(batchBases(t, p.RecordBatches)) != 1 || el < 300*time.Millisecond {
		t.Fatalf("MinBytes: code %d %d bytes after %v", p.ErrorCode, len(p.RecordBatches), el)
	}

	type result struct {
		p  kmsg.FetchResponseTopicPartition
		at time.Time
	}
	done := make(chan result, 1)
	start = time.Now()
	rc := dialRaw(t, addr)
	// Both partitions are requested: the one produced to is the second.
	rc.send(rawFetchReq(16, 5000, 1, 1<<20, fetchSpec{topicID: id, part: 0, offset: 0}, fetchSpec{topicID: id, part: 1, offset: 1}), 9)
	go func() {
		resp := readFetchResponse(t, rc, 16)
		done <- result{resp.Topics[1].Partitions[0], time.Now()}
	}()
	select {
	case r := <-done:
		t.Fatalf("fetch returned before any produce: %+v", r.p)
	default:
	}
	if p := rawProduce(t, addr, 9, -1, topic, 1, rawBatch(-1, 0, 0, "wake")); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	select {
	case r := <-done:
		if el := r.at.Sub(start); el >= 4*time.Second {
			t.Fatalf("long poll returned after %v", el)
		}
		if got := batchBases(t, r.p.RecordBatches); r.p.ErrorCode != 0 || len(got) != 1 || got[0] != 1 || r.p.HighWatermark != 2 {
			t.Fatalf("long poll: %+v batches %v", r.p, got)
		}
	case <-time.After(testWait):
		t.Fatal("long poll never returned")
	}
}

// readFetchResponse reads one Fetch response frame (flexible version) from
// rc. Safe to call from another goroutine than the test's (uses Error).
func readFetchResponse(t testing.TB, rc *rawConn, version int16) *kmsg.FetchResponse {
	var size [4]byte
	if _, err := readFull(rc, size[:]); err != nil {
		t.Error(err)
		return kmsg.NewPtrFetchResponse()
	}
	body := make([]byte, int(size[0])<<24|int(size[1])<<16|int(size[2])<<8|int(size[3]))
	if _, err := readFull(rc, body); err != nil {
		t.Error(err)
		return kmsg.NewPtrFetchResponse()
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	if err := resp.ReadFrom(body[5:]); err != nil { // correlation id + header tags
		t.Error(err)
	}
	if len(resp.Topics) < 2 {
		t.Errorf("fetch response %+v", resp)
		resp.Topics = make([]kmsg.FetchResponseTopic, 2)
		resp.Topics[1].Partitions = make([]kmsg.FetchResponseTopicPartition, 1)
	}
	return resp
}

func readFull(rc *rawConn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := rc.c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// testFetchErrors: sessions, unknown topic ids, leader-epoch fencing,
// follower fetches, offsets out of range, unknown partitions.
func testFetchErrors(t *testing.T, c *testCluster) {
	topic := "fe"
	c.createTopic(topic, 1)
	addr := c.addrs[c.leaderOf(topic, 0)]
	if p := rawProduce(t, addr, 9, -1, topic, 0, rawBatch(-1, 0, 0, "a")); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	id := c.topicID(topic)
	spec := fetchSpec{topicID: id}

	// An incremental fetch names a session we never created.
	req := rawFetchReq(16, 0, 1, 1<<20, spec)
	req.SessionID, req.SessionEpoch = 42, 3
	if resp := rawRoundTrip(t, addr, req).(*kmsg.FetchResponse); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || len(resp.Topics) != 0 {
		t.Fatalf("incremental fetch: %+v", resp)
	}
	// Closing (epoch -1) a session that does not exist is a sessionless
	// full fetch; forgotten topics do not matter to a full fetch.
	req = rawFetchReq(7, 0, 1, 1<<20, fetchSpec{topic: topic})
	req.SessionID, req.SessionEpoch = 42, -1
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.Partitions = topic, []int32{0}
	req.ForgottenTopics = append(req.ForgottenTopics, ft)
	if resp, p := fetchOne(t, addr, req); resp.ErrorCode != 0 || resp.SessionID != 0 || p.ErrorCode != 0 || p.HighWatermark != 1 || len(p.RecordBatches) == 0 {
		t.Fatalf("closing an unknown session: %+v", resp)
	}
	// Unknown topic id, unknown topic name, unknown partition.
	if _, p := fetchOne(t, addr, rawFetchReq(13, 0, 1, 1<<20, fetchSpec{topicID: [16]byte{9}})); p.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic id: %+v", p)
	}
	if _, p := fetchOne(t, addr, rawFetchReq(12, 0, 1, 1<<20, fetchSpec{topic: "nope"})); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", p)
	}
	if _, p := fetchOne(t, addr, rawFetchReq(16, 0, 1, 1<<20, fetchSpec{topicID: id, part: 3})); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %+v", p)
	}
	// Leader epoch fencing.
	epoch := leaderEpoch(t, c, topic, 0)
	if epoch < 1 { // Raft terms start at 1
		t.Fatalf("leader epoch %d", epoch)
	}
	if _, p := fetchOne(t, addr, rawFetchReq(16, 0, 1, 1<<20, fetchSpec{topicID: id, leaderEpc: epoch - 1})); p.ErrorCode != kerr.FencedLeaderEpoch.Code || len(p.RecordBatches) != 0 {
		t.Fatalf("older epoch: %+v", p)
	}
	if _, p := fetchOne(t, addr, rawFetchReq(9, 0, 1, 1<<20, fetchSpec{topic: topic, leaderEpc: epoch})); p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Fatalf("current epoch: %+v", p)
	}
	if _, p := fetchOne(t, addr, rawFetchReq(16, 0, 1, 1<<20, fetchSpec{topicID: id, leaderEpc: epoch + 1})); p.ErrorCode != kerr.UnknownLeaderEpoch.Code || len(p.RecordBatches) != 0 {
		t.Fatalf("newer epoch: %+v", p)
	}
	// Follower fetches are refused (v14 ReplicaID, v15+ ReplicaState).
	for _, v := range []int16{4, 14, 15} {
		req := rawFetchReq(v, 0, 1, 1<<20, fetchSpec{topic: topic, topicID: id})
		req.ReplicaID, req.ReplicaState.ID = 2, 2
		resp, p := fetchOne(t, addr, req)
		if p.ErrorCode != kerr.InvalidRequest.Code || (v >= 7 && resp.ErrorCode != kerr.InvalidRequest.Code) {
			t.Fatalf("v%d follower fetch: %+v", v, resp)
		}
	}
	// Offset out of range, with the high watermark.
	_, p := fetchOne(t, addr, rawFetchReq(16, 5000, 1, 1<<20, fetchSpec{topicID: id, offset: 100}))
	if p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 1 {
		t.Fatalf("out of range: %+v", p)
	}
}

// testFetchLimits: KIP-74. The first partition with data returns its
// first batch even above MaxBytes/PartitionMaxBytes; later partitions
// return nothing rather than exceed the limits.
func testFetchLimits(t *testing.T, c *testCluster) {
	topic := "lim"
	c.createTopic(topic, 2)
	id := c.topicID(topic)
	for p := int32(0); p < 2; p++ {
		addr := c.addrs[c.leaderOf(topic, p)]
		for i := 0; i < 2; i++ {
			if r := rawProduce(t, addr, 9, -1, topic, p, rawBatch(-1, 0, 0, "0123456789", "abcdefghij")); r.ErrorCode != 0 {
				t.Fatalf("produce: %+v", r)
			}
		}
	}
	addr := c.addrs[c.leaderOf(topic, 0)]
	one := fetchSpec{topicID: id, part: 0}
	two := fetchSpec{topicID: id, part: 1}
	// MaxBytes 1: one whole batch of partition 0, nothing of partition 1.
	resp := rawRoundTrip(t, addr, rawFetchReq(16, 0, 1, 1, one, two)).(*kmsg.FetchResponse)
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[1].Partitions[0]
	if got := batchBases(t, p0.RecordBatches); len(got) != 1 || got[0] != 0 || len(p1.RecordBatches) != 0 || p1.HighWatermark != 4 {
		t.Fatalf("MaxBytes 1: p0 %v, p1 %d bytes hw %d", got, len(p1.RecordBatches), p1.HighWatermark)
	}
	// PartitionMaxBytes 1: the same per partition.
	one.partMax, two.partMax = 1, 1
	resp = rawRoundTrip(t, addr, rawFetchReq(16, 0, 1, 1<<20, one, two)).(*kmsg.FetchResponse)
	p0, p1 = resp.Topics[0].Partitions[0], resp.Topics[1].Partitions[0]
	if got := batchBases(t, p0.RecordBatches); len(got) != 1 || len(p1.RecordBatches) != 0 {
		t.Fatalf("PartitionMaxBytes 1: p0 %v, p1 %d bytes", got, len(p1.RecordBatches))
	}
	// Generous limits: everything.
	one.partMax, two.partMax = 0, 0
	resp = rawRoundTrip(t, addr, rawFetchReq(16, 0, 1, 1<<20, one, two)).(*kmsg.FetchResponse)
	for i, tp := range resp.Topics {
		if got := batchBases(t, tp.Partitions[0].RecordBatches); len(got) != 2 {
			t.Fatalf("p%d: %v", i, got)
		}
	}
}
