package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// AddPartitionsToTxn: v0-3
//
// Behaviour (Kafka's TransactionCoordinator.handleAddPartitionsToTransaction):
//   - WRITE on the TRANSACTIONAL_ID, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED
//     on every partition; WRITE on each topic, else
//     TOPIC_AUTHORIZATION_FAILED on its partitions and OPERATION_NOT_ATTEMPTED
//     on the rest. NOT_COORDINATOR off the coordinator (txn.go).
//   - Through the controller shard (meta.AddTxnPartitions), all or
//     nothing: an unknown partition is UNKNOWN_TOPIC_OR_PARTITION and the
//     others OPERATION_NOT_ATTEMPTED. A producer id not holding the
//     transactional id: INVALID_PRODUCER_ID_MAPPING; another epoch:
//     PRODUCER_FENCED; a transaction whose markers are being written:
//     CONCURRENT_TRANSACTIONS (clients retry). The first add starts the
//     transaction (its transaction.timeout.ms runs from here).
//
// Version notes: v1 same as v0; v2 same (throttle); v3 flexible. v4+ (the
// batched form brokers use to verify, KIP-890 part 1) is not served: our
// partition leaders read the coordinator's replicated state instead
// (core/node.VerifyTxnProduce).

const addPartitionsToTxnKey = 24

func init() {
	register(API{Key: addPartitionsToTxnKey, MinVersion: 0, MaxVersion: 3, Handler: handleAddPartitionsToTxn})
}

func handleAddPartitionsToTxn(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	codes := make(partitionCodes, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	code := rc.txnDenied(kmsg.ACLOperationWrite, req.TransactionalID)
	if code == 0 {
		code = txnCoordinator(ctx, rc)
	}
	if code != 0 {
		codes.fill(code)
	} else {
		denied := false
		for i, t := range req.Topics {
			if c := rc.topicDenied(kmsg.ACLOperationWrite, t.Topic); c != 0 {
				denied = true
				for j := range codes[i] {
					codes[i][j] = c
				}
			}
		}
		if denied {
			codes.fill(kerr.OperationNotAttempted.Code)
		} else {
			addTxnPartitions(ctx, rc, req, codes)
		}
	}
	for i, t := range req.Topics {
		rt := kmsg.NewAddPartitionsToTxnResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, fencedFor(codes[i][j], req.Version, 2)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func addTxnPartitions(ctx context.Context, rc *RequestContext, req *kmsg.AddPartitionsToTxnRequest, codes [][]int16) {
	var tps []meta.TopicPartition
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			tps = append(tps, meta.TopicPartition{Topic: t.Topic, Partition: p})
		}
	}
	out := rc.Broker.Node.AddTxnPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, tps)
	k := 0
	for i := range codes {
		for j := range codes[i] {
			codes[i][j] = out[k].Code
			k++
		}
	}
}
