package server

import (
	"context"
	"errors"

	"github.com/chronik-go/chronik/core/group"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-2
//
// Behaviour:
//   - NOT_COORDINATOR on every group on a broker that is not the
//     coordinator.
//   - A group with members: NON_EMPTY_GROUP. An Empty group is forgotten by
//     the coordinator, which writes its tombstone record; the answer waits
//     for that write (COORDINATOR_NOT_AVAILABLE if it fails: the retry
//     writes it again), and its committed offsets are deleted through the
//     group shard. A group the coordinator does not hold is deleted if it
//     has committed offsets, else GROUP_ID_NOT_FOUND. Empty id:
//     INVALID_GROUP_ID.
//   - Offsets deletion failing (controller unavailable, timeout) reports
//     that code; the client retries.
//
// Version notes: v1 same as v0; v2 flexible.

const deleteGroupsKey = 42

func init() {
	register(API{Key: deleteGroupsKey, MinVersion: 0, MaxVersion: 2, Handler: handleDeleteGroups})
}

// handleDeleteGroups answers GROUP_AUTHORIZATION_FAILED for the groups the
// principal may not DELETE and deletes the others.
func handleDeleteGroups(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	if !rc.authorizerOn() {
		return deleteGroups(ctx, rc, req)
	}
	sub := *req
	sub.Groups = nil
	for _, g := range req.Groups {
		if rc.groupDenied(kmsg.ACLOperationDelete, g) == 0 {
			sub.Groups = append(sub.Groups, g)
		}
	}
	r, err := deleteGroups(ctx, rc, &sub)
	if err != nil {
		return nil, err
	}
	done := r.(*kmsg.DeleteGroupsResponse)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.ThrottleMillis = done.ThrottleMillis
	k := 0
	for _, g := range req.Groups {
		if code := rc.groupDenied(kmsg.ACLOperationDelete, g); code != 0 {
			x := kmsg.NewDeleteGroupsResponseGroup()
			x.Group, x.ErrorCode = g, code
			resp.Groups = append(resp.Groups, x)
			continue
		}
		resp.Groups = append(resp.Groups, done.Groups[k])
		k++
	}
	return resp, nil
}

func deleteGroups(ctx context.Context, rc *RequestContext, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	codes := make([]int16, len(req.Groups))
	var mine []string // coordinated here
	var mineAt []int
	gc := rc.Broker.Groups
	for i, id := range req.Groups {
		_, _, code, err := groupCoordinator(ctx, rc, id)
		if err != nil {
			return nil, err
		}
		if codes[i] = code; code == 0 {
			mine, mineAt = append(mine, id), append(mineAt, i)
		}
	}
	if len(mine) > 0 {
		res := gc.Delete(mine)
		var offsetGroups []string
		var where []int
		held := map[int]bool{}
		for k, r := range res {
			i := mineAt[k]
			codes[i] = r.ErrorCode
			if r.ErrorCode == 0 {
				codes[i] = awaitTombstone(ctx, rc, r)
			}
			if r.ErrorCode == 0 || r.ErrorCode == kerr.GroupIDNotFound.Code {
				held[i] = r.ErrorCode == 0
				offsetGroups = append(offsetGroups, r.Group)
				where = append(where, i)
			}
		}
		if len(offsetGroups) > 0 {
			for k, gcode := range rc.Broker.Node.DeleteGroups(ctx, offsetGroups) {
				i := where[k]
				switch {
				case codes[i] != 0 && codes[i] != kerr.GroupIDNotFound.Code:
					// the tombstone failed: its code stands
				case gcode.Code == kerr.GroupIDNotFound.Code && held[i]:
					codes[i] = 0 // had members once, never committed
				default:
					codes[i] = gcode.Code
				}
			}
		}
	}
	for i, id := range req.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group, g.ErrorCode = id, codes[i]
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

// awaitTombstone waits for a deleted group's tombstone record to be
// written: the group is answered deleted only once that is durable (a
// crash after the answer must not bring it back). A failed write
// answers COORDINATOR_NOT_AVAILABLE (the client retries); a newer record
// of the group superseding it (the group was joined again meanwhile)
// counts as written.
func awaitTombstone(ctx context.Context, rc *RequestContext, r group.DeleteResult) int16 {
	if r.Written == nil {
		return 0
	}
	var err error
	select {
	case err = <-r.Written:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil || errors.Is(err, errGroupRecordSuperseded) {
		return 0
	}
	rc.Broker.log.Warn("DeleteGroups: tombstone not written", "group", r.Group, "err", err)
	return kerr.CoordinatorNotAvailable.Code
}
