package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// AddPartitionsToTxn: v0-5
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
//   - v4-5 (KIP-890: the batched form brokers send): CLUSTER_ACTION on the
//     cluster, else CLUSTER_AUTHORIZATION_FAILED for the request; at most
//     addTxnsPerRequestMax transactions (INVALID_REQUEST beyond). Each
//     transaction is handled as above, or with VerifyOnly checked only:
//     its producer's ongoing transaction at that epoch must hold each
//     partition (INVALID_TXN_STATE per partition otherwise;
//     PRODUCER_FENCED for another epoch, INVALID_PRODUCER_ID_MAPPING for
//     another producer id), nothing is changed. Our own partition leaders
//     need none of it: they read the coordinator's replicated state
//     (core/node.VerifyTxnProduce).
//
// Version notes: v1 same as v0; v2 same (throttle); v3 flexible; v4
// batched (above); v5 same as v4 (KIP-890 part 2).

const (
	addPartitionsToTxnKey = 24
	// addTxnsPerRequestMax bounds the transactions of one v4+ request.
	addTxnsPerRequestMax = 1000
)

func init() {
	register(API{Key: addPartitionsToTxnKey, MinVersion: 0, MaxVersion: 5, Handler: handleAddPartitionsToTxn})
}

// txnTopic is one topic's partitions of an AddPartitionsToTxn request,
// whichever version's form.
type txnTopic struct {
	topic string
	parts []int32
}

func handleAddPartitionsToTxn(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AddPartitionsToTxnRequest)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	if req.Version >= 4 {
		return addPartitionsBatched(ctx, rc, req, resp), nil
	}
	topics := make([]txnTopic, len(req.Topics))
	for i, t := range req.Topics {
		topics[i] = txnTopic{t.Topic, t.Partitions}
	}
	codes := addPartitionsOne(ctx, rc, req.TransactionalID, req.ProducerID, req.ProducerEpoch, false, topics)
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

// addPartitionsBatched answers v4+: one result per transaction.
func addPartitionsBatched(ctx context.Context, rc *RequestContext, req *kmsg.AddPartitionsToTxnRequest, resp *kmsg.AddPartitionsToTxnResponse) *kmsg.AddPartitionsToTxnResponse {
	switch {
	case !rc.authorizedCluster(kmsg.ACLOperationClusterAction):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp
	case len(req.Transactions) > addTxnsPerRequestMax:
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	for _, tx := range req.Transactions {
		topics := make([]txnTopic, len(tx.Topics))
		for i, t := range tx.Topics {
			topics[i] = txnTopic{t.Topic, t.Partitions}
		}
		codes := addPartitionsOne(ctx, rc, tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly, topics)
		rtx := kmsg.NewAddPartitionsToTxnResponseTransaction()
		rtx.TransactionalID = tx.TransactionalID
		for i, t := range tx.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				rp.Partition, rp.ErrorCode = p, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			rtx.Topics = append(rtx.Topics, rt)
		}
		resp.Transactions = append(resp.Transactions, rtx)
	}
	return resp
}

// addPartitionsOne handles one transaction's partitions: one code per
// partition, in request order.
func addPartitionsOne(ctx context.Context, rc *RequestContext, id string, pid int64, epoch int16, verifyOnly bool, topics []txnTopic) [][]int16 {
	codes := make(partitionCodes, len(topics))
	for i, t := range topics {
		codes[i] = make([]int16, len(t.parts))
	}
	code := rc.txnDenied(kmsg.ACLOperationWrite, id)
	if code == 0 {
		code = txnCoordinator(ctx, rc)
	}
	if code != 0 {
		codes.fill(code)
		return codes
	}
	denied := false
	for i, t := range topics {
		if c := rc.topicDenied(kmsg.ACLOperationWrite, t.topic); c != 0 {
			denied = true
			for j := range codes[i] {
				codes[i][j] = c
			}
		}
	}
	switch {
	case denied:
		codes.fill(kerr.OperationNotAttempted.Code)
	case verifyOnly:
		verifyTxnPartitions(ctx, rc, id, pid, epoch, topics, codes)
	default:
		addTxnPartitions(ctx, rc, id, pid, epoch, topics, codes)
	}
	return codes
}

// verifyTxnPartitions is VerifyOnly: codes only, nothing changed.
func verifyTxnPartitions(ctx context.Context, rc *RequestContext, id string, pid int64, epoch int16, topics []txnTopic, codes [][]int16) {
	t, ok := rc.Broker.Node.Txn(id)
	switch {
	case !ok || t.ProducerID != pid:
		partitionCodes(codes).fill(kerr.InvalidProducerIDMapping.Code)
		return
	case t.Epoch != epoch:
		partitionCodes(codes).fill(kerr.ProducerFenced.Code)
		return
	}
	for i, tp := range topics {
		for j, p := range tp.parts {
			c := rc.Broker.Node.VerifyTxnProduce(ctx, tp.topic, p, pid, epoch)
			if c == kerr.InvalidProducerEpoch.Code {
				c = kerr.ProducerFenced.Code
			}
			codes[i][j] = c
		}
	}
}

func addTxnPartitions(ctx context.Context, rc *RequestContext, id string, pid int64, epoch int16, topics []txnTopic, codes [][]int16) {
	var tps []meta.TopicPartition
	for _, t := range topics {
		for _, p := range t.parts {
			tps = append(tps, meta.TopicPartition{Topic: t.topic, Partition: p})
		}
	}
	out := rc.Broker.Node.AddTxnPartitions(ctx, id, pid, epoch, tps)
	k := 0
	for i := range codes {
		for j := range codes[i] {
			codes[i][j] = out[k].Code
			k++
		}
	}
}
