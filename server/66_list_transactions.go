package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// ListTransactions: v0-1
//
// Behaviour (KIP-664, KIP-994):
//   - Kafka's brokers each list the transactions they coordinate, and
//     admin clients ask every broker: here the coordinator (txn.go) lists
//     every transaction and any other broker answers an empty list. Only
//     the ids the principal may DESCRIBE are listed.
//   - StateFilters (Kafka's state names; empty: all): names that are not
//     a state are echoed in UnknownStateFilters and match nothing.
//     ProducerIDFilters (empty: all). v1 DurationFilterMillis >= 0: only
//     transactions ongoing for longer than that (by this node's clock).
//     Sorted by transactional id, at most 100,000.
//
// Version notes: v0 flexible; v1 DurationFilterMillis. v2
// (TransactionalIdPattern, a Java regular expression) is not served.

const listTransactionsKey = 66

func init() {
	register(API{Key: listTransactionsKey, MinVersion: 0, MaxVersion: 1, Handler: handleListTransactions})
}

var txnStates = []meta.TxnState{meta.TxnEmpty, meta.TxnOngoing, meta.TxnPrepareCommit, meta.TxnPrepareAbort, meta.TxnCompleteCommit, meta.TxnCompleteAbort}

func handleListTransactions(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListTransactionsRequest)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	if txnCoordinator(ctx, rc) != 0 {
		return resp, nil
	}
	q := meta.QueryTxns{ProducerIDs: req.ProducerIDFilters}
	for _, f := range req.StateFilters {
		known := false
		for _, s := range txnStates {
			if s.String() == f {
				q.States, known = append(q.States, s), true
			}
		}
		if !known {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
		}
	}
	if len(req.StateFilters) > 0 && len(q.States) == 0 {
		return resp, nil // only unknown states: nothing matches
	}
	txns, err := rc.Broker.Node.Txns(q)
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	nowMs := rc.Broker.Node.NowMs()
	for _, t := range txns {
		if req.Version >= 1 && req.DurationFilterMillis >= 0 && (t.State != meta.TxnOngoing || nowMs-t.StartMs <= req.DurationFilterMillis) {
			continue
		}
		if rc.txnDenied(kmsg.ACLOperationDescribe, t.ID) != 0 {
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = t.ID, t.ProducerID, t.State.String()
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
