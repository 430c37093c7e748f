package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AddOffsetsToTxn: v0-3
//
// Behaviour:
//   - WRITE on the TRANSACTIONAL_ID (TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
//     READ on the group (GROUP_AUTHORIZATION_FAILED); NOT_COORDINATOR off
//     the coordinator (txn.go).
//   - Adds the group to the producer's transaction (meta.AddTxnGroup,
//     starting the transaction if none is ongoing): its TxnOffsetCommits
//     are then staged in the coordinator's state and committed atomically
//     with the transaction. Kafka adds the group's __consumer_offsets
//     partition; here the offsets live in the same controller shard as the
//     transaction, so the commit needs no marker. Producer checks as
//     AddPartitionsToTxn.
//
// Version notes: v1, v2 same as v0; v3 flexible. v4 (KIP-890's
// TRANSACTION_ABORTABLE marker) is not served.

const addOffsetsToTxnKey = 25

func init() {
	register(API{Key: addOffsetsToTxnKey, MinVersion: 0, MaxVersion: 3, Handler: handleAddOffsetsToTxn})
}

func handleAddOffsetsToTxn(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AddOffsetsToTxnRequest)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if resp.ErrorCode = rc.txnDenied(kmsg.ACLOperationWrite, req.TransactionalID); resp.ErrorCode != 0 {
		return resp, nil
	}
	if resp.ErrorCode = rc.groupDenied(kmsg.ACLOperationRead, req.Group); resp.ErrorCode != 0 {
		return resp, nil
	}
	if resp.ErrorCode = txnCoordinator(ctx, rc); resp.ErrorCode != 0 {
		return resp, nil
	}
	resp.ErrorCode = fencedFor(rc.Broker.Node.AddTxnGroup(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group), req.Version, 2)
	return resp, nil
}
