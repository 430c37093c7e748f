package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// DeleteAcls: v1-3
//
// Behaviour:
//   - Needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED per
//     filter).
//   - Each filter (as DescribeAcls') is matched against the ACLs after a
//     ReadIndex on the controller shard; every matched ACL is deleted in
//     one replicated command and listed under each filter it matched.
//     Out-of-range enums: INVALID_REQUEST for that filter.
//
// Version notes: v0 is not served (Kafka 4 removed it); v2 flexible; v3
// adds the USER resource type.

const deleteACLsKey = 31

func init() {
	register(API{Key: deleteACLsKey, MinVersion: 1, MaxVersion: 3, Handler: handleDeleteACLs})
}

func handleDeleteACLs(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	allowed := rc.authorizedCluster(kmsg.ACLOperationAlter)
	_ = n.SyncController(ctx)
	current := n.ACLs()
	matched := make([][]meta.ACL, len(req.Filters))
	codes := make([]int16, len(req.Filters))
	var del []meta.ACL
	seen := map[meta.ACL]bool{}
	for i, rf := range req.Filters {
		f := aclFilter{typ: rf.ResourceType, name: rf.ResourceName, pattern: rf.ResourcePatternType,
			principal: rf.Principal, host: rf.Host, op: rf.Operation, permission: rf.PermissionType}
		switch {
		case !allowed:
			codes[i] = kerr.ClusterAuthorizationFailed.Code
			continue
		case !f.valid():
			codes[i] = kerr.InvalidRequest.Code
			continue
		}
		for _, a := range current {
			if f.matches(a) {
				matched[i] = append(matched[i], a)
				if !seen[a] {
					seen[a] = true
					del = append(del, a)
				}
			}
		}
	}
	if len(del) > 0 {
		if code, _ := n.DeleteACLs(ctx, del); code != 0 {
			for i := range codes {
				if codes[i] == 0 {
					codes[i], matched[i] = code, nil
				}
			}
		}
	}
	for i := range req.Filters {
		r := kmsg.NewDeleteACLsResponseResult()
		r.ErrorCode, r.ErrorMessage = codes[i], admCodeMsg(codes[i], "")
		for _, a := range matched[i] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceType(a.ResourceType), a.ResourceName, kmsg.ACLResourcePatternType(a.PatternType)
			m.Principal, m.Host, m.Operation, m.PermissionType = a.Principal, a.Host, kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
			r.MatchingACLs = append(r.MatchingACLs, m)
		}
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
