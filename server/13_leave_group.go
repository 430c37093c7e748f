package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
)

// LeaveGroup: v0-5
//
// Behaviour:
//   - NOT_COORDINATOR on a broker that is not the coordinator (top level).
//   - v0-2: one member (the top-level member id); its outcome is the
//     top-level error code.
//   - v3+: a batch of members (KIP-345); a member named by instance id
//     alone is removed administratively (kadm's RemoveMembers); per-member
//     codes, and a top-level code only for request-level failures.
//
// Version notes: v1 throttle; v3 member batch with instance ids; v4
// flexible; v5 per-member reason.

const leaveGroupKey = 13

func init() {
	register(API{Key: leaveGroupKey, MinVersion: 0, MaxVersion: 5, Handler: handleLeaveGroup})
}

func handleLeaveGroup(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if code := rc.groupDenied(kmsg.ACLOperationRead, req.Group); code != 0 {
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
	lr := group.LeaveRequest{Group: req.Group}
	if req.Version < 3 {
		lr.Members = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			lr.Members = append(lr.Members, group.LeaveMember{MemberID: m.MemberID, InstanceID: grpDeref(m.InstanceID), Reason: grpDeref(m.Reason)})
		}
	}
	out := gc.Leave(lr)
	if req.Version < 3 {
		resp.ErrorCode = out.SingleErrorCode()
		return resp, nil
	}
	resp.ErrorCode = out.ErrorCode
	for _, m := range out.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = m.MemberID, grpNullable(m.InstanceID), m.ErrorCode
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
