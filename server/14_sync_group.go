package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
)

// SyncGroup: v0-5
//
// Behaviour (core/group does the protocol):
//   - NOT_COORDINATOR on a broker that is not the coordinator.
//   - Blocks until the leader's assignment arrives; returns with no
//     response when the connection dies, with NOT_COORDINATOR when this
//     broker stops coordinating meanwhile.
//   - v5+ protocol type and name are checked against the group's
//     (INCONSISTENT_GROUP_PROTOCOL) and echoed in the response.
//
// Version notes: v1 throttle; v3 instance id; v4 flexible; v5 protocol
// type and name.

const syncGroupKey = 14

func init() {
	register(API{Key: syncGroupKey, MinVersion: 0, MaxVersion: 5, Handler: handleSyncGroup})
}

func handleSyncGroup(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if code := rc.groupDenied(kmsg.ACLOperationRead, req.Group); code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	gc, term, code, err := groupCoordinator(ctx, rc, req.Group)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		resp.ErrorCode = code
		return resp, nil
	}
	sr := group.SyncRequest{
		Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: grpDeref(req.InstanceID),
		ProtocolType: grpDeref(req.ProtocolType), Protocol: grpDeref(req.Protocol),
	}
	for _, a := range req.GroupAssignment {
		sr.Assignments = append(sr.Assignments, group.SyncAssignment{MemberID: a.MemberID, Assignment: a.MemberAssignment})
	}
	wctx, lost, stop := whileCoordinator(ctx, rc, term)
	out, err := gc.Sync(wctx, sr)
	stop()
	if err != nil {
		if lost() {
			resp.ErrorCode = notCoordinator
			return resp, nil
		}
		return nil, err
	}
	resp.ErrorCode, resp.MemberAssignment = out.ErrorCode, out.Assignment
	resp.ProtocolType, resp.Protocol = grpNullable(out.ProtocolType), grpNullable(out.Protocol)
	return resp, nil
}
