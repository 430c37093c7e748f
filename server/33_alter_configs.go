package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// AlterConfigs: v0-2
//
// Behaviour (the legacy, non-incremental API: each resource's dynamic
// configs are replaced by the request's set):
//   - TOPIC resources: the topic's configs become exactly the given ones;
//     keys set now and not named are deleted. Per topic all or nothing,
//     through the controller, with the same checks as
//     IncrementalAlterConfigs (INVALID_CONFIG naming the key for an
//     unknown key or a bad value). The replacement is computed against
//     this node's view after a ReadIndex on the controller shard, so a
//     concurrent change to the same topic between that read and the
//     proposal can be overwritten or kept (Kafka's legacy API has the
//     same race between its admins).
//   - BROKER resource "": the cluster-wide dynamic defaults become
//     exactly the given ones (see IncrementalAlterConfigs for which keys
//     change live). A broker id: INVALID_REQUEST.
//   - A null value: INVALID_REQUEST, as Kafka. A key twice: INVALID_REQUEST.
//     A resource listed twice: INVALID_REQUEST for each occurrence.
//     Other resource types: INVALID_REQUEST.
//   - ValidateOnly runs the controller's checks and changes nothing.
//
// Version notes: v1 same as v0; v2 flexible.

const alterConfigsKey = 33

func init() {
	register(API{Key: alterConfigsKey, MinVersion: 0, MaxVersion: 2, Handler: handleAlterConfigs})
}

func handleAlterConfigs(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	// Replacement needs the current configs: read them after everything
	// committed so far.
	_ = n.SyncController(ctx)
	outs := admAlterEach(rc, req.Resources,
		func(r kmsg.AlterConfigsRequestResource) admResourceKey {
			return admResourceKey{r.ResourceType, r.ResourceName}
		},
		func(r kmsg.AlterConfigsRequestResource, dup bool) (int16, string) {
			return admReplaceConfigs(ctx, n, r, req.ValidateOnly, dup)
		})
	for _, o := range outs {
		rr := kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = o.key.t, o.key.name, o.code, o.msg
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func admReplaceConfigs(ctx context.Context, n *node.Node, r kmsg.AlterConfigsRequestResource, validateOnly, dup bool) (int16, string) {
	if code, msg := admAlterTarget(r.ResourceType, r.ResourceName, dup); code != 0 {
		return code, msg
	}
	current := n.DynamicBrokerConfigs()
	if r.ResourceType == kmsg.ConfigResourceTypeTopic {
		set, ok := n.TopicConfig(r.ResourceName)
		if !ok {
			return kerr.UnknownTopicOrPartition.Code, ""
		}
		current = set
	}
	var ops []meta.ConfigOp
	given := map[string]bool{}
	for _, c := range r.Configs {
		if c.Value == nil {
			return kerr.InvalidRequest.Code, "null value not supported for " + c.Name
		}
		if given[c.Name] {
			return kerr.InvalidRequest.Code, "config " + c.Name + " appears twice"
		}
		given[c.Name] = true
		ops = append(ops, meta.ConfigOp{Key: c.Name, Op: meta.ConfigSet, Value: *c.Value})
	}
	for _, c := range current {
		if !given[c.Key] {
			ops = append(ops, meta.ConfigOp{Key: c.Key, Op: meta.ConfigDelete})
		}
	}
	return admAlterOps(ctx, n, r.ResourceType, r.ResourceName, ops, validateOnly)
}
