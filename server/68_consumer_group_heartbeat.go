package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
)

// ConsumerGroupHeartbeat: v0-1 (KIP-848, the consumer group protocol)
//
// Behaviour:
//   - READ on the group (GROUP_AUTHORIZATION_FAILED); DESCRIBE on every
//     subscribed topic name (TOPIC_AUTHORIZATION_FAILED); a regex
//     subscription resolves only to topics the member's principal may
//     DESCRIBE (internal topics never match).
//   - NOT_COORDINATOR on a broker that is not the coordinator (the
//     controller leader); otherwise core/group's answer: join (epoch 0),
//     heartbeat, leave (-1), static leave (-2); server-side assignors
//     "uniform" (default) and "range"; UNKNOWN_MEMBER_ID,
//     FENCED_MEMBER_EPOCH (also for a member of a group this coordinator
//     does not hold: the coordinator moved and the group had no record
//     to load; the member rejoins with epoch 0), UNSUPPORTED_ASSIGNOR, UNRELEASED_INSTANCE_ID,
//     INVALID_REGULAR_EXPRESSION, INVALID_REQUEST (e.g. a join without a
//     subscription), GROUP_MAX_SIZE_REACHED, INCONSISTENT_GROUP_PROTOCOL
//     for a classic group with members (mixed groups are not served).
//   - A successful join or heartbeat is answered once the group's record
//     (members, epochs, assignments) committed to the controller shard;
//     NOT_COORDINATOR if that write failed (the client retries).
//   - The answer's assignment names topics by id.
//
// Version notes: v0 the coordinator mints member ids; v1 the client does
// (an empty member id is INVALID_REQUEST) and may subscribe by regex.

const consumerGroupHeartbeatKey = 68

func init() {
	register(API{Key: consumerGroupHeartbeatKey, MinVersion: 0, MaxVersion: 1, Handler: handleConsumerGroupHeartbeat})
}

func handleConsumerGroupHeartbeat(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	fail := func(code int16) (kmsg.Response, error) {
		resp.ErrorCode, resp.MemberEpoch = code, req.MemberEpoch
		return resp, nil
	}
	if code := rc.groupDenied(kmsg.ACLOperationRead, req.Group); code != 0 {
		return fail(code)
	}
	for _, t := range req.SubscribedTopicNames {
		if code := rc.topicDenied(kmsg.ACLOperationDescribe, t); code != 0 {
			return fail(code)
		}
	}
	gc, _, code, err := groupCoordinator(ctx, rc, req.Group)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return fail(code)
	}
	gr := group.ConsumerHeartbeatRequest{
		Version: req.Version, Group: req.Group, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch,
		InstanceID: req.InstanceID, RackID: req.RackID, RebalanceTimeoutMs: req.RebalanceTimeoutMillis,
		SubscribedTopicNames: req.SubscribedTopicNames, ServerAssignor: req.ServerAssignor,
		ClientID: rc.ClientID, ClientHost: grpClientHost(rc),
	}
	if req.Version >= 1 {
		gr.SubscribedTopicRegex = req.SubscribedTopicRegex
	}
	if rc.authorizerOn() {
		gr.TopicAllowed = func(t string) bool { return rc.topicDenied(kmsg.ACLOperationDescribe, t) == 0 }
	}
	if req.Topics != nil {
		gr.Owned = make([]group.TopicPartitions, 0, len(req.Topics))
		for _, t := range req.Topics {
			gr.Owned = append(gr.Owned, group.TopicPartitions{TopicID: t.TopicID, Partitions: t.Partitions})
		}
	}
	// Answered once the group's record reflecting the answer committed
	// (core/group, "Consumer protocol"): a write bounded by the group
	// record writer's timeout. An error is ctx's: the client has gone.
	r, err := gc.ConsumerHeartbeat(ctx, gr)
	if err != nil {
		return nil, err
	}
	resp.ErrorCode, resp.MemberEpoch, resp.HeartbeatIntervalMillis = r.ErrorCode, r.MemberEpoch, r.HeartbeatIntervalMs
	if r.ErrorMessage != "" {
		resp.ErrorMessage = &r.ErrorMessage
	}
	if r.MemberID != "" {
		resp.MemberID = &r.MemberID
	}
	if r.ErrorCode == 0 && r.HasAssignment {
		a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
		a.Topics = make([]kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic, 0, len(r.Assignment))
		for _, t := range r.Assignment {
			at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
			at.TopicID, at.Partitions = t.TopicID, t.Partitions
			a.Topics = append(a.Topics, at)
		}
		resp.Assignment = &a
	}
	return resp, nil
}
