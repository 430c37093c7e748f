package server

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/meta"
)

// ListGroups: v0-5
//
// Behaviour:
//   - Like Kafka, each broker lists the groups it coordinates (clients
//     such as kadm ask every broker and merge): those of the group shards
//     it leads (each read from its local replica), with members
//     (core/group) or with only committed offsets (state Empty, protocol
//     type ""); a broker leading no group shard answers an empty list with
//     no error.
//   - Consumer-protocol (KIP-848) groups are listed with protocol type
//     "consumer" and their state (Empty, Assigning, Reconciling, Stable).
//   - v4+ states filter (case-insensitive, unknown names match nothing);
//     v5+ types filter "classic" / "consumer" (case-insensitive; groups
//     with only committed offsets are "classic"), other types match
//     nothing; v5+ GroupType.
//
// Version notes: v1 throttle; v3 flexible; v4 states; v5 types (KIP-848).

const listGroupsKey = 16

func init() {
	register(API{Key: listGroupsKey, MinVersion: 0, MaxVersion: 5, Handler: handleListGroups})
}

func handleListGroups(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	var led []int32 // the group shards coordinated here
	for _, idx := range rc.Broker.Node.LedGroupShards() {
		if _, code := shardCoordinator(ctx, rc.Broker, idx); code == 0 {
			led = append(led, idx)
		}
	}
	if len(led) == 0 {
		return resp, nil // not a coordinator: no groups here
	}
	gc := rc.Broker.Groups
	shards := rc.Broker.Node.GroupShardCount()
	here := func(id string) bool { return slices.Contains(led, meta.GroupShardIndex(id, shards)) }
	wantType := func(typ string) bool {
		return req.Version < 5 || len(req.TypesFilter) == 0 ||
			slices.ContainsFunc(req.TypesFilter, func(s string) bool { return strings.EqualFold(s, typ) })
	}
	var states []group.State
	var stateNames []string
	if req.Version >= 4 && len(req.StatesFilter) > 0 {
		stateNames = req.StatesFilter
		for _, s := range req.StatesFilter {
			if st, ok := group.ParseState(s); ok {
				states = append(states, st)
			}
		}
	}
	listed := map[string]bool{}
	add := func(id, protocolType, state, typ string) {
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = id, protocolType, state, typ
		resp.Groups = append(resp.Groups, g)
		listed[id] = true
	}
	classic := wantType("classic") && (len(stateNames) == 0 || len(states) > 0)
	if classic {
		for _, l := range gc.List(states) {
			if here(l.Group) {
				add(l.Group, l.ProtocolType, l.StateName, l.Type)
			}
		}
	}
	if wantType("consumer") {
		for _, l := range gc.ListConsumer(stateNames) {
			if here(l.Group) {
				add(l.Group, l.ProtocolType, l.StateName, l.Type)
			}
		}
	}
	if classic && (len(states) == 0 || slices.Contains(states, group.Empty)) {
		var ids []string
		for _, idx := range led {
			gs, err := rc.Broker.Node.ShardGroups(idx)
			if err != nil {
				resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
				resp.Groups = nil
				return resp, nil
			}
			ids = append(ids, gs...)
		}
		known := map[string]bool{}
		for _, d := range gc.Describe(ids) {
			known[d.Group] = d.Known
		}
		for _, id := range ids {
			if !listed[id] && !known[id] {
				add(id, "", group.Empty.String(), "classic")
			}
		}
	}
	slices.SortFunc(resp.Groups, func(a, b kmsg.ListGroupsResponseGroup) int { return strings.Compare(a.Group, b.Group) })
	if !rc.authorizedCluster(kmsg.ACLOperationDescribe) {
		// Without DESCRIBE on the cluster, only the groups one may describe.
		resp.Groups = slices.DeleteFunc(resp.Groups, func(g kmsg.ListGroupsResponseGroup) bool {
			return rc.groupDenied(kmsg.ACLOperationDescribe, g.Group) != 0
		})
	}
	return resp, nil
}
