package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// TxnOffsetCommit: v0-5
//
// Behaviour:
//   - WRITE on the TRANSACTIONAL_ID (TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
//     READ on the group (GROUP_AUTHORIZATION_FAILED), READ on each topic
//     (TOPIC_AUTHORIZATION_FAILED on its partitions); NOT_COORDINATOR off
//     the coordinator (the group and transaction coordinator are one
//     broker, txn.go). A failure of the request as a whole goes on every
//     partition.
//   - v3+ with a member id (KIP-447, GroupTransactSession): the group
//     coordinator validates the member and generation as OffsetCommit does
//     (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ...), so
//     a zombie consumer-producer cannot commit for partitions it lost.
//   - The offsets are staged in the transaction (meta.TxnCommitOffsets);
//     they become the group's committed offsets only when the transaction
//     commits, in the same controller entry that completes it. The group
//     must have been added with AddOffsetsToTxn to the ongoing
//     transaction, else INVALID_TXN_STATE; producer checks as
//     AddPartitionsToTxn; unknown partitions UNKNOWN_TOPIC_OR_PARTITION
//     (nothing staged). Metadata over 4096 bytes:
//     OFFSET_METADATA_TOO_LARGE.
//
//   - v5 (KIP-890 part 2): the group is added to the transaction by the
//     commit itself (no AddOffsetsToTxn needed; core/node.AddTxnGroupImplicit),
//     with AddOffsetsToTxn's checks and codes.
//
// Version notes: v1 same as v0; v2 LeaderEpoch; v3 flexible, generation,
// member and instance id; v4 same as v3 (KIP-890 part 1 marker); v5 as
// above. v6 (KIP-1319 error codes) is not served.

const txnOffsetCommitKey = 28

func init() {
	register(API{Key: txnOffsetCommitKey, MinVersion: 0, MaxVersion: 5, Handler: handleTxnOffsetCommit})
}

func handleTxnOffsetCommit(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.TxnOffsetCommitRequest)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	codes := make(partitionCodes, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	code := rc.txnDenied(kmsg.ACLOperationWrite, req.TransactionalID)
	if code == 0 {
		code = rc.groupDenied(kmsg.ACLOperationRead, req.Group)
	}
	if code == 0 {
		code = txnCommitMember(ctx, rc, req)
	}
	if code == 0 && req.Version >= 5 {
		code = rc.Broker.Node.AddTxnGroupImplicit(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group)
	}
	if code != 0 {
		codes.fill(code)
	} else {
		txnCommitOffsets(ctx, rc, req, codes)
	}
	for i, t := range req.Topics {
		rt := kmsg.NewTxnOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, fencedFor(codes[i][j], req.Version, 2)
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// txnCommitMember checks the coordinator and, for v3+ with a member id,
// the member's generation.
func txnCommitMember(ctx context.Context, rc *RequestContext, req *kmsg.TxnOffsetCommitRequest) int16 {
	gc, _, code, err := groupCoordinator(ctx, rc, req.Group)
	if err != nil {
		return kerr.UnknownServerError.Code
	}
	if code != 0 {
		return code
	}
	if req.Version >= 3 && req.MemberID != "" {
		return gc.ValidateCommit(req.Group, req.MemberID, grpDeref(req.InstanceID), req.Generation)
	}
	return 0
}

func txnCommitOffsets(ctx context.Context, rc *RequestContext, req *kmsg.TxnOffsetCommitRequest, codes [][]int16) {
	var offsets []meta.OffsetCommit
	type idx struct{ i, j int }
	var where []idx
	for i, t := range req.Topics {
		denied := rc.topicDenied(kmsg.ACLOperationRead, t.Topic)
		for j, p := range t.Partitions {
			md := grpDeref(p.Metadata)
			switch {
			case denied != 0:
				codes[i][j] = denied
			case len(md) > meta.OffsetMetadataLenMax:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				offsets = append(offsets, meta.OffsetCommit{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: md})
				where = append(where, idx{i, j})
			}
		}
	}
	if len(offsets) == 0 {
		return
	}
	out := rc.Broker.Node.TxnCommitOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, offsets)
	for k, w := range where {
		codes[w.i][w.j] = out[k].Code
	}
}
