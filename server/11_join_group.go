package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
)

// JoinGroup: v0-9
//
// Behaviour (core/group does the protocol; this handler copies fields):
//   - On a broker that is not the coordinator (see FindCoordinator):
//     NOT_COORDINATOR, so the client rediscovers.
//   - Blocks until the join phase ends. Returns early with no response when
//     the connection dies (ctx), and with NOT_COORDINATOR when this broker
//     stops coordinating meanwhile (whileCoordinator).
//   - v0 has no rebalance timeout: the session timeout stands in, as in
//     Kafka. v4+ new members get MEMBER_ID_REQUIRED (KIP-394); v5+ static
//     membership (KIP-345); v9 SkipAssignment (KIP-814).
//   - ClientHost is the peer IP as Kafka shows it ("/127.0.0.1").
//
// Version notes: v1 rebalance timeout; v2 throttle; v4 MEMBER_ID_REQUIRED;
// v5 instance id; v6 flexible; v7 protocol type in the response (nullable
// protocol name); v8 reason; v9 skip assignment.

const joinGroupKey = 11

func init() {
	register(API{Key: joinGroupKey, MinVersion: 0, MaxVersion: 9, Handler: handleJoinGroup})
}

func handleJoinGroup(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	fail := func(code int16) (kmsg.Response, error) {
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, req.MemberID
		if req.Version < 7 {
			resp.Protocol = new(string)
		}
		return resp, nil
	}
	if code := rc.groupDenied(kmsg.ACLOperationRead, req.Group); code != 0 {
		return fail(code)
	}
	gc, term, code, err := groupCoordinator(ctx, rc, req.Group)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return fail(code)
	}
	jr := group.JoinRequest{
		Version: req.Version, Group: req.Group, MemberID: req.MemberID, InstanceID: grpDeref(req.InstanceID),
		ClientID: rc.ClientID, ClientHost: grpClientHost(rc),
		SessionTimeoutMs: req.SessionTimeoutMillis, RebalanceTimeoutMs: req.RebalanceTimeoutMillis,
		ProtocolType: req.ProtocolType, Reason: grpDeref(req.Reason),
	}
	if req.Version == 0 {
		jr.RebalanceTimeoutMs = req.SessionTimeoutMillis
	}
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	wctx, lost, stop := whileCoordinator(ctx, rc, term)
	out, err := gc.Join(wctx, jr)
	stop()
	if err != nil {
		if lost() {
			return fail(notCoordinator)
		}
		return nil, err
	}
	resp.ErrorCode, resp.Generation, resp.LeaderID, resp.MemberID = out.ErrorCode, out.Generation, out.LeaderID, out.MemberID
	resp.SkipAssignment = out.SkipAssignment
	resp.ProtocolType = grpNullable(out.ProtocolType)
	resp.Protocol = grpNullable(out.Protocol)
	if req.Version < 7 && resp.Protocol == nil {
		resp.Protocol = new(string)
	}
	for _, m := range out.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, grpNullable(m.InstanceID), m.Metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
