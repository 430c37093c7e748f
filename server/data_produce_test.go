package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

var codecs = []struct {
	name  string
	codec kgo.CompressionCodec
}{
	{"none", kgo.NoCompression()},
	{"gzip", kgo.GzipCompression()},
	{"snappy", kgo.SnappyCompression()},
	{"lz4", kgo.Lz4Compression()},
	{"zstd", kgo.ZstdCompression()},
}

// testRoundTripCodecs: an idempotent acks=all kgo producer (the default)
// writes keyed records with headers to a 3-partition topic with each codec;
// a group-less consumer reads every one back exactly (batches pass through
// untouched, whatever the codec).
func testRoundTripCodecs(t *testing.T, c *testCluster) {
	for _, cd := range codecs {
		t.Run(cd.name, func(t *testing.T) {
			topic := "rt-" + cd.name
			c.createTopic(topic, 3)
			cl := c.client(kgo.ProducerBatchCompression(cd.codec), kgo.ProducerLinger(5*time.Millisecond))
			want := produceN(t, cl, topic, 300, cd.name)
			checkProduceOrder(t, want)
			parts := map[int32]bool{}
			for _, w := range want {
				parts[w.partition] = true
			}
			if len(parts) != 3 {
				t.Fatalf("records landed in %d partitions, want 3", len(parts))
			}
			consumeExactly(t, c, topic, 3, want)
		})
	}
}

// checkProduceOrder: within a partition, acknowledged offsets follow
// produce order.
func checkProduceOrder(t testing.TB, want []produced) {
	t.Helper()
	last := map[int32]int64{}
	for i, w := range want {
		if l, ok := last[w.partition]; ok && w.offset <= l {
			t.Fatalf("record %d: p%d offset %d after %d", i, w.partition, w.offset, l)
		}
		last[w.partition] = w.offset
	}
}

// testAcksZero: acks=0 gets no response (the next pipelined request's
// answer is the first to arrive), and kgo's acks=0 records arrive.
func testAcksZero(t *testing.T, c *testCluster) {
	topic := "acks0"
	c.createTopic(topic, 1)
	addr := c.addrs[c.leaderOf(topic, 0)]
	rc := dialRaw(t, addr)
	rc.send(rawProduceReq(9, 0, topic, 0, rawBatch(-1, 0, 0, "raw-a", "raw-b")), 100)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
	rc.send(av, 101)
	if corr := rc.readCorr(); corr != 101 {
		t.Fatalf("first response has correlation id %d, want 101 (acks=0 must not be answered)", corr)
	}

	cl := c.client(kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("noack-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The data arrives: 2 raw + 20 kgo records, read back in order.
	eventually(t, testWait, func() bool {
		r := c.broker(c.leaderOf(topic, 0)).Node.ListOffsets(ctx, topic, 0, node.TimestampLatest)
		return r.ErrorCode == 0 && r.Offset == 22
	}, "22 acks=0 records")
	cons := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	var vals []string
	for len(vals) < 22 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d records", len(vals))
		}
		fs.EachRecord(func(r *kgo.Record) { vals = append(vals, string(r.Value)) })
	}
	if vals[0] != "raw-a" || vals[1] != "raw-b" || vals[2] != "noack-0" || vals[21] != "noack-19" {
		t.Fatalf("values %v", vals)
	}
}

// testProduceErrors covers the per-request and per-batch error codes.
func testProduceErrors(t *testing.T, c *testCluster) {
	topic := "perr"
	c.createTopic(topic, 1)
	addr := c.addrs[c.leaderOf(topic, 0)]
	latest := func() int64 {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		return c.broker(c.leaderOf(topic, 0)).Node.ListOffsets(ctx, topic, 0, node.TimestampLatest).Offset
	}

	for v := int16(0); v <= 2; v++ {
		if p := rawProduce(t, addr, v, -1, topic, 0, []byte("old message set")); p.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Fatalf("v%d: code %d, want UNSUPPORTED_VERSION", v, p.ErrorCode)
		}
	}
	for _, acks := range []int16{2, -2, 5} {
		if p := rawProduce(t, addr, 9, acks, topic, 0, rawBatch(-1, 0, 0, "x")); p.ErrorCode != kerr.InvalidRequiredAcks.Code {
			t.Fatalf("acks %d: code %d, want INVALID_REQUIRED_ACKS", acks, p.ErrorCode)
		}
	}
	bad := rawBatch(-1, 0, 0, "corrupt me")
	bad[len(bad)-3] ^= 0xff
	if p := rawProduce(t, addr, 9, -1, topic, 0, bad); p.ErrorCode != kerr.CorruptMessage.Code {
		t.Fatalf("bad CRC: code %d, want CORRUPT_MESSAGE", p.ErrorCode)
	}
	if p := rawProduce(t, addr, 9, -1, topic, 0, []byte{1, 2, 3}); p.ErrorCode == 0 {
		t.Fatal("garbage records accepted")
	}
	txb := rawBatch(5, 0, 0, "x")
	txb[22] |= batchAttrTxn
	binary.BigEndian.PutUint32(txb[17:], crc32.Checksum(txb[21:], castagnoliTable))
	txn := rawProduceReq(9, -1, topic, 0, txb)
	id := "txn"
	txn.TransactionID = &id
	// KIP-890 part 1: producer 5 has no transaction holding the partition.
	if p := rawRoundTrip(t, addr, txn).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("unverified transactional produce: code %d", p.ErrorCode)
	}
	if p := rawProduce(t, addr, 9, -1, topic, 0, txb); p.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional batch without a transactional id: code %d", p.ErrorCode)
	}
	if got := latest(); got != 0 {
		t.Fatalf("rejected produces wrote data: high watermark %d", got)
	}
	unknown := rawProduceReq(9, -1, "perr", 7, rawBatch(-1, 0, 0, "x"))
	if p := rawRoundTrip(t, addr, unknown).(*kmsg.ProduceResponse).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: code %d", p.ErrorCode)
	}

	// Every version from 3 appends; LogStartOffset from v5.
	for v := int16(3); v <= 11; v++ {
		p := rawProduce(t, addr, v, -1, topic, 0, rawBatch(-1, 0, 0, "a", "b"))
		want := int64(v-3) * 2
		if p.ErrorCode != 0 || p.BaseOffset != want || p.LogAppendTime != -1 {
			t.Fatalf("v%d: %+v, want base %d", v, p, want)
		}
		if v >= 5 && p.LogStartOffset != 0 {
			t.Fatalf("v%d: log start %d", v, p.LogStartOffset)
		}
	}
	// Idempotence: a duplicate answers the original offset; a gap is
	// OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch INVALID_PRODUCER_EPOCH.
	pid := initPID(t, addr)
	first := rawProduce(t, addr, 11, -1, topic, 0, rawBatch(pid, 1, 0, "i0", "i1"))
	dup := rawProduce(t, addr, 11, -1, topic, 0, rawBatch(pid, 1, 0, "i0", "i1"))
	if first.ErrorCode != 0 || dup.ErrorCode != 0 || dup.BaseOffset != first.BaseOffset {
		t.Fatalf("duplicate: first %+v dup %+v", first, dup)
	}
	if p := rawProduce(t, addr, 11, -1, topic, 0, rawBatch(pid, 1, 5, "gap")); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: code %d", p.ErrorCode)
	}
	if p := rawProduce(t, addr, 11, -1, topic, 0, rawBatch(pid, 0, 2, "old")); p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("old epoch: code %d", p.ErrorCode)
	}
	if got := latest(); got != 20 {
		t.Fatalf("high watermark %d, want 20", got)
	}
}

// testMessageTooLarge: a record above the topic's max.message.bytes fails
// with MESSAGE_TOO_LARGE on the kgo producer, and the broker keeps serving
// the same producer.
func testMessageTooLarge(t *testing.T, c *testCluster) {
	topic := "big"
	c.createTopic(topic, 1, meta.ConfigEntry{Key: "max.message.bytes", Value: "1000"})
	cl := c.client(kgo.RecordRetries(3))
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	big := make([]byte, 5000) // incompressible: kgo compresses with snappy by default
	rand.NewChaCha8([32]byte{1}).Read(big)
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: big}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("oversized record: %v, want MESSAGE_TOO_LARGE", err)
	}
	r, err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("small")}).First()
	if err != nil {
		t.Fatalf("small record after the oversized one: %v", err)
	}
	if r.Offset != 0 {
		t.Fatalf("small record at offset %d", r.Offset)
	}
}

// testInitProducerID exercises every version raw.
func testInitProducerID(t *testing.T, c *testCluster) {
	addr := c.addrs[1]
	seen := map[int64]bool{}
	for v := int16(0); v <= 5; v++ {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.SetVersion(v)
		resp := rawRoundTrip(t, addr, req).(*kmsg.InitProducerIDResponse)
		if resp.ErrorCode != 0 || resp.ProducerID < 0 || resp.ProducerEpoch != 0 || seen[resp.ProducerID] {
			t.Fatalf("v%d: %+v", v, resp)
		}
		seen[resp.ProducerID] = true
		if v >= 3 {
			// KIP-360 bump: same id, epoch+1.
			bump := kmsg.NewPtrInitProducerIDRequest()
			bump.SetVersion(v)
			bump.ProducerID, bump.ProducerEpoch = resp.ProducerID, 4
			br := rawRoundTrip(t, addr, bump).(*kmsg.InitProducerIDResponse)
			if br.ErrorCode != 0 || br.ProducerID != resp.ProducerID || br.ProducerEpoch != 5 {
				t.Fatalf("v%d bump: %+v", v, br)
			}
			// Exhausted epoch: a new id.
			bump.ProducerEpoch = 32766
			br = rawRoundTrip(t, addr, bump).(*kmsg.InitProducerIDResponse)
			if br.ErrorCode != 0 || br.ProducerID == resp.ProducerID || seen[br.ProducerID] || br.ProducerEpoch != 0 {
				t.Fatalf("v%d overflow: %+v", v, br)
			}
			seen[br.ProducerID] = true
			bump.ProducerEpoch = -1
			if br := rawRoundTrip(t, addr, bump).(*kmsg.InitProducerIDResponse); br.ErrorCode != kerr.InvalidRequest.Code {
				t.Fatalf("v%d id without epoch: %+v", v, br)
			}
		}
		txn := kmsg.NewPtrInitProducerIDRequest()
		txn.SetVersion(v)
		id := fmt.Sprintf("t%d", v)
		txn.TransactionalID = &id
		txn.TransactionTimeoutMillis = 0
		if r := rawRoundTrip(t, addr, txn).(*kmsg.InitProducerIDResponse); r.ErrorCode != kerr.InvalidTransactionTimeout.Code || r.ProducerID != -1 {
			t.Fatalf("v%d transactional, timeout 0: %+v", v, r)
		}
		txn.TransactionTimeoutMillis = 60_000
		first := rawRoundTrip(t, addr, txn).(*kmsg.InitProducerIDResponse)
		second := rawRoundTrip(t, addr, txn).(*kmsg.InitProducerIDResponse)
		if first.ErrorCode != 0 || second.ErrorCode != 0 || first.ProducerID < 0 || second.ProducerID != first.ProducerID ||
			first.ProducerEpoch != 0 || second.ProducerEpoch != 1 {
			t.Fatalf("v%d transactional: %+v then %+v", v, first, second)
		}
	}
}

func initPID(t testing.TB, addr string) int64 {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.SetVersion(4)
	resp := rawRoundTrip(t, addr, req).(*kmsg.InitProducerIDResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %+v", resp)
	}
	return resp.ProducerID
}

// testDescribeProducers: after an idempotent produce the leader lists the
// producer; followers answer NOT_LEADER_OR_FOLLOWER; unknown partitions
// UNKNOWN_TOPIC_OR_PARTITION.
func testDescribeProducers(t *testing.T, c *testCluster) {
	topic := "dp"
	c.createTopic(topic, 1)
	leader := c.leaderOf(topic, 0)
	addr := c.addrs[leader]
	pid := initPID(t, addr)
	if p := rawProduce(t, addr, 11, -1, topic, 0, rawBatch(pid, 0, 0, "a", "b", "c")); p.ErrorCode != 0 {
		t.Fatalf("produce: %+v", p)
	}
	describe := func(addr string, parts ...int32) []kmsg.DescribeProducersResponseTopicPartition {
		req := kmsg.NewPtrDescribeProducersRequest()
		rt := kmsg.NewDescribeProducersRequestTopic()
		rt.Topic, rt.Partitions = topic, parts
		req.Topics = append(req.Topics, rt)
		return rawRoundTrip(t, addr, req).(*kmsg.DescribeProducersResponse).Topics[0].Partitions
	}
	ps := describe(addr, 0, 9)
	if len(ps) != 2 || ps[0].ErrorCode != 0 || len(ps[0].ActiveProducers) != 1 {
		t.Fatalf("describe: %+v", ps)
	}
	ap := ps[0].ActiveProducers[0]
	if ap.ProducerID != pid || ap.ProducerEpoch != 0 || ap.LastSequence != 2 || ap.LastTimestamp <= 0 || ap.CurrentTxnStartOffset != -1 {
		t.Fatalf("producer: %+v", ap)
	}
	if ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown partition: %+v", ps[1])
	}
	for id := uint64(1); id <= uint64(len(c.addrs)); id++ {
		if id == leader {
			continue
		}
		if ps := describe(c.addrs[id], 0); ps[0].ErrorCode != kerr.NotLeaderForPartition.Code {
			t.Fatalf("follower %d: %+v", id, ps[0])
		}
	}
}

// TestDataOneNode runs the data-path checks against one broker.
func TestDataOneNode(t *testing.T) {
	c := startCluster(t, 1, nil)
	t.Run("codecs", func(t *testing.T) { testRoundTripCodecs(t, c) })
	t.Run("acks0", func(t *testing.T) { testAcksZero(t, c) })
	t.Run("produce-errors", func(t *testing.T) { testProduceErrors(t, c) })
	t.Run("too-large", func(t *testing.T) { testMessageTooLarge(t, c) })
	t.Run("init-producer-id", func(t *testing.T) { testInitProducerID(t, c) })
	t.Run("describe-producers", func(t *testing.T) { testDescribeProducers(t, c) })
	t.Run("fetch-versions", func(t *testing.T) { testFetchVersions(t, c) })
	t.Run("fetch-mid-batch", func(t *testing.T) { testFetchMidBatch(t, c) })
	t.Run("fetch-long-poll", func(t *testing.T) { testFetchLongPoll(t, c) })
	t.Run("fetch-errors", func(t *testing.T) { testFetchErrors(t, c) })
	t.Run("fetch-limits", func(t *testing.T) { testFetchLimits(t, c) })
}

// TestOrderedAPIRunsInRequestOrder: handlers of an Ordered key run one at a
// time in request order on a connection, even while the first one blocks
// and later requests (of that key and others) have been dispatched.
func TestOrderedAPIRunsInRequestOrder(t *testing.T) {
	const orderedKey, releaseKey = 60, 50
	var mu sync.Mutex
	var events []string
	release := make(chan struct{})
	ordered := func(ctx context.Context, rc *RequestContext, req kmsg.Request) (kmsg.Response, error) {
		mu.Lock()
		events = append(events, fmt.Sprintf("start%d", rc.CorrelationID))
		mu.Unlock()
		if rc.CorrelationID == 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		mu.Lock()
		events = append(events, fmt.Sprintf("end%d", rc.CorrelationID))
		mu.Unlock()
		return req.ResponseKind(), nil
	}
	releaser := func(_ context.Context, _ *RequestContext, req kmsg.Request) (kmsg.Response, error) {
		close(release) // dispatched after requests 2 and 3
		return req.ResponseKind(), nil
	}
	ts := startServer(t, Config{Registry: NewRegistry(
		API{Key: orderedKey, MaxVersion: 0, Handler: ordered, Ordered: true},
		API{Key: releaseKey, MaxVersion: 0, Handler: releaser},
	)})
	rc := dialRaw(t, ts.addr)
	for corr := int32(1); corr <= 3; corr++ {
		rc.send(kmsg.NewPtrDescribeClusterRequest(), corr)
	}
	rc.send(kmsg.NewPtrDescribeUserSCRAMCredentialsRequest(), 4)
	for want := int32(1); want <= 4; want++ {
		if got := rc.readCorr(); got != want {
			t.Fatalf("response %d, want %d", got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(events, " "); got != "start1 end1 start2 end2 start3 end3" {
		t.Fatalf("events %s", got)
	}
}

// TestOrderedAPIReleaseOrder: a handler of an Ordered key that calls
// ReleaseOrder lets the connection's next one of that key start while it
// still runs; the responses still leave in request order.
func TestOrderedAPIReleaseOrder(t *testing.T) {
	const orderedKey = 60
	started2 := make(chan struct{})
	ordered := func(ctx context.Context, rc *RequestContext, req kmsg.Request) (kmsg.Response, error) {
		switch rc.CorrelationID {
		case 1:
			rc.ReleaseOrder()
			rc.ReleaseOrder() // a second call does nothing
			select {
			case <-started2: // request 2 started while request 1 runs
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case 2:
			close(started2)
		}
		return req.ResponseKind(), nil
	}
	ts := startServer(t, Config{Registry: NewRegistry(
		API{Key: orderedKey, MaxVersion: 0, Handler: ordered, Ordered: true},
	)})
	rc := dialRaw(t, ts.addr)
	for corr := int32(1); corr <= 3; corr++ {
		rc.send(kmsg.NewPtrDescribeClusterRequest(), corr)
	}
	for want := int32(1); want <= 3; want++ {
		if got := rc.readCorr(); got != want {
			t.Fatalf("response %d, want %d", got, want)
		}
	}
}
