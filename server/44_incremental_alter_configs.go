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
//   - BROKER resources: INVALID_REQUEST (Chronik has no dynamic broker
//     configs); other types: INVALID_REQUEST.
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
	type rk struct {
		t    kmsg.ConfigResourceType
		name string
	}
	if req.ValidateOnly {
		_ = n.SyncController(ctx) // validate against a current view
	}
	count := map[rk]int{}
	for _, r := range req.Resources {
		count[rk{r.ResourceType, r.ResourceName}]++
	}
	for _, r := range req.Resources {
		rr := kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		code, msg := admAlterTopic(ctx, n, r, req.ValidateOnly, count[rk{r.ResourceType, r.ResourceName}] > 1)
		rr.ErrorCode, rr.ErrorMessage = code, admCodeMsg(code, msg)
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

func admAlterTopic(ctx context.Context, n *node.Node, r kmsg.IncrementalAlterConfigsRequestResource, validateOnly, dup bool) (int16, string) {
	switch {
	case dup:
		return kerr.InvalidRequest.Code, "resource listed more than once in the request"
	case r.ResourceType == kmsg.ConfigResourceTypeBroker:
		return kerr.InvalidRequest.Code, "broker configs are not alterable in chronik"
	case r.ResourceType != kmsg.ConfigResourceTypeTopic:
		return kerr.InvalidRequest.Code, "unsupported resource type " + r.ResourceType.String()
	case !admValidTopicName(r.ResourceName):
		return kerr.InvalidTopicException.Code, "invalid topic name"
	}
	cmd := meta.AlterConfigs{Topic: r.ResourceName}
	for _, c := range r.Configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return kerr.InvalidRequest.Code, "null value not supported for SET of " + c.Name
			}
			cmd.Ops = append(cmd.Ops, meta.ConfigOp{Key: c.Name, Op: meta.ConfigSet, Value: *c.Value})
		case kmsg.IncrementalAlterConfigOpDelete:
			cmd.Ops = append(cmd.Ops, meta.ConfigOp{Key: c.Name, Op: meta.ConfigDelete})
		default:
			return kerr.InvalidRequest.Code, "config operation " + c.Op.String() + " is not supported for " + c.Name
		}
	}
	var res node.TopicResult
	if validateOnly {
		res = n.ValidateAlterConfigs(cmd)
	} else {
		res = n.AlterConfigs(ctx, []meta.AlterConfigs{cmd})[0]
	}
	return res.ErrorCode, res.Message
}
