package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// rawBatch builds an uncompressed v2 record batch of values (keys "k<i>");
// pid < 0 makes it non-idempotent.
func rawBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		var r []byte
		r = append(r, 0)
		r = binary.AppendVarint(r, 0)
		r = binary.AppendVarint(r, int64(i))
		k := fmt.Sprintf("k%d", i)
		r = binary.AppendVarint(r, int64(len(k)))
		r = append(r, k...)
		r = binary.AppendVarint(r, int64(len(v)))
		r = append(r, v...)
		r = binary.AppendVarint(r, 0)
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := make([]byte, batchPrefixBytes, batchPrefixBytes+len(recs))
	be := binary.BigEndian
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint32(b[23:], uint32(len(values)-1))
	now := uint64(time.Now().UnixMilli())
	be.PutUint64(b[27:], now)
	be.PutUint64(b[35:], now)
	if pid < 0 {
		epoch, seq = -1, -1
	}
	be.PutUint64(b[43:], uint64(pid))
	be.PutUint16(b[51:], uint16(epoch))
	be.PutUint32(b[53:], uint32(seq))
	be.PutUint32(b[57:], uint32(len(values)))
	b = append(b, recs...)
	be.PutUint32(b[8:], uint32(len(b)-12))
	be.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoliTable))
	return b
}

// batchBases lists the base offsets of the batches in b.
func batchBases(t testing.TB, b []byte) []int64 {
	t.Helper()
	var out []int64
	for len(b) > 0 {
		if len(b) < batchPrefixBytes {
			t.Fatalf("truncated batch of %d bytes", len(b))
		}
		out = append(out, int64(binary.BigEndian.Uint64(b)))
		b = b[int(binary.BigEndian.Uint32(b[8:]))+12:]
	}
	return out
}

func rawProduceReq(version int16, acks int16, topic string, part int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks, req.TimeoutMillis = acks, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = part, records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func rawProduce(t testing.TB, addr string, version, acks int16, topic string, part int32, records []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := rawRoundTrip(t, addr, rawProduceReq(version, acks, topic, part, records)).(*kmsg.ProduceResponse)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce v%d: %+v", version, resp)
	}
	return resp.Topics[0].Partitions[0]
}

type fetchSpec struct {
	topic     string
	topicID   [16]byte
	part      int32
	offset    int64
	partMax   int32
	leaderEpc int32
}

func rawFetchReq(version int16, maxWait, minBytes, maxBytes int32, specs ...fetchSpec) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(version)
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWait, minBytes, maxBytes
	req.SessionEpoch = -1
	for _, s := range specs {
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = s.topic, s.topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = s.part, s.offset, s.partMax
		if rp.PartitionMaxBytes == 0 {
			rp.PartitionMaxBytes = 1 << 20
		}
		rp.CurrentLeaderEpoch = -1
		if s.leaderEpc != 0 {
			rp.CurrentLeaderEpoch = s.leaderEpc
		}
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// rawConn is a raw client connection for pipelined requests.
type rawConn struct {
	t   testing.TB
	c   net.Conn
	fmt *kmsg.RequestFormatter
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(testWait)); err != nil {
		t.Fatal(err)
	}
	return &rawConn{t: t, c: c, fmt: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw-data"))}
}

func (r *rawConn) send(req kmsg.Request, corr int32) {
	r.t.Helper()
	if _, err := r.c.Write(r.fmt.AppendRequest(nil, req, corr)); err != nil {
		r.t.Fatal(err)
	}
}

// readCorr reads one response frame and returns its correlation id.
func (r *rawConn) readCorr() int32 {
	r.t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		r.t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.c, body); err != nil {
		r.t.Fatal(err)
	}
	return int32(binary.BigEndian.Uint32(body))
}

// produced is one acknowledged record.
type produced struct {
	key, value string
	headers    []kgo.RecordHeader
	partition  int32
	offset     int64
}

// produceN produces n keyed records with headers to topic through cl and
// returns them as acknowledged.
func produceN(t testing.TB, cl *kgo.Client, topic string, n int, tag string) []produced {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWait)
	defer cancel()
	out := make([]produced, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		r := &kgo.Record{
			Topic: topic, Key: []byte(fmt.Sprintf("key-%d", i%37)),
			Value:   []byte(fmt.Sprintf("%s-value-%d-%0*d", tag, i, i%50, 0)),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(fmt.Sprint(i))}, {Key: "tag", Value: []byte(tag)}},
		}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err == nil {
				out[i] = produced{string(r.Key), string(r.Value), r.Headers, r.Partition, r.Offset}
			}
			errs <- err
		})
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	return out
}

// consumeExactly reads topic's partitions from the start with a fresh
// client until it has want records, and checks them against want: same
// key, value, headers at the same partition and offset, every offset of
// each partition once, in order.
func consumeExactly(t testing.TB, c *testCluster, topic string, partitions int32, want []produced) {
	t.Helper()
	offs := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		offs[p] = kgo.NewOffset().AtStart()
	}
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}), kgo.FetchMaxWait(500*time.Millisecond))
	defer cl.Close()
	type po struct {
		p int32
		o int64
	}
	byPos := map[po]produced{}
	for _, w := range want {
		byPos[po{w.partition, w.offset}] = w
	}
	next := map[int32]int64{}
	got := 0
	ctx, cancel := context.WithTimeout(context.Background(), 2*testWait)
	defer cancel()
	for got < len(want) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", got, len(want))
		}
		fs.EachError(func(tp string, p int32, err error) { t.Errorf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("p%d: offset %d, want %d (gap or duplicate)", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			w, ok := byPos[po{r.Partition, r.Offset}]
			if !ok {
				t.Fatalf("p%d/%d: unexpected record %q", r.Partition, r.Offset, r.Value)
			}
			if string(r.Key) != w.key || string(r.Value) != w.value || !sameHeaders(r.Headers, w.headers) {
				t.Fatalf("p%d/%d: got %q=%q %v, want %q=%q %v", r.Partition, r.Offset, r.Key, r.Value, r.Headers, w.key, w.value, w.headers)
			}
			got++
		})
	}
}

func sameHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || string(a[i].Value) != string(b[i].Value) {
			return false
		}
	}
	return true
}

func rawRoundTripProduce(t testing.TB, addr string, version int16, topic string) *kmsg.ProduceResponse {
	t.Helper()
	return rawRoundTrip(t, addr, rawProduceReq(version, -1, topic, 0, rawBatch(-1, 0, 0, "x"))).(*kmsg.ProduceResponse)
}
