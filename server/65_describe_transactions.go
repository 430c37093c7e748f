package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeTransactions: v0
//
// Behaviour (KIP-664):
//   - Per transactional id: DESCRIBE on it, else
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED; NOT_COORDINATOR off the
//     coordinator (txn.go); an unknown id TRANSACTIONAL_ID_NOT_FOUND.
//   - State (Kafka's names: Empty, Ongoing, PrepareCommit, PrepareAbort,
//     CompleteCommit, CompleteAbort), timeout, start timestamp of the
//     ongoing transaction (-1 if none), producer id and epoch, and its
//     partitions by topic (while preparing: those whose marker is not yet
//     written), from the coordinator's replicated state.
//
// Version notes: v0 flexible; the only version.

const describeTransactionsKey = 65

func init() {
	register(API{Key: describeTransactionsKey, MinVersion: 0, MaxVersion: 0, Handler: handleDescribeTransactions})
}

func handleDescribeTransactions(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeTransactionsRequest)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	coord := txnCoordinator(ctx, rc)
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.ProducerEpoch, st.StartTimestamp = id, -1, -1, -1
		st.ErrorCode = rc.txnDenied(kmsg.ACLOperationDescribe, id)
		if st.ErrorCode == 0 {
			st.ErrorCode = coord
		}
		if st.ErrorCode == 0 {
			t, ok := rc.Broker.Node.Txn(id)
			if !ok {
				st.ErrorCode = kerr.TransactionalIDNotFound.Code
			} else {
				st.State, st.TimeoutMillis, st.StartTimestamp = t.State.String(), t.TimeoutMs, t.StartMs
				st.ProducerID, st.ProducerEpoch = t.ProducerID, t.Epoch
				for _, p := range t.Partitions { // sorted by topic
					if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != p.Topic {
						rt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
						rt.Topic = p.Topic
						st.Topics = append(st.Topics, rt)
					}
					last := &st.Topics[len(st.Topics)-1]
					last.Partitions = append(last.Partitions, p.Partition)
				}
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
