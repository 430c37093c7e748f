package server

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// Fetch: v4-16
//
// Behaviour:
//   - Consumer fetches only. A ReplicaID >= 0 (a follower fetch; v15+ in
//     ReplicaState) is refused with INVALID_REQUEST on every partition and
//     at the top level (v7+): replication is Raft's, not Kafka's.
//   - No fetch sessions (KIP-227): every answer has SessionID 0, which
//     makes clients send full fetches. A full fetch is SessionEpoch 0 (open
//     a session: none is opened) or -1 (sessionless, or closing a session:
//     there is nothing to close), whatever the SessionID, as in Kafka. An
//     incremental fetch (epoch > 0) names a session we never created:
//     FETCH_SESSION_ID_NOT_FOUND at the top level, no partitions. Any other
//     epoch: INVALID_FETCH_SESSION_EPOCH. ForgottenTopics only matter for
//     incremental fetches and are therefore ignored.
//   - v13+ address topics by TopicID: an unknown id is UNKNOWN_TOPIC_ID.
//   - Every partition is read from this node's replica as leader; a
//     follower answers NOT_LEADER_OR_FOLLOWER. CurrentLeaderEpoch (v9+,
//     -1 = unchecked) below the leader's epoch is FENCED_LEADER_EPOCH,
//     above it UNKNOWN_LEADER_EPOCH (no records then).
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
//     partition), LastStableOffset = HighWatermark (no transactions; so the
//     IsolationLevel is accepted and has no effect), LogStartOffset (v5+),
//     AbortedTransactions null, PreferredReadReplica -1 (v11+).
//
// Version notes: v4 LastStableOffset, AbortedTransactions, IsolationLevel;
// v5 LogStartOffset; v7 sessions; v9 CurrentLeaderEpoch; v11 rack and
// PreferredReadReplica; v12 flexible, LastFetchedEpoch, DivergingEpoch
// (not sent: we are never asked by followers); v13 topic ids; v15
// ReplicaState; v16 KIP-951: CurrentLeader and NodeEndpoints on
// NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH. v17 is not served.

const (
	fetchKey     = 1
	fetchMaxWait = 30 * time.Second
)

func init() {
	register(API{Key: fetchKey, MinVersion: 4, MaxVersion: 16, Handler: handleFetch})
}

// fetchPart is one requested partition, resolved.
type fetchPart struct {
	topic  string // "" when the topic id is unknown
	req    *kmsg.FetchRequestTopicPartition
	resp   *kmsg.FetchResponseTopicPartition
	failed bool // an error code that no wait will change
}

func handleFetch(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FetchRequest)
	if rc.Broker == nil {
		return nil, errors.New("fetch: no broker")
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SessionID = 0

	if req.Version >= 7 && req.SessionEpoch != 0 && req.SessionEpoch != -1 {
		if req.SessionEpoch > 0 {
			resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		} else {
			resp.ErrorCode = kerr.InvalidFetchSessionEpoch.Code
		}
		return resp, nil
	}
	replica := req.ReplicaID
	if req.Version >= 15 {
		replica = req.ReplicaState.ID
	}

	n := rc.Broker.Node
	var parts []*fetchPart
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		name := rt.Topic
		known := true
		if req.Version >= 13 {
			name, known = n.TopicName(meta.TopicID(rt.TopicID))
		}
		for range rt.Partitions {
			st.Partitions = append(st.Partitions, kmsg.NewFetchResponseTopicPartition())
		}
		resp.Topics = append(resp.Topics, st)
		for pi := range rt.Partitions {
			sp := &resp.Topics[ti].Partitions[pi]
			sp.Partition = rt.Partitions[pi].Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.RecordBatches = emptyRecords
			sp.PreferredReadReplica = -1
			fp := &fetchPart{topic: name, req: &rt.Partitions[pi], resp: sp}
			switch {
			case replica >= 0:
				sp.ErrorCode, fp.failed = kerr.InvalidRequest.Code, true
			case !known:
				sp.ErrorCode, fp.failed = kerr.UnknownTopicID.Code, true
			case rc.topicDenied(kmsg.ACLOperationRead, name) != 0:
				sp.ErrorCode, fp.failed = kerr.TopicAuthorizationFailed.Code, true
			}
			parts = append(parts, fp)
		}
	}
	if replica >= 0 {
		if req.Version >= 7 {
			resp.ErrorCode = kerr.InvalidRequest.Code
		}
		return resp, nil
	}

	wait := min(max(time.Duration(req.MaxWaitMillis)*time.Millisecond, 0), fetchMaxWait)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if len(parts) == 0 {
		// Kafka delays an empty fetch by MaxWaitMillis too.
		<-wctx.Done()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return resp, nil
	}
	for {
		bytes, stop := readFetch(ctx, rc, req, parts)
		if stop || int64(bytes) >= int64(req.MinBytes) || wctx.Err() != nil {
			break
		}
		if !waitFetch(wctx, rc, parts) {
			break
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if req.Version >= 16 {
		fillFetchLeaders(ctx, rc, parts, resp)
	}
	return resp, nil
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
		r := n.Fetch(ctx, fp.topic, fp.req.Partition, fp.req.FetchOffset, max(limit, 1))
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
