package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

// ListOffsets: v1-8
//
// Behaviour, per partition, as its leader only (NOT_LEADER_OR_FOLLOWER
// otherwise; unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION):
//   - Timestamp -1: the high watermark; with IsolationLevel
//     read_committed (v2+) the last stable offset (the first offset of the
//     oldest open transaction, else the high watermark). read_committed
//     timestamp lookups find nothing at or above the last stable offset
//     (-1), as in Kafka.
//   - -2: the log start offset. -4 (v8+, earliest local, KIP-405): the
//     log start offset too (nothing is tiered).
//   - -3 (v7+, KIP-734): the offset of the first batch holding the largest
//     timestamp and that timestamp (batch granularity); empty log: -1/-1.
//   - >= 0: the base offset of the first batch whose max timestamp is >=
//     the timestamp, below the high watermark, or -1 if none. Deviation:
//     Timestamp in the answer is the requested timestamp, not the found
//     record's own (core/node does not decode records).
//   - Any other negative timestamp, or a special one below the version
//     that introduced it: UNSUPPORTED_VERSION for that partition. A
//     partition listed twice: INVALID_REQUEST for each occurrence.
//   - CurrentLeaderEpoch (v4+, KIP-320): -1 skips the check; older than the
//     leader's epoch is FENCED_LEADER_EPOCH, newer is UNKNOWN_LEADER_EPOCH
//     (franz-go refreshes metadata on both). LeaderEpoch (v4+) is the
//     leader's current epoch (Kafka answers the epoch of the found record
//     for -2 and timestamps; the current epoch is never older, which
//     KIP-320 validation tolerates).
//   - ReplicaID is ignored (there are no Kafka-protocol followers).
//
// Version notes: v0 not served (KIP-896); v2 IsolationLevel; v3 same; v4
// CurrentLeaderEpoch and LeaderEpoch; v5 same; v6 flexible; v7 -3; v8 -4.

const listOffsetsKey = 2

func init() {
	register(API{Key: listOffsetsKey, MinVersion: 1, MaxVersion: 8, Handler: handleListOffsets})
}

var listOffsetsSpecialMinVersion = map[int64]int16{-1: 1, -2: 1, -3: 7, -4: 8}

func handleListOffsets(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	type tp struct {
		t string
		p int32
	}
	seen := map[tp]int{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			seen[tp{t.Topic, p.Partition}]++
		}
	}
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.Offset, rp.Timestamp, rp.LeaderEpoch = p.Partition, -1, -1, -1
			current := p.CurrentLeaderEpoch
			if req.Version < 4 {
				current = -1
			}
			ts := p.Timestamp
			minV, special := listOffsetsSpecialMinVersion[ts]
			switch {
			case seen[tp{t.Topic, p.Partition}] > 1:
				rp.ErrorCode = kerr.InvalidRequest.Code
			case ts < 0 && (!special || req.Version < minV):
				rp.ErrorCode = kerr.UnsupportedVersion.Code
			case rc.topicDenied(kmsg.ACLOperationDescribe, t.Topic) != 0:
				rp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			default:
				if ts == -4 {
					ts = node.TimestampEarliest
				}
				r := n.ListOffsetsFenced(ctx, t.Topic, p.Partition, ts, current)
				rp.ErrorCode = r.ErrorCode
				if r.ErrorCode == 0 {
					rp.Offset, rp.Timestamp, rp.LeaderEpoch = r.Offset, r.Timestamp, r.LeaderEpoch
				}
				if r.ErrorCode == 0 && req.IsolationLevel == 1 && (ts == node.TimestampLatest || ts >= 0) {
					lso, code := n.LastStableOffset(ctx, t.Topic, p.Partition)
					switch {
					case code != 0:
						rp.ErrorCode = code
					case ts == node.TimestampLatest:
						rp.Offset = lso
					case rp.Offset >= lso:
						rp.Offset, rp.Timestamp = -1, -1
					}
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
