package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetForLeaderEpoch: v2-4
//
// Behaviour, per partition, as its leader only (NOT_LEADER_OR_FOLLOWER
// otherwise; unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION):
//   - CurrentLeaderEpoch fencing first (KIP-320): -1 skips it; older than
//     the leader's epoch is FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH.
//   - Then the log's epoch cache (core/node.OffsetForLeaderEpochFenced,
//     Kafka's LeaderEpochFileCache.endOffsetFor): the largest epoch <= the
//     requested one and the start offset of the next higher epoch, or the
//     log end for the latest epoch. A requested epoch after the log's last
//     one but not after the leader's current epoch ends at the log end (a
//     Kafka leader records its epoch at election; Chronik's log stamps
//     epochs on append only). Above the current epoch, or -1: (-1, -1), no
//     error. These answers are what franz-go validates consumer positions
//     against after leadership changes, so a consumer keeps its offsets.
//   - ReplicaID (v3+) is ignored: -1 from consumers, and there are no
//     Kafka-protocol followers.
//
// Version notes: v0-1 not served (KIP-896); v3 ReplicaID; v4 flexible.

const offsetForLeaderEpochKey = 23

func init() {
	register(API{Key: offsetForLeaderEpochKey, MinVersion: 2, MaxVersion: 4, Handler: handleOffsetForLeaderEpoch})
}

func handleOffsetForLeaderEpoch(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition = p.Partition
			if code := rc.topicDenied(kmsg.ACLOperationDescribe, t.Topic); code != 0 {
				rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = code, -1, -1
			} else {
				r := n.OffsetForLeaderEpochFenced(ctx, t.Topic, p.Partition, p.CurrentLeaderEpoch, p.LeaderEpoch)
				rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = r.ErrorCode, r.LeaderEpoch, r.EndOffset
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
