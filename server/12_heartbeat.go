package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
)

// Heartbeat: v0-4
//
// Behaviour: NOT_COORDINATOR on a broker that is not the coordinator;
// otherwise core/group's answer (REBALANCE_IN_PROGRESS tells the member
// to rejoin; UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID).
//
// Version notes: v1 throttle; v3 instance id; v4 flexible.

const heartbeatKey = 12

// notCoordinator is NOT_COORDINATOR's code.
var notCoordinator = kerr.NotCoordinator.Code

func init() {
	register(API{Key: heartbeatKey, MinVersion: 0, MaxVersion: 4, Handler: handleHeartbeat})
}

func handleHeartbeat(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
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
	resp.ErrorCode = gc.Heartbeat(group.HeartbeatRequest{
		Group: req.Group, Generation: req.Generation, MemberID: req.MemberID, InstanceID: grpDeref(req.InstanceID),
	})
	return resp, nil
}
