package server

import (
	"context"
	"errors"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: v0-5
//
// Behaviour:
//   - A non-null TransactionalID (txn.go) goes to the transaction
//     coordinator (the controller leader; NOT_COORDINATOR elsewhere) and
//     needs WRITE on the TRANSACTIONAL_ID. TransactionTimeoutMillis
//     outside (0, 900000]: INVALID_TRANSACTION_TIMEOUT. A new id gets a
//     new producer id at epoch 0; a known one its epoch bumped, which
//     fences the previous instance (PRODUCER_FENCED on its coordinator
//     requests, INVALID_PRODUCER_EPOCH on its produces once a marker with
//     the new epoch is written). An ongoing transaction is aborted first
//     (with the bumped epoch) and the answer is CONCURRENT_TRANSACTIONS,
//     which clients retry; so is a transaction whose markers are being
//     written. v3+ ProducerID/ProducerEpoch set must match the id's
//     current ones, else PRODUCER_FENCED.
//   - A null TransactionalID is an idempotent producer:
//   - A new producer id (epoch 0) comes from core/node.InitProducerID (a
//     per-node cache of blocks allocated through the controller: ids are
//     never reused across the cluster).
//   - v3+ with ProducerID and ProducerEpoch set (KIP-360, after an
//     OUT_OF_ORDER_SEQUENCE or UNKNOWN_PRODUCER_ID on the client): the same
//     id with epoch+1; the partition state machine accepts a higher epoch
//     starting at sequence 0. When epoch+1 would reach math.MaxInt16 a new
//     id with epoch 0 is allocated instead. Exactly one of the two set
//     (the other -1), or a negative epoch with an id: INVALID_REQUEST.
//     Deviation: Kafka hands an idempotent (non-transactional) producer a
//     fresh id even then; the bump keeps the producer table small and is
//     what the brief for this broker asks.
//
// Version notes: v1 same as v0; v2 flexible; v3 ProducerID/ProducerEpoch;
// v4 same as v3 (KIP-588 errors); v5 same as v4 (KIP-890 marker).

const initProducerIDKey = 22

func init() {
	register(API{Key: initProducerIDKey, MinVersion: 0, MaxVersion: 5, Handler: handleInitProducerID})
}

func handleInitProducerID(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	if rc.Broker == nil {
		return nil, errors.New("init producer id: no broker")
	}
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		return initTxnProducer(ctx, rc, req, resp), nil
	}
	if !rc.authorizedCluster(kmsg.ACLOperationIdempotentWrite) && !rc.mayWriteSomeTopic() {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	if req.Version >= 3 {
		hasID, hasEpoch := req.ProducerID != -1, req.ProducerEpoch != -1
		switch {
		case hasID != hasEpoch, hasID && (req.ProducerID < 0 || req.ProducerEpoch < 0):
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp, nil
		case hasID && req.ProducerEpoch < math.MaxInt16-1:
			resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
			return resp, nil
		}
	}
	id, epoch, code := rc.Broker.Node.InitProducerID(ctx)
	resp.ErrorCode = code
	if code == 0 {
		resp.ProducerID, resp.ProducerEpoch = id, epoch
	}
	return resp, nil
}

func initTxnProducer(ctx context.Context, rc *RequestContext, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) *kmsg.InitProducerIDResponse {
	id := *req.TransactionalID
	if resp.ErrorCode = rc.txnDenied(kmsg.ACLOperationWrite, id); resp.ErrorCode != 0 {
		return resp
	}
	if id == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	if resp.ErrorCode = txnCoordinator(ctx, rc); resp.ErrorCode != 0 {
		return resp
	}
	expectedPID, expectedEpoch := int64(-1), int16(-1)
	if req.Version >= 3 && req.ProducerID >= 0 {
		expectedPID, expectedEpoch = req.ProducerID, req.ProducerEpoch
	}
	r := rc.Broker.Node.InitTxnProducer(ctx, id, req.TransactionTimeoutMillis, expectedPID, expectedEpoch)
	resp.ErrorCode = fencedFor(r.Code, req.Version, 4)
	if r.Code == 0 {
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.Epoch
	}
	return resp
}
