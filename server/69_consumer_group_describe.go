package server

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
)

// ConsumerGroupDescribe: v0-1 (KIP-848)
//
// Behaviour:
//   - DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED for that group).
//   - NOT_COORDINATOR on every group on a broker that is not the
//     coordinator; GROUP_ID_NOT_FOUND for a group not held here or a
//     classic group (as Kafka).
//   - Members by member id, with their current and target assignments
//     (topic id and name); topics the principal may not DESCRIBE are left
//     out of the assignments (Kafka answers TOPIC_AUTHORIZATION_FAILED for
//     the group instead; see DESIGN.md).
//   - Authorized operations: INT32_MIN unless requested, else the group
//     operations the principal may do.
//
// Version notes: v1 MemberType (1: consumer protocol).

const consumerGroupDescribeKey = 69

func init() {
	register(API{Key: consumerGroupDescribeKey, MinVersion: 0, MaxVersion: 1, Handler: handleConsumerGroupDescribe})
}

func handleConsumerGroupDescribe(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	var descs []group.ConsumerGroupDescription
	for _, id := range req.Groups {
		gc, _, code, err := groupCoordinator(ctx, rc, id)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			descs = append(descs, group.ConsumerGroupDescription{Group: id, ErrorCode: code, State: group.ConsumerDead})
			continue
		}
		descs = append(descs, gc.ConsumerDescribe([]string{id})...)
	}
	for _, d := range descs {
		g := kmsg.NewConsumerGroupDescribeResponseGroup()
		g.Group, g.AuthorizedOperations = d.Group, math.MinInt32
		if code := rc.groupDenied(kmsg.ACLOperationDescribe, d.Group); code != 0 {
			g.ErrorCode, g.State = code, group.ConsumerDead.String()
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.ErrorCode, g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName = d.ErrorCode, d.State.String(), d.Epoch, d.AssignmentEpoch, d.AssignorName
		if d.ErrorMessage != "" {
			msg := d.ErrorMessage
			g.ErrorMessage = &msg
		}
		if req.IncludeAuthorizedOperations && d.ErrorCode == 0 {
			g.AuthorizedOperations = groupOperations
			if rc.authorizerOn() {
				g.AuthorizedOperations = rc.authorizedOps(kmsg.ACLResourceTypeGroup, d.Group)
			}
		}
		for _, m := range d.Members {
			rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.RackID, rm.MemberEpoch = m.MemberID, grpNullable(m.InstanceID), grpNullable(m.RackID), m.MemberEpoch
			rm.ClientID, rm.ClientHost, rm.SubscribedTopics = m.ClientID, m.ClientHost, m.SubscribedTopicNames
			if rm.SubscribedTopics == nil {
				rm.SubscribedTopics = []string{}
			}
			rm.SubscribedTopicRegex = grpNullable(m.SubscribedTopicRegex)
			rm.Assignment.TopicPartitions = describedAssignment(rc, m.Assignment)
			rm.TargetAssignment.TopicPartitions = describedAssignment(rc, m.TargetAssignment)
			rm.MemberType = 1
			g.Members = append(g.Members, rm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// describedAssignment lists tps, leaving out topics rc may not DESCRIBE.
func describedAssignment(rc *RequestContext, tps []group.TopicPartitions) []kmsg.AssignmentTopicPartition {
	out := make([]kmsg.AssignmentTopicPartition, 0, len(tps))
	for _, t := range tps {
		if rc.topicDenied(kmsg.ACLOperationDescribe, t.Topic) != 0 {
			continue
		}
		a := kmsg.NewAssignmentTopicPartition()
		a.TopicID, a.Topic, a.Partitions = t.TopicID, t.Topic, t.Partitions
		out = append(out, a)
	}
	return out
}
