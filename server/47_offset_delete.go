package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/meta"
)

// OffsetDelete: v0
//
// Behaviour (Kafka's GroupCoordinator.handleDeleteOffsets):
//   - NOT_COORDINATOR (top level) on a broker that is not the coordinator.
//   - A group with members using a protocol type other than "consumer":
//     NON_EMPTY_GROUP. A "consumer" group with members: partitions of
//     topics some member subscribes to get GROUP_SUBSCRIBED_TO_TOPIC. The
//     subscriptions are read from the members' ConsumerMemberMetadata,
//     which the coordinator exposes only while the group is Stable; in any
//     other state (rebalancing), or if a member's metadata does not parse,
//     every topic counts as subscribed (Kafka: unknown subscriptions are
//     treated as subscribed).
//   - The other partitions' offsets are deleted through the controller; a
//     group without committed offsets: GROUP_ID_NOT_FOUND; an unknown
//     topic or partition: UNKNOWN_TOPIC_OR_PARTITION on that partition.

const offsetDeleteKey = 47

func init() {
	register(API{Key: offsetDeleteKey, MinVersion: 0, MaxVersion: 0, Handler: handleOffsetDelete})
}

func handleOffsetDelete(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if code := rc.groupDenied(kmsg.ACLOperationDelete, req.Group); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	gc, _, code, err := groupCoordinator(ctx, rc, req.Group)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	// subscribed(topic): nil means "no members" (nothing subscribed).
	var subscribed func(string) bool
	if d := gc.Describe([]string{req.Group})[0]; d.Known && d.State != group.Empty && len(d.Members) > 0 {
		if d.ProtocolType != "consumer" {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return resp, nil
		}
		subscribed = func(string) bool { return true }
		if d.State == group.Stable {
			topics := map[string]bool{}
			ok := true
			for _, m := range d.Members {
				var md kmsg.ConsumerMemberMetadata
				if err := md.ReadFrom(m.Metadata); err != nil {
					ok = false
					break
				}
				for _, t := range md.Topics {
					topics[t] = true
				}
			}
			if ok {
				subscribed = func(t string) bool { return topics[t] }
			}
		}
	}
	codes := make([][]int16, len(req.Topics))
	cmd := meta.DeleteOffsets{Group: req.Group}
	type idx struct{ i, j int }
	var where []idx
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		for j, p := range t.Partitions {
			if code := rc.topicDenied(kmsg.ACLOperationRead, t.Topic); code != 0 {
				codes[i][j] = code
				continue
			}
			if subscribed != nil && subscribed(t.Topic) {
				codes[i][j] = kerr.GroupSubscribedToTopic.Code
				continue
			}
			cmd.Partitions = append(cmd.Partitions, meta.TopicPartition{Topic: t.Topic, Partition: p.Partition})
			where = append(where, idx{i, j})
		}
	}
	if len(cmd.Partitions) > 0 {
		top, parts := rc.Broker.Node.DeleteOffsets(ctx, cmd)
		if len(parts) == len(where) {
			for k, pc := range parts {
				codes[where[k].i][where[k].j] = pc.Code
			}
		} else if top != 0 {
			resp.ErrorCode = top
		}
		if top != 0 && len(parts) != len(where) {
			resp.Topics = nil
			return resp, nil
		}
	} else if offs, err := rc.Broker.Node.FetchOffsets(req.Group); err == nil && len(offs) == 0 && subscribed == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp, nil
	}
	for i, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		for j, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
