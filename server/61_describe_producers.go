package server

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeProducers: v0
//
// Behaviour:
//   - Per partition, the idempotent producers the partition's leader
//     replica knows (core/node.Producers over partition.Replica.Producers):
//     id, epoch, last sequence, last timestamp, and CurrentTxnStartOffset:
//     the first offset of the producer's open transaction on the partition
//     (-1 if none). CoordinatorEpoch is -1 (no coordinator epochs here).
//   - Leader only: NOT_LEADER_OR_FOLLOWER on followers,
//     UNKNOWN_TOPIC_OR_PARTITION for unknown topics and partitions.
//
// Version notes: v0 is flexible; the only version.

const describeProducersKey = 61

func init() {
	register(API{Key: describeProducersKey, MinVersion: 0, MaxVersion: 0, Handler: handleDescribeProducers})
}

func handleDescribeProducers(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeProducersRequest)
	if rc.Broker == nil {
		return nil, errors.New("describe producers: no broker")
	}
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = p
			if code := rc.topicDenied(kmsg.ACLOperationRead, rt.Topic); code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			ps, code := rc.Broker.Node.Producers(ctx, rt.Topic, p)
			sp.ErrorCode = code
			for _, s := range ps {
				ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
				ap.ProducerID, ap.ProducerEpoch = s.ProducerID, int32(s.ProducerEpoch)
				ap.LastSequence, ap.LastTimestamp = s.LastSequence, s.LastTimestampMs
				ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, s.CurrentTxnStartOffset
				sp.ActiveProducers = append(sp.ActiveProducers, ap)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
