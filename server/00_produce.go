package server

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// Produce: advertised v0-11; v0-v2 answered UNSUPPORTED_VERSION.
//
// Behaviour:
//   - v0-v2 (message sets v0/v1) are advertised only because librdkafka
//     enables gzip/snappy/lz4 only when Produce v0 is; every partition of
//     such a request gets UNSUPPORTED_VERSION, as Kafka 4 does (KIP-896),
//     whatever its acks (an error answer, even for acks=0).
//   - __consumer_offsets (internal_topic.go): INVALID_TOPIC_EXCEPTION, as
//     Kafka answers a client's append to an internal topic.
//   - Acks 0: the batches are appended and no response is sent (the
//     handler returns nil, nil; the connection keeps its response order).
//     Acks 1 and -1: the answer comes after the partition's Raft entry is
//     committed by a majority and applied, so acks=1 is as strong as
//     acks=all here. Any other acks: INVALID_REQUIRED_ACKS everywhere.
//   - Acks -1 also applies the topic's min.insync.replicas (core/node,
//     "In-sync replicas"): NOT_ENOUGH_REPLICAS, with nothing appended,
//     while fewer replicas are in sync; above the Raft majority it also
//     waits (within TimeoutMillis) for that many replicas to hold the
//     entry, else NOT_ENOUGH_REPLICAS_AFTER_APPEND (the records stay in
//     the log). Acks 0 and 1 are not checked, as in Kafka.
//   - Transactions (txn.go): a non-null TransactionalID needs WRITE on
//     it, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED everywhere; a batch
//     with the transactional bit in a request without a TransactionalID
//     gets the same (Kafka authorizes a null id and fails). Each
//     partition with transactional batches is verified against the
//     coordinator's state (KIP-890 part 1): the producer's ongoing
//     transaction, at the batch's epoch, must hold the partition, else
//     INVALID_TXN_STATE (INVALID_PRODUCER_EPOCH for an older epoch);
//     from v12 the partition is added to the transaction instead (as
//     AddPartitionsToTxn; NOT_ENOUGH_REPLICAS, retriable, while the
//     coordinator cannot take it, e.g. the previous transaction's markers
//     are being written);
//     the partition state machine then checks the epoch again atomically
//     with the append. Control batches from clients are INVALID_RECORD,
//     as in Kafka.
//   - TimeoutMillis bounds the wait for the entry (clamped to [1 s, 5 min]):
//     REQUEST_TIMED_OUT when it passes; the entry may still commit later,
//     and an idempotent retry is then answered with the original offsets.
//   - Requests of one connection reach the log in order (API.Ordered),
//     as in Kafka: pipelined acks=0 requests and an idempotent
//     producer's in-flight batches are appended in send order. A
//     request starts once the connection's previous one has queued
//     every partition's entry to its shard (a shard's proposal queue
//     is FIFO), not once it is answered: the client's in-flight
//     requests wait for their commit together and share the Raft log's
//     group commit. Answers leave in request order. Requests of
//     different connections run concurrently.
//   - Partitions of one request are proposed concurrently, one Raft entry
//     per partition (core/node.Produce). Validation (CORRUPT_MESSAGE,
//     INVALID_RECORD, MESSAGE_TOO_LARGE against max.message.bytes) happens
//     before proposing; unknown topics are auto-created when enabled
//     (core/node), otherwise UNKNOWN_TOPIC_OR_PARTITION.
//   - Idempotence (sequence/epoch checks, atomic with the append) lives in
//     the partition state machine: OUT_OF_ORDER_SEQUENCE_NUMBER,
//     INVALID_PRODUCER_EPOCH; a duplicate of one of the last 5 batches is
//     answered as a success with its original base offset.
//   - NOT_LEADER_OR_FOLLOWER on v10+ carries the current leader and its
//     endpoint when known (KIP-951), so kgo skips a metadata round trip.
//   - LogAppendTime is the broker's append time for a topic with
//     message.timestamp.type=LogAppendTime (core/node stamps it into the
//     batches), -1 for CreateTime; LogStartOffset (v5+) is the
//     partition's log start after the append (-1 on errors).
//
// Version notes: v3 record batch v2 + TransactionalID; v5 LogStartOffset;
// v8 RecordErrors/ErrorMessage; v9 flexible; v10 CurrentLeader and
// NodeEndpoints tags (KIP-951); v11 same as v10 (KIP-890 marker); v12
// same as v11, and a transactional batch adds its partition to the
// transaction (KIP-890 part 2: no AddPartitionsToTxn round trip). v13
// (topic ids) is not served.

const (
	produceKey          = 0
	produceMinTimeout   = time.Second
	produceMaxTimeout   = 5 * time.Minute
	batchAttrOffset     = 21 // int16 attributes in a v2 record batch
	batchAttrTxn        = 0x10
	batchAttrControl    = 0x20
	batchPrefixBytes    = 61
	batchLengthOffset   = 8
	batchLengthOverhead = 12 // baseOffset + batchLength
)

func init() {
	register(API{Key: produceKey, MinVersion: 0, MaxVersion: 12, Handler: handleProduce, Ordered: true, KeepsNoRequestBytes: true})
}

func handleProduce(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	if rc.Broker == nil {
		return nil, errors.New("produce: no broker")
	}
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	// Request-wide errors answer every partition with one code.
	var all int16
	switch {
	case req.Version < 3:
		all = kerr.UnsupportedVersion.Code
	case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
		all = kerr.InvalidRequiredAcks.Code
	case req.TransactionID != nil:
		all = rc.txnDenied(kmsg.ACLOperationWrite, *req.TransactionID)
	}

	type slot struct{ t, p int }
	var work []slot
	for ti, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = -1, -1, -1
			sp.ErrorCode = all
			if all == 0 {
				sp.ErrorCode = rc.topicDenied(kmsg.ACLOperationWrite, rt.Topic)
			}
			if sp.ErrorCode == 0 && rc.authorizerOn() && !rc.mayCreateTopic(rt.Topic) {
				// The node auto-creates a topic a produce names; with
				// ACLs only for a principal that may create it.
				if _, ok := rc.Broker.Node.TopicConfig(rt.Topic); !ok {
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				}
			}
			if sp.ErrorCode == 0 {
				sp.ErrorCode = checkBatchAttrs(rp.Records, req.TransactionID != nil)
			}
			if sp.ErrorCode == 0 && rt.Topic == offsetsTopic {
				sp.ErrorCode = kerr.InvalidTopicException.Code // Kafka: no client appends to an internal topic
			}
			st.Partitions = append(st.Partitions, sp)
			if sp.ErrorCode == 0 {
				work = append(work, slot{ti, len(st.Partitions) - 1})
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	if all == kerr.UnsupportedVersion.Code || all == kerr.InvalidRequiredAcks.Code {
		return resp, nil
	}

	timeout := min(max(time.Duration(req.TimeoutMillis)*time.Millisecond, produceMinTimeout), produceMaxTimeout)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n := rc.Broker.Node
	start := n.Now() // the "front end" stage starts here (node.Stages)
	if rc.receivedNanos != 0 {
		rc.metrics.produceQueue.Observe(time.Since(time.Unix(0, rc.receivedNanos)))
	}
	// The connection's next produce may start once every partition of
	// this one is queued to its shard (or will propose nothing).
	var unsubmitted atomic.Int32
	unsubmitted.Store(int32(len(work)))
	if len(work) == 0 {
		rc.ReleaseOrder()
	}
	var wg sync.WaitGroup
	for _, s := range work {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var once sync.Once
			submitted := func() {
				once.Do(func() {
					if unsubmitted.Add(-1) == 0 {
						rc.ReleaseOrder()
					}
				})
			}
			defer submitted()
			topic := req.Topics[s.t].Topic
			rp := &req.Topics[s.t].Partitions[s.p]
			sp := &resp.Topics[s.t].Partitions[s.p]
			if req.TransactionID != nil {
				if sp.ErrorCode = verifyTxnProduce(pctx, rc, req.Version, *req.TransactionID, topic, rp.Partition, rp.Records); sp.ErrorCode != 0 {
					return
				}
			}
			r := n.ProduceWith(pctx, topic, rp.Partition, rp.Records, node.ProduceOptions{Acks: req.Acks, Start: start, Timeout: timeout, Submitted: submitted})
			sp.ErrorCode = r.ErrorCode
			if r.ErrorCode == 0 {
				sp.BaseOffset, sp.LogAppendTime, sp.LogStartOffset = r.BaseOffset, r.LogAppendTimeMs, r.LogStartOffset
			}
		}()
	}
	wg.Wait()
	if req.Acks == 0 {
		return nil, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if req.Version >= 10 {
		fillProduceLeaders(ctx, rc, resp)
	}
	return resp, nil
}

// checkBatchAttrs rejects control batches, and transactional ones when
// the request has no transactional id; malformed framing is left to
// core/node's validation (CORRUPT_MESSAGE, INVALID_RECORD).
func checkBatchAttrs(b []byte, transactional bool) int16 {
	for len(b) >= batchPrefixBytes {
		attrs := binary.BigEndian.Uint16(b[batchAttrOffset:])
		switch {
		case attrs&batchAttrControl != 0:
			return kerr.InvalidRecord.Code
		case attrs&batchAttrTxn != 0 && !transactional:
			return kerr.TransactionalIDAuthorizationFailed.Code
		}
		l := int32(binary.BigEndian.Uint32(b[batchLengthOffset:]))
		if l < 0 || int(l)+batchLengthOverhead > len(b) {
			return 0
		}
		b = b[int(l)+batchLengthOverhead:]
	}
	return 0
}

// fillProduceLeaders adds KIP-951's CurrentLeader and NodeEndpoints to the
// partitions answered NOT_LEADER_OR_FOLLOWER, from this node's view.
func fillProduceLeaders(ctx context.Context, rc *RequestContext, resp *kmsg.ProduceResponse) {
	var topics []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.ErrorCode == kerr.NotLeaderForPartition.Code {
				topics = append(topics, t.Topic)
				break
			}
		}
	}
	cl := lookupLeaders(ctx, rc, topics)
	for ti := range resp.Topics {
		t := &resp.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			if p.ErrorCode == kerr.NotLeaderForPartition.Code {
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = cl.use(t.Topic, p.Partition)
			}
		}
	}
	for _, b := range cl.endpoints() {
		rb := kmsg.NewProduceResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, rb)
	}
}

// currentLeaders is this node's view of some partitions' leaders, for
// KIP-951 answers (Produce v10+, Fetch v16+).
type currentLeaders struct {
	leaders map[topicPartition][2]int32 // leader id, leader epoch
	brokers []meta.Broker
	used    map[int32]bool
}

type topicPartition struct {
	topic string
	part  int32
}

// lookupLeaders reads the leaders of topics' partitions (bounded to 1 s;
// nothing for no topics).
func lookupLeaders(ctx context.Context, rc *RequestContext, topics []string) *currentLeaders {
	cl := &currentLeaders{leaders: map[topicPartition][2]int32{}, used: map[int32]bool{}}
	if len(topics) == 0 {
		return cl
	}
	mctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	cv := rc.Broker.Node.Metadata(mctx, topics)
	cl.brokers = cv.Brokers
	for _, t := range cv.Topics {
		for _, p := range t.Partitions {
			cl.leaders[topicPartition{t.Name, p.Partition}] = [2]int32{p.Leader, p.LeaderEpoch}
		}
	}
	return cl
}

// use returns the partition's leader and epoch (-1, -1 if unknown) and
// marks the leader's endpoint for the response.
func (cl *currentLeaders) use(topic string, part int32) (int32, int32) {
	l, ok := cl.leaders[topicPartition{topic, part}]
	if !ok || l[0] < 0 {
		return -1, -1
	}
	cl.used[l[0]] = true
	return l[0], l[1]
}

// endpointInfo is a broker endpoint for NodeEndpoints.
type endpointInfo struct {
	NodeID int32
	Host   string
	Port   int32
	Rack   *string
}

// endpoints lists the brokers named by use, by node id.
func (cl *currentLeaders) endpoints() []endpointInfo {
	var out []endpointInfo
	for _, b := range cl.brokers {
		if cl.used[b.NodeID] {
			e := endpointInfo{NodeID: b.NodeID, Host: b.Host, Port: b.Port}
			if b.Rack != "" {
				rack := b.Rack
				e.Rack = &rack
			}
			out = append(out, e)
		}
	}
	return out
}
