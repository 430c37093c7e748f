package server

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// Fetch: v4-16
//
// Behaviour:
//   - Consumer fetches only. A ReplicaID >= 0 (a follower fetch; v15+ in
//     ReplicaState) is refused with INVALID_REQUEST on every partition and
//     at the top level (v7+): replication is Raft's, not Kafka's.
//   - Fetch sessions (KIP-227, v7+; fetch_context.go, fetch_session.go),
//     as Kafka's FetchManager: SessionEpoch -1 is a sessionless full fetch
//     (closing the session SessionID names, if any); epoch 0 is a full
//     fetch that closes the named session and opens a new one, answered
//     with its nonzero SessionID (or 0 when the cache has no slot for it);
//     epoch > 0 is an incremental fetch: the request names only added or
//     changed partitions, ForgottenTopics removes some, the epoch must be
//     the session's next (INVALID_FETCH_SESSION_EPOCH), the session must
//     exist (FETCH_SESSION_ID_NOT_FOUND) and have been opened on the same
//     side of v13 (FETCH_SESSION_TOPIC_ID_ERROR); every session partition is
//     read, and the answer carries only those with records, a changed high
//     watermark, last stable offset or log start, or an error, in session
//     order (carried partitions move to the end, for fairness under
//     MaxBytes). An incremental fetch that empties its session closes it
//     and is answered as a sessionless full fetch. Top-level session errors
//     carry no partitions. The cache is per node and in memory, bounded by
//     BrokerConfig.FetchSessions (Kafka's slots and eviction rules).
//   - A connection's fetches run one at a time, in request order
//     (API.Ordered), as Kafka handles a connection's requests: pipelined
//     fetches of one session meet its epochs in the order they were sent.
//     (Clients keep one fetch in flight per broker; kgo on a connection of
//     its own.)
//   - v13+ address topics by TopicID: an unknown id is UNKNOWN_TOPIC_ID (a
//     session partition whose id stopped resolving: see sessionPart).
//   - With an authorizer, a topic the principal may not READ is
//     TOPIC_AUTHORIZATION_FAILED, checked on every fetch (a session's
//     partitions included, as Kafka).
//   - Every partition is read from this node's replica as leader; a
//     follower answers NOT_LEADER_OR_FOLLOWER. CurrentLeaderEpoch (v9+,
//     -1 = unchecked) below the leader's epoch is FENCED_LEADER_EPOCH,
//     above it UNKNOWN_LEADER_EPOCH (no records then).
//   - A fetch with no records whose only errors are NOT_LEADER_OR_FOLLOWER
//     for partitions with no leader known elsewhere (an election under
//     way, or a deposed leader that Metadata still names) is held up to
//     250 ms within MaxWaitMillis and read once more before it is
//     answered: answered at once, kgo refreshes metadata and fetches
//     again at network speed until the election ends (a simulated seed
//     saw 114,000 such fetches in 34 s).
//   - Whole batches, starting with the batch holding FetchOffset (a fetch
//     inside a batch returns the whole batch; the client skips the records
//     before its offset), never above the high watermark. OFFSET_OUT_OF_RANGE
//     outside [LogStartOffset, HighWatermark].
//   - Size limits (KIP-74): PartitionMaxBytes per partition and MaxBytes
//     across the response, except that the first partition with data
//     always gets at least its first whole batch; later partitions get
//     nothing rather than an oversized batch.
//   - Long poll: while the response holds fewer than MinBytes, no partition
//     has an error and MaxWaitMillis (bounded to 30 s) has not passed, the
//     handler waits on core/node.WaitBeyond for every requested partition
//     (channels, no polling) and reads again once any high watermark moved.
//   - HighWatermark is this leader's (never -1 on a successfully read
//     partition), LastStableOffset the first offset of the partition's
//     oldest open transaction (else the high watermark), LogStartOffset
//     (v5+), PreferredReadReplica -1 (v11+).
//   - IsolationLevel 1 (read_committed): nothing at or above the last
//     stable offset is returned, and AbortedTransactions lists the aborted
//     transactions (producer id, first offset) overlapping the returned
//     batches, from the partition's aborted-transaction index, so the
//     consumer drops their records (core/partition, "Transactions").
//     read_uncommitted: everything below the high watermark,
//     AbortedTransactions null. Control batches (markers) are returned
//     in both; consumers skip them.
//
// Version notes: v4 LastStableOffset, AbortedTransactions, IsolationLevel;
// v5 LogStartOffset; v7 sessions (SessionID, SessionEpoch,
// ForgottenTopics); v9 CurrentLeaderEpoch; v11 rack and
// PreferredReadReplica; v12 flexible, LastFetchedEpoch, DivergingEpoch
// (not sent: we are never asked by followers); v13 topic ids; v15
// ReplicaState; v16 KIP-951: CurrentLeader and NodeEndpoints on
// NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH. v17 is not served.

const (
	fetchKey     = 1
	fetchMaxWait = 30 * time.Second
)

func init() {
	register(API{Key: fetchKey, MinVersion: 4, MaxVersion: 16, Handler: handleFetch, Ordered: true})
}

// fetchPart is one partition to read, resolved.
type fetchPart struct {
	topic  string // the name to read by; "" when the topic id is unknown
	req    *kmsg.FetchRequestTopicPartition
	resp   *kmsg.FetchResponseTopicPartition
	failed bool // an error code that no wait will change
}

func newFetchPart(topic string, rp *kmsg.FetchRequestTopicPartition) *fetchPart {
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.Partition = rp.Partition
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
	sp.RecordBatches = emptyRecords
	sp.PreferredReadReplica = -1
	return &fetchPart{topic: topic, req: rp, resp: &sp}
}

// leaderlessFetchHold is how long a fetch whose only news is a partition
// without a known leader is held (leaderlessOnly), at most its
// MaxWaitMillis: an election under way usually ends within it (the
// election timeout is 400-800 ms), and a client that refreshes metadata
// and fetches again meanwhile learns nothing new.
const leaderlessFetchHold = 250 * time.Millisecond

// notLeaderTopics lists, once each in request order, the topics of the
// partitions answered NOT_LEADER_OR_FOLLOWER.
func notLeaderTopics(parts []*fetchPart) []string {
	var out []string
	for _, fp := range parts {
		if fp.topic != "" && fp.resp.ErrorCode == kerr.NotLeaderForPartition.Code && !slices.Contains(out, fp.topic) {
			out = append(out, fp.topic)
		}
	}
	return out
}

// leaderlessOnly reports whether every partition answered with an error
// is NOT_LEADER_OR_FOLLOWER with no leader known elsewhere (none, or
// this node self, whose view is then stale), and at least one is: an
// answer that tells the client nothing it can act on.
func leaderlessOnly(parts []*fetchPart, cl *currentLeaders, self int32) bool {
	some := false
	for _, fp := range parts {
		switch fp.resp.ErrorCode {
		case 0:
		case kerr.NotLeaderForPartition.Code:
			l, ok := cl.leaders[topicPartition{fp.topic, fp.req.Partition}]
			if ok && l[0] >= 0 && l[0] != self {
				return false // the client can move there
			}
			some = true
		default:
			return false
		}
	}
	return some
}

func (fp *fetchPart) fail(code int16) {
	fp.resp.ErrorCode, fp.failed = code, true
}

func handleFetch(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	if rc.Broker == nil {
		return nil, errors.New("fetch: no broker")
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SessionID = 0

	replica := req.ReplicaID
	if req.Version >= 15 {
		replica = req.ReplicaState.ID
	}
	if replica >= 0 {
		parts := requestParts(rc, req)
		for _, fp := range parts {
			fp.fail(kerr.InvalidRequest.Code)
		}
		if req.Version >= 7 {
			resp.ErrorCode = kerr.InvalidRequest.Code
		}
		mirrorRequest(req, parts, resp)
		return resp, nil
	}
	fc := openFetchContext(rc, req)
	if fc.code != 0 {
		resp.ErrorCode = fc.code
		return resp, nil
	}
	parts := fc.parts

	wait := min(max(time.Duration(req.MaxWaitMillis)*time.Millisecond, 0), fetchMaxWait)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if len(parts) == 0 {
		// Kafka delays an empty fetch by MaxWaitMillis too.
		<-wctx.Done()
	}
	bytes := 0
	for len(parts) > 0 {
		var stop bool
		bytes, stop = readFetch(ctx, rc, req, parts)
		if stop || int64(bytes) >= int64(req.MinBytes) || wctx.Err() != nil {
			break
		}
		if !waitFetch(wctx, rc, parts) {
			break
		}
	}
	if bytes == 0 && wctx.Err() == nil && leaderlessOnly(parts, lookupLeaders(ctx, rc, notLeaderTopics(parts)), int32(rc.Broker.Node.ID())) {
		// Nothing to send, and the only news is that no leader is known
		// for some partition: hold the answer (within MaxWaitMillis, as
		// a long poll may) and read once more. Answering at once would
		// have the client refresh metadata, which may still name this
		// node or a deposed leader, and fetch again at network speed
		// until an election ends.
		hctx, hcancel := context.WithTimeout(wctx, leaderlessFetchHold)
		<-hctx.Done()
		hcancel()
		readFetch(ctx, rc, req, parts)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if req.Version >= 16 {
		fillFetchLeaders(ctx, rc, parts, resp)
	}
	fc.answer(rc, req, resp)
	return resp, nil
}

// requestParts resolves the request's partitions, in request order; v13+
// topic ids unknown here are UNKNOWN_TOPIC_ID; topics the principal may not
// READ are TOPIC_AUTHORIZATION_FAILED.
func requestParts(rc *RequestContext, req *kmsg.FetchRequest) []*fetchPart {
	var parts []*fetchPart
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		name, known := rt.Topic, true
		if req.Version >= 13 {
			name, known = rc.Broker.Node.TopicName(meta.TopicID(rt.TopicID))
		}
		for pi := range rt.Partitions {
			fp := newFetchPart(name, &rt.Partitions[pi])
			switch {
			case !known:
				fp.fail(kerr.UnknownTopicID.Code)
			case rc.topicDenied(kmsg.ACLOperationRead, name) != 0:
				fp.fail(kerr.TopicAuthorizationFailed.Code)
			}
			parts = append(parts, fp)
		}
	}
	return parts
}

// mirrorRequest answers parts (as requestParts made them) in the request's
// shape: one response topic per request topic, partitions in request order.
func mirrorRequest(req *kmsg.FetchRequest, parts []*fetchPart, resp *kmsg.FetchResponse) {
	i := 0
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, 0, len(rt.Partitions))
		for range rt.Partitions {
			st.Partitions = append(st.Partitions, *parts[i].resp)
			i++
		}
		resp.Topics = append(resp.Topics, st)
	}
}

// fillFetchLeaders adds KIP-951's CurrentLeader and NodeEndpoints (v16+) to
// the partitions answered NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH.
func fillFetchLeaders(ctx context.Context, rc *RequestContext, parts []*fetchPart, resp *kmsg.FetchResponse) {
	moved := func(fp *fetchPart) bool {
		c := fp.resp.ErrorCode
		return fp.topic != "" && (c == kerr.NotLeaderForPartition.Code || c == kerr.FencedLeaderEpoch.Code)
	}
	var topics []string
	seen := map[string]bool{}
	for _, fp := range parts {
		if moved(fp) && !seen[fp.topic] {
			seen[fp.topic] = true
			topics = append(topics, fp.topic)
		}
	}
	cl := lookupLeaders(ctx, rc, topics)
	for _, fp := range parts {
		if moved(fp) {
			fp.resp.CurrentLeader.LeaderID, fp.resp.CurrentLeader.LeaderEpoch = cl.use(fp.topic, fp.req.Partition)
		}
	}
	for _, b := range cl.endpoints() {
		rb := kmsg.NewFetchResponseBroker()
		rb.NodeID, rb.Host, rb.Port, rb.Rack = b.NodeID, b.Host, b.Port, b.Rack
		resp.Brokers = append(resp.Brokers, rb)
	}
}

// emptyRecords is what a partition without data carries: an empty, never a
// null, record set. Kafka sends size 0; librdkafka (kcat) rejects a null
// set with "invalid MessageSetSize -1" and loops on it.
var emptyRecords = []byte{}

// readFetch (re)reads every partition into its response slot and returns
// the bytes gathered and whether waiting is pointless (an error, or the
// response is full).
func readFetch(ctx context.Context, rc *RequestContext, req *kmsg.FetchRequest, parts []*fetchPart) (int, bool) {
	n := rc.Broker.Node
	maxBytes := int(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = math.MaxInt32
	}
	total, stop := 0, false
	for _, fp := range parts {
		if fp.failed {
			stop = true
			continue
		}
		sp := fp.resp
		limit := min(int(fp.req.PartitionMaxBytes), maxBytes-total)
		first := total == 0
		var r node.FetchResult
		if req.IsolationLevel == 1 {
			r = n.FetchCommitted(ctx, fp.topic, fp.req.Partition, fp.req.FetchOffset, max(limit, 1))
		} else {
			r = n.Fetch(ctx, fp.topic, fp.req.Partition, fp.req.FetchOffset, max(limit, 1))
		}
		sp.AbortedTransactions = nil
		sp.ErrorCode = r.ErrorCode
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = r.HighWatermark, r.LastStableOffset, r.LogStartOffset
		sp.RecordBatches = emptyRecords
		if r.ErrorCode == 0 && req.Version >= 9 && fp.req.CurrentLeaderEpoch >= 0 && fp.req.CurrentLeaderEpoch != r.LeaderEpoch {
			if fp.req.CurrentLeaderEpoch < r.LeaderEpoch {
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			} else {
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			}
		}
		if sp.ErrorCode != 0 {
			stop = true
			continue
		}
		if len(r.Records) == 0 {
			continue
		}
		if !first && (limit <= 0 || len(r.Records) > limit) {
			// KIP-74: only the first partition with data may exceed the
			// limits; this one waits for the next fetch.
			stop = true
			continue
		}
		sp.RecordBatches = r.Records
		if req.IsolationLevel == 1 {
			sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			for _, a := range r.AbortedTxns {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID, at.FirstOffset = a.ProducerID, a.FirstOffset
				sp.AbortedTransactions = append(sp.AbortedTransactions, at)
			}
		}
		total += len(r.Records)
		if total >= maxBytes {
			stop = true
		}
	}
	return total, stop
}

// waitFetch blocks until some partition's high watermark passes both its
// fetch offset and the high watermark last read, or ctx ends (false). One goroutine per partition, all joined
// before returning.
func waitFetch(ctx context.Context, rc *RequestContext, parts []*fetchPart) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	woke := make(chan struct{}, len(parts))
	var wg sync.WaitGroup
	for _, fp := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Past what was just read: a partition with some (too few)
			// bytes must not wake the wait at once.
			beyond := max(fp.req.FetchOffset, fp.resp.HighWatermark)
			if rc.Broker.Node.WaitBeyond(ctx, fp.topic, fp.req.Partition, beyond) == nil {
				woke <- struct{}{}
			}
		}()
	}
	var ok bool
	select {
	case <-woke:
		ok = true
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	return ok
}
