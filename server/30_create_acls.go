package server

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// CreateAcls: v1-3
//
// Behaviour:
//   - Needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for each
//     creation).
//   - Each creation is checked as Kafka checks it (INVALID_REQUEST with a
//     message): a concrete resource type, pattern (LITERAL or PREFIXED),
//     operation and permission (DENY or ALLOW); a principal "Type:name";
//     a non-empty host and name; the CLUSTER resource is named
//     kafka-cluster and literal. The valid ones are replicated together
//     through the controller; an ACL that exists already is kept once.
//
// Version notes: v0 is not served (Kafka 4 removed it); v2 flexible; v3
// adds the USER resource type.

const createACLsKey = 30

func init() {
	register(API{Key: createACLsKey, MinVersion: 1, MaxVersion: 3, Handler: handleCreateACLs})
}

func handleCreateACLs(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	allowed := rc.authorizedCluster(kmsg.ACLOperationAlter)
	codes := make([]int16, len(req.Creations))
	msgs := make([]string, len(req.Creations))
	var valid []meta.ACL
	var at []int
	for i, c := range req.Creations {
		if !allowed {
			codes[i] = kerr.ClusterAuthorizationFailed.Code
			continue
		}
		a := meta.ACL{ResourceType: int8(c.ResourceType), ResourceName: c.ResourceName, PatternType: int8(c.ResourcePatternType),
			Principal: c.Principal, Host: c.Host, Operation: int8(c.Operation), Permission: int8(c.PermissionType)}
		if msg := checkCreatedACL(c); msg != "" {
			codes[i], msgs[i] = kerr.InvalidRequest.Code, msg
			continue
		}
		valid = append(valid, a)
		at = append(at, i)
	}
	if len(valid) > 0 {
		code, msg := rc.Broker.Node.CreateACLs(ctx, valid)
		for _, i := range at {
			codes[i], msgs[i] = code, msg
		}
	}
	for i := range req.Creations {
		r := kmsg.NewCreateACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = codes[i], admCodeMsg(codes[i], msgs[i])
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}

// checkCreatedACL returns why c cannot be created, or "".
func checkCreatedACL(c kmsg.CreateACLsRequestCreation) string {
	switch {
	case c.ResourceType < kmsg.ACLResourceTypeTopic || c.ResourceType > kmsg.ACLResourceTypeUser:
		return "the resource type must be a concrete one (TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID, DELEGATION_TOKEN, USER)"
	case c.ResourcePatternType != kmsg.ACLResourcePatternTypeLiteral && c.ResourcePatternType != kmsg.ACLResourcePatternTypePrefixed:
		return "the pattern type must be LITERAL or PREFIXED"
	case c.Operation < kmsg.ACLOperationAll || c.Operation > kmsg.ACLOperationDescribeTokens:
		return "the operation must be a concrete one"
	case c.PermissionType != kmsg.ACLPermissionTypeDeny && c.PermissionType != kmsg.ACLPermissionTypeAllow:
		return "the permission must be DENY or ALLOW"
	case c.ResourceName == "" || len(c.ResourceName) > meta.ACLNameLenMax:
		return "the resource name must be non-empty and at most 1024 bytes"
	case c.ResourceType == kmsg.ACLResourceTypeCluster && (c.ResourceName != clusterResource || c.ResourcePatternType != kmsg.ACLResourcePatternTypeLiteral):
		return "the cluster resource is the literal name kafka-cluster"
	case c.Host == "" || len(c.Host) > meta.ACLHostLenMax:
		return "the host must be an IP address or *"
	case len(c.Principal) > meta.ACLPrincipalMax:
		return "the principal is too long"
	}
	if typ, name, ok := strings.Cut(c.Principal, ":"); !ok || typ == "" || name == "" {
		return "the principal must be Type:name, for example User:alice or User:*"
	}
	return ""
}
