package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// OffsetCommit: v2-9
//
// Behaviour:
//   - NOT_COORDINATOR on every partition on a broker that is not the
//     coordinator. Empty group id: INVALID_GROUP_ID.
//   - The coordinator checks membership first (core/group ValidateCommit:
//     generation -1 with no member id is a simple/admin commit, allowed
//     for Empty or unknown groups); a failure puts its code on every
//     partition. A valid member's commit counts as a heartbeat.
//   - Offsets are committed through the controller shard (replicated,
//     durable when answered). Metadata over 4096 bytes:
//     OFFSET_METADATA_TOO_LARGE for that partition; unknown topic or
//     partition: UNKNOWN_TOPIC_OR_PARTITION for that partition. The
//     controller commits all or nothing, so the valid partitions of a
//     request with failing ones are committed in a second proposal:
//     per-partition outcomes as in Kafka.
//   - v2-4 RetentionTimeMillis is ignored (offsets do not expire).
//   - v9 (KIP-848): for a consumer-protocol group the generation is the
//     member epoch (FENCED_MEMBER_EPOCH above the member's, and
//     STALE_MEMBER_EPOCH below it except its previous epoch); such groups
//     refuse v2-8 commits from members (UNSUPPORTED_VERSION). A v9 commit
//     with a member id to a group not held here is accepted (its member
//     may belong to a consumer group of an earlier coordinator tenure).
//     Classic groups: as v8.
//
// Version notes: v0-1 not served (KIP-896); v3 throttle; v5 drops
// retention; v6 leader epoch; v7 instance id; v8 flexible; v9 KIP-848.

const offsetCommitKey = 8

func init() {
	register(API{Key: offsetCommitKey, MinVersion: 2, MaxVersion: 9, Handler: handleOffsetCommit})
}

func handleOffsetCommit(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	// codes[i][j] is the outcome of req.Topics[i].Partitions[j].
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	all := func(code int16) {
		for i := range codes {
			for j := range codes[i] {
				codes[i][j] = code
			}
		}
	}
	gc, _, code, err := groupCoordinator(ctx, rc, req.Group)
	switch {
	case err != nil:
		return nil, err
	case code != 0:
		all(code)
	case req.Group == "":
		all(kerr.InvalidGroupID.Code)
	case rc.groupDenied(kmsg.ACLOperationRead, req.Group) != 0:
		all(kerr.GroupAuthorizationFailed.Code)
	default:
		if code := gc.ValidateOffsetCommit(req.Group, req.MemberID, grpDeref(req.InstanceID), req.Generation, req.Version); code != 0 {
			all(code)
		} else {
			for i, t := range req.Topics {
				if code := rc.topicDenied(kmsg.ACLOperationRead, t.Topic); code != 0 {
					for j := range codes[i] {
						codes[i][j] = code
					}
				}
			}
			commitOffsets(ctx, rc, req, codes)
		}
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetCommitResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetCommitResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// commitOffsets commits the request's offsets and fills codes.
func commitOffsets(ctx context.Context, rc *RequestContext, req *kmsg.OffsetCommitRequest, codes [][]int16) {
	type idx struct{ i, j int }
	var cmd meta.CommitOffsets
	var where []idx
	cmd.Group = req.Group
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			if codes[i][j] != 0 { // refused already (authorization)
				continue
			}
			md := grpDeref(p.Metadata)
			if len(md) > meta.OffsetMetadataLenMax {
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			epoch := p.LeaderEpoch
			if req.Version < 6 {
				epoch = -1
			}
			cmd.Offsets = append(cmd.Offsets, meta.OffsetCommit{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: epoch, Metadata: md})
			where = append(where, idx{i, j})
		}
	}
	for attempt := 0; attempt < 2 && len(cmd.Offsets) > 0; attempt++ {
		res := rc.Broker.Node.CommitOffsets(ctx, cmd)
		var retry meta.CommitOffsets
		var retryWhere []idx
		retry.Group = cmd.Group
		failed := false
		for _, pc := range res {
			if pc.Code != 0 {
				failed = true
			}
		}
		for k, pc := range res {
			w := where[k]
			codes[w.i][w.j] = pc.Code
			if failed && pc.Code == 0 {
				// Valid, but not committed because another partition
				// failed: commit those alone.
				retry.Offsets = append(retry.Offsets, cmd.Offsets[k])
				retryWhere = append(retryWhere, w)
			}
		}
		if !failed {
			return
		}
		if attempt == 1 {
			for _, w := range retryWhere {
				codes[w.i][w.j] = kerr.RequestTimedOut.Code
			}
			return
		}
		cmd, where = retry, retryWhere
	}
}
