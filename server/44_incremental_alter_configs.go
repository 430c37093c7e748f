package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// IncrementalAlterConfigs: v0-1
//
// Behaviour:
//   - TOPIC resources: SET and DELETE, per topic all or nothing, through
//     the controller. APPEND and SUBTRACT are INVALID_REQUEST (no allowed
//     topic config is a list that could grow: cleanup.policy is "delete"
//     only). SET with a null value: INVALID_REQUEST. Unknown or
//     unsupported key, bad value: INVALID_CONFIG. A key twice in one
//     resource: INVALID_REQUEST. Unknown topic: UNKNOWN_TOPIC_OR_PARTITION;
//     invalid name: INVALID_TOPIC_EXCEPTION.
//   - A resource listed twice: INVALID_REQUEST for each occurrence.
//   - ValidateOnly runs the controller's checks against a current view (a
//     ReadIndex on the controller shard first) and changes nothing.
//   - BROKER resource "" (the cluster-wide defaults): SET and DELETE of
//     the settings that change live (log.retention.ms,
//     log.retention.bytes, log.segment.bytes, log.roll.ms,
//     message.max.bytes), all or nothing, replicated through the
//     controller so every node agrees; they apply to every topic that
//     does not set its own value, without a restart. Settings only a flag
//     sets (num.partitions, ...): INVALID_CONFIG ("Cannot update these
//     configs dynamically"). A broker id: INVALID_REQUEST (per-broker
//     dynamic configs are not supported). Other types: INVALID_REQUEST.
//
// Version notes: v1 flexible.

const incrementalAlterConfigsKey = 44

func init() {
	register(API{Key: incrementalAlterConfigsKey, MinVersion: 0, MaxVersion: 1, Handler: handleIncrementalAlterConfigs})
}

func handleIncrementalAlterConfigs(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	if req.ValidateOnly {
		_ = n.SyncController(ctx) // validate against a current view
	}
	outs := admAlterEach(rc, req.Resources,
		func(r kmsg.IncrementalAlterConfigsRequestResource) admResourceKey {
			return admResourceKey{r.ResourceType, r.ResourceName}
		},
		func(r kmsg.IncrementalAlterConfigsRequestResource, dup bool) (int16, string) {
			return admAlterIncremental(ctx, n, r, req.ValidateOnly, dup)
		})
	for _, o := range outs {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = o.key.t, o.key.name, o.code, o.msg
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func admAlterIncremental(ctx context.Context, n *node.Node, r kmsg.IncrementalAlterConfigsRequestResource, validateOnly, dup bool) (int16, string) {
	if code, msg := admAlterTarget(r.ResourceType, r.ResourceName, dup); code != 0 {
		return code, msg
	}
	var ops []meta.ConfigOp
	for _, c := range r.Configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return kerr.InvalidRequest.Code, "null value not supported for SET of " + c.Name
			}
			ops = append(ops, meta.ConfigOp{Key: c.Name, Op: meta.ConfigSet, Value: *c.Value})
		case kmsg.IncrementalAlterConfigOpDelete:
			ops = append(ops, meta.ConfigOp{Key: c.Name, Op: meta.ConfigDelete})
		default:
			return kerr.InvalidRequest.Code, "config operation " + c.Op.String() + " is not supported for " + c.Name
		}
	}
	return admAlterOps(ctx, n, r.ResourceType, r.ResourceName, ops, validateOnly)
}
