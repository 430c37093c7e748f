package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// DescribeUserScramCredentials: v0
//
// Behaviour:
//   - Users null or empty: every user with a credential, sorted; else the
//     named users in request order: RESOURCE_NOT_FOUND for a user with
//     none, DUPLICATE_RESOURCE for a user named twice (as Kafka).
//   - Each credential is its mechanism and iterations; salts and keys
//     never leave the controller state.
//   - Read from this node's applied state after a ReadIndex on the
//     controller shard, so a credential just altered anywhere is seen.
//
// Version notes: v0 flexible.

const describeUserScramCredentialsKey = 50

func init() {
	register(API{Key: describeUserScramCredentialsKey, MinVersion: 0, MaxVersion: 0, Handler: handleDescribeUserScramCredentials})
}

func handleDescribeUserScramCredentials(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	if !rc.authorizedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	n := rc.Broker.Node
	_ = n.SyncController(ctx)
	all := n.ScramCredentials()
	byUser := map[string][]meta.ScramCredential{}
	var users []string // sorted: all is sorted by user
	for _, c := range all {
		if _, ok := byUser[c.User]; !ok {
			users = append(users, c.User)
		}
		byUser[c.User] = append(byUser[c.User], c)
	}
	result := func(user string, code int16) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User, r.ErrorCode, r.ErrorMessage = user, code, admCodeMsg(code, "")
		if code == 0 {
			for _, c := range byUser[user] {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = int8(c.Mechanism), c.Iterations
				r.CredentialInfos = append(r.CredentialInfos, ci)
			}
		}
		return r
	}
	if len(req.Users) == 0 {
		for _, u := range users {
			resp.Results = append(resp.Results, result(u, 0))
		}
		return resp, nil
	}
	count := map[string]int{}
	for _, u := range req.Users {
		count[u.Name]++
	}
	for _, u := range req.Users {
		code := int16(0)
		switch {
		case count[u.Name] > 1:
			code = kerr.DuplicateResource.Code
		case len(byUser[u.Name]) == 0:
			code = kerr.ResourceNotFound.Code
		}
		resp.Results = append(resp.Results, result(u.Name, code))
	}
	return resp, nil
}
