package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords: v0-2
//
// Behaviour:
//   - Moves each partition's log start offset to Offset through the
//     partition's Raft log (core/node.DeleteRecords), as its leader only
//     (NOT_LEADER_OR_FOLLOWER otherwise). Offset -1 means the high
//     watermark; an offset above the high watermark or below -1 is
//     OFFSET_OUT_OF_RANGE (core/partition). LowWatermark is the new log
//     start offset.
//   - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
//   - TimeoutMillis bounds the whole request (admTimeout).
//
// Version notes: v1 same as v0; v2 flexible.

const deleteRecordsKey = 21

func init() {
	register(API{Key: deleteRecordsKey, MinVersion: 0, MaxVersion: 2, Handler: handleDeleteRecords})
}

func handleDeleteRecords(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	ctx, cancel := context.WithTimeout(ctx, admTimeout(req.TimeoutMillis))
	defer cancel()
	for _, t := range req.Topics {
		rt := kmsg.NewDeleteRecordsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewDeleteRecordsResponseTopicPartition()
			rp.Partition = p.Partition
			if code := rc.topicDenied(kmsg.ACLOperationDelete, t.Topic); code != 0 {
				rp.ErrorCode, rp.LowWatermark = code, -1
			} else {
				r := n.DeleteRecords(ctx, t.Topic, p.Partition, p.Offset)
				rp.ErrorCode, rp.LowWatermark = r.ErrorCode, r.LowWatermark
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
