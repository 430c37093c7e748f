package server

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
)

// DescribeGroups: v0-5
//
// Behaviour:
//   - NOT_COORDINATOR on every group on a broker that is not the
//     coordinator.
//   - A group with members: core/group's description (metadata and
//     assignments only when Stable, as in Kafka). A group that only has
//     committed offsets: Empty, protocol type "". An unknown group: state
//     Dead, no error (Kafka's classic answer; GROUP_ID_NOT_FOUND is v6+,
//     not served).
//   - A consumer-protocol (KIP-848) group: protocol type "consumer", its
//     state (Empty, Assigning, Reconciling, Stable), members without
//     metadata or assignment bytes (ConsumerGroupDescribe has them).
//   - v3+ authorized operations: INT32_MIN unless requested, else the
//     group operations (READ, DELETE, DESCRIBE) the principal may do (all
//     three without an authorizer). A group the principal may not
//     DESCRIBE: GROUP_AUTHORIZATION_FAILED.
//
// Version notes: v1 throttle; v3 authorized operations; v4 instance ids;
// v5 flexible; v6 (KIP-1043 error message) not served.

const describeGroupsKey = 15

func init() {
	register(API{Key: describeGroupsKey, MinVersion: 0, MaxVersion: 5, Handler: handleDescribeGroups})
}

// groupOperations is Kafka's AclOperation bit set of READ (3), DELETE (6)
// and DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

func handleDescribeGroups(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	var descs []group.GroupDescription
	coordinated := make([]bool, len(req.Groups))
	for i, id := range req.Groups {
		gc, _, code, err := groupCoordinator(ctx, rc, id)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			descs = append(descs, group.GroupDescription{Group: id, ErrorCode: code, State: group.Dead})
			continue
		}
		coordinated[i] = true
		descs = append(descs, gc.Describe([]string{id})...)
	}
	for i, d := range descs {
		code := int16(0)
		if !coordinated[i] {
			code = d.ErrorCode
		}
		if code := rc.groupDenied(kmsg.ACLOperationDescribe, d.Group); code != 0 {
			descs[i] = group.GroupDescription{Group: d.Group, ErrorCode: code, State: group.Dead}
			d = descs[i]
		}
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.ErrorCode, g.Group, g.State, g.ProtocolType, g.Protocol = d.ErrorCode, d.Group, d.State.String(), d.ProtocolType, d.Protocol
		if d.StateName != "" {
			g.State = d.StateName // a consumer-protocol group
		}
		g.AuthorizedOperations = math.MinInt32
		if req.IncludeAuthorizedOperations && d.ErrorCode == 0 {
			g.AuthorizedOperations = groupOperations
			if rc.authorizerOn() {
				g.AuthorizedOperations = rc.authorizedOps(kmsg.ACLResourceTypeGroup, d.Group)
			}
		}
		if code == 0 && !d.Known && d.ErrorCode == 0 {
			if offs, err := rc.Broker.Node.FetchOffsets(d.Group); err == nil && len(offs) > 0 {
				g.State = group.Empty.String()
			}
		}
		for _, m := range d.Members {
			rm := kmsg.NewDescribeGroupsResponseGroupMember()
			rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, grpNullable(m.InstanceID), m.ClientID, m.ClientHost
			rm.ProtocolMetadata, rm.MemberAssignment = m.Metadata, m.Assignment
			g.Members = append(g.Members, rm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
