package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// EndTxn: v0-5
//
// Behaviour (Kafka's TransactionCoordinator.handleEndTransaction):
//   - WRITE on the TRANSACTIONAL_ID (TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
//     NOT_COORDINATOR off the coordinator (txn.go).
//   - An ongoing transaction becomes PrepareCommit or PrepareAbort in the
//     controller shard (replicated: the decision survives any failover);
//     the partition leaders then write the markers and the transaction
//     completes (core/node/txn.go). The answer waits up to 2 s for the
//     markers (it is correct without: the next AddPartitionsToTxn would
//     get CONCURRENT_TRANSACTIONS until they are written). A retry of a
//     completed EndTxn with the same decision succeeds; one still being
//     written is CONCURRENT_TRANSACTIONS; the other decision, or no
//     transaction: INVALID_TXN_STATE. Another epoch: PRODUCER_FENCED (a
//     transaction aborted by its timeout bumped the epoch, so its
//     producer's commit is fenced); another producer id:
//     INVALID_PRODUCER_ID_MAPPING.
//
//   - v5 (KIP-890 part 2): the decision bumps the producer's epoch (at
//     exhaustion: a new producer id at epoch 0), the markers carry the
//     bumped epoch, and the answer carries ProducerID/ProducerEpoch for
//     the next transaction. A retry with the epoch just below (after an
//     end) is answered with the current identity (same decision) or
//     INVALID_TXN_STATE; an abort with no transaction ongoing is legal and
//     bumps too; older epochs: PRODUCER_FENCED (meta.EndTxn).
//
// Version notes: v1, v2 same as v0; v3 flexible; v4 same as v3 (KIP-588
// error semantics); v5 as above (ProducerID/ProducerEpoch -1 on error).

const endTxnKey = 26

func init() {
	register(API{Key: endTxnKey, MinVersion: 0, MaxVersion: 5, Handler: handleEndTxn})
}

func handleEndTxn(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.EndTxnRequest)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if resp.ErrorCode = rc.txnDenied(kmsg.ACLOperationWrite, req.TransactionalID); resp.ErrorCode != 0 {
		return resp, nil
	}
	if resp.ErrorCode = txnCoordinator(ctx, rc); resp.ErrorCode != 0 {
		return resp, nil
	}
	r := rc.Broker.Node.EndTxn(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5)
	resp.ErrorCode = fencedFor(r.Code, req.Version, 2)
	if r.Code == 0 && req.Version >= 5 {
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.Epoch
	}
	return resp, nil
}
