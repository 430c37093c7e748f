package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// CreatePartitions: v0-3
//
// Behaviour:
//   - Raises each topic's partition count to Count through the controller
//     (new partitions get the topic's replication factor, placed by the
//     controller). Count not above the current count, or above the limit:
//     INVALID_PARTITIONS; unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//   - Assignment may be null (the usual case). A non-null manual
//     assignment is not supported: INVALID_REQUEST with a message.
//   - A topic listed twice: INVALID_REQUEST for each occurrence.
//   - ValidateOnly runs the controller's checks against a current view (a
//     ReadIndex on the controller shard first) and changes nothing.
//   - TimeoutMillis bounds the change (admTimeout); after it the handler
//     waits, within the bound, for the new partitions' leaders.
//
// Version notes: v1 same as v0; v2 flexible; v3 same as v2.

const createPartitionsKey = 37

func init() {
	register(API{Key: createPartitionsKey, MinVersion: 0, MaxVersion: 3, Handler: handleCreatePartitions})
}

func handleCreatePartitions(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	ctx, cancel := context.WithTimeout(ctx, admTimeout(req.TimeoutMillis))
	defer cancel()
	if req.ValidateOnly {
		_ = n.SyncController(ctx) // validate against a current view
	}
	count := map[string]int{}
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	for _, t := range req.Topics {
		rt := kmsg.NewCreatePartitionsResponseTopic()
		rt.Topic = t.Topic
		var r node.TopicResult
		cmd := meta.CreatePartitions{Topic: t.Topic, Count: t.Count}
		switch {
		case count[t.Topic] > 1:
			r.ErrorCode, r.Message = kerr.InvalidRequest.Code, "topic listed more than once in the request"
		case t.Assignment != nil:
			r.ErrorCode, r.Message = kerr.InvalidRequest.Code, "manual replica assignment is not supported by chronik"
		case !admValidTopicName(t.Topic):
			r.ErrorCode, r.Message = kerr.InvalidTopicException.Code, "invalid topic name"
		case rc.topicDenied(kmsg.ACLOperationAlter, t.Topic) != 0:
			r.ErrorCode = kerr.TopicAuthorizationFailed.Code
		case req.ValidateOnly:
			r = n.ValidateCreatePartitions(cmd)
		default:
			r = n.CreatePartitions(ctx, []meta.CreatePartitions{cmd})[0]
			if r.ErrorCode == 0 && !admWaitLeaders(ctx, n, t.Topic) {
				r.ErrorCode, r.Message = kerr.RequestTimedOut.Code, "partitions created; leaders not elected within the timeout"
			}
		}
		rt.ErrorCode, rt.ErrorMessage = r.ErrorCode, admCodeMsg(r.ErrorCode, r.Message)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
