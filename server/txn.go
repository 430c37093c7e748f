package server

import (
	"context"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// What every transaction API shares (KIP-98; the coordinator is
// core/node/txn.go over core/meta/txn.go).
//
// The transaction coordinator of every transactional id is the
// controller leader, like the group coordinator: FindCoordinator key type
// 1 names it, and AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
// TxnOffsetCommit and InitProducerId with a transactional id answer
// NOT_COORDINATOR anywhere else, so clients rediscover it after a
// controller failover. Every request needs WRITE on its TRANSACTIONAL_ID
// (else TRANSACTIONAL_ID_AUTHORIZATION_FAILED). PRODUCER_FENCED is sent
// as INVALID_PRODUCER_EPOCH to versions older than KIP-588's (fencedFor).

// partitionCodes are the error codes of a request's partitions, by topic
// then partition index (0: none yet).
type partitionCodes [][]int16

// fill sets code on every partition without one.
func (c partitionCodes) fill(code int16) {
	for i := range c {
		for j := range c[i] {
			if c[i][j] == 0 {
				c[i][j] = code
			}
		}
	}
}

// txnCoordinator is NOT_COORDINATOR unless this broker leads the
// controller shard (and is ready in its term), else 0.
func txnCoordinator(ctx context.Context, rc *RequestContext) int16 {
	if _, ok := rc.Broker.Node.CoordinatorTerm(ctx); !ok {
		return kerr.NotCoordinator.Code
	}
	return 0
}

// txnDenied is TRANSACTIONAL_ID_AUTHORIZATION_FAILED when rc may not do op
// on the transactional id, else 0.
func (rc *RequestContext) txnDenied(op kmsg.ACLOperation, id string) int16 {
	if rc.authorized(op, kmsg.ACLResourceTypeTransactionalId, id) {
		return 0
	}
	return kerr.TransactionalIDAuthorizationFailed.Code
}

// fencedFor is KIP-588's compatibility rule: clients before the version
// that introduced PRODUCER_FENCED (90) get INVALID_PRODUCER_EPOCH (47)
// instead (InitProducerId < 4, AddPartitionsToTxn, AddOffsetsToTxn,
// EndTxn and TxnOffsetCommit < 2).
func fencedFor(code, version, since int16) int16 {
	if code == kerr.ProducerFenced.Code && version < since {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

// txnBatchProducer returns the producer id and epoch of the first
// transactional batch in b (whole v2 batches), if any.
func txnBatchProducer(b []byte) (pid int64, epoch int16, ok bool) {
	for len(b) >= batchPrefixBytes {
		if binary.BigEndian.Uint16(b[batchAttrOffset:])&batchAttrTxn != 0 {
			return int64(binary.BigEndian.Uint64(b[43:])), int16(binary.BigEndian.Uint16(b[51:])), true
		}
		l := int32(binary.BigEndian.Uint32(b[batchLengthOffset:]))
		if l < 0 || int(l)+batchLengthOverhead > len(b) {
			return 0, 0, false
		}
		b = b[int(l)+batchLengthOverhead:]
	}
	return 0, 0, false
}

// verifyTxnProduce is KIP-890 part 1 for one partition of a produce with
// a transactional id: the producer's ongoing transaction must hold the
// partition, with the batch's epoch (core/node.VerifyTxnProduce). From
// Produce v12 (KIP-890 part 2) a partition not yet in the transaction is
// added to it instead (core/node.AddTxnProduce).
func verifyTxnProduce(ctx context.Context, rc *RequestContext, version int16, txnID, topic string, part int32, records []byte) int16 {
	pid, epoch, ok := txnBatchProducer(records)
	if !ok {
		return 0 // no transactional batch: plain idempotent data
	}
	if version >= produceImplicitAddVersion {
		return rc.Broker.Node.AddTxnProduce(ctx, txnID, topic, part, pid, epoch)
	}
	return rc.Broker.Node.VerifyTxnProduce(ctx, topic, part, pid, epoch)
}

// produceImplicitAddVersion is the first Produce version whose
// transactional batches add their partition to the transaction.
const produceImplicitAddVersion = 12
