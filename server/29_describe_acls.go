package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// DescribeAcls: v1-3
//
// Behaviour:
//   - Needs DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED).
//   - The filter as Kafka's: ANY matches every value; pattern MATCH gives
//     the ACLs that apply to the named resource (literal equal or "*",
//     prefixed a prefix). Out-of-range enums: INVALID_REQUEST.
//   - ACLs grouped by resource (type, name, pattern), in a stable order,
//     read after a ReadIndex on the controller shard.
//
// Version notes: v0 (no pattern type) is not served (Kafka 4 removed it);
// v2 flexible; v3 adds the USER resource type.

const describeACLsKey = 29

func init() {
	register(API{Key: describeACLsKey, MinVersion: 1, MaxVersion: 3, Handler: handleDescribeACLs})
}

func handleDescribeACLs(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	if !rc.authorizedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	f := aclFilter{typ: req.ResourceType, name: req.ResourceName, pattern: req.ResourcePatternType,
		principal: req.Principal, host: req.Host, op: req.Operation, permission: req.PermissionType}
	if !f.valid() || f.typ == kmsg.ACLResourceTypeUnknown || f.op == kmsg.ACLOperationUnknown ||
		f.pattern == kmsg.ACLResourcePatternTypeUnknown || f.permission == kmsg.ACLPermissionTypeUnknown {
		resp.ErrorCode = kerr.InvalidRequest.Code
		resp.ErrorMessage = kstr("ACL filter values out of range")
		return resp, nil
	}
	n := rc.Broker.Node
	_ = n.SyncController(ctx)
	var cur *kmsg.DescribeACLsResponseResource
	for _, a := range n.ACLs() { // sorted by resource first
		if !f.matches(a) {
			continue
		}
		if cur == nil || int8(cur.ResourceType) != a.ResourceType || cur.ResourceName != a.ResourceName || int8(cur.ResourcePatternType) != a.PatternType {
			resp.Resources = append(resp.Resources, kmsg.NewDescribeACLsResponseResource())
			cur = &resp.Resources[len(resp.Resources)-1]
			cur.ResourceType, cur.ResourceName, cur.ResourcePatternType = kmsg.ACLResourceType(a.ResourceType), a.ResourceName, kmsg.ACLResourcePatternType(a.PatternType)
		}
		cur.ACLs = append(cur.ACLs, describedACL(a))
	}
	return resp, nil
}

func describedACL(a meta.ACL) kmsg.DescribeACLsResponseResourceACL {
	x := kmsg.NewDescribeACLsResponseResourceACL()
	x.Principal, x.Host, x.Operation, x.PermissionType = a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
	return x
}
