package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// DeleteTopics: v1-6
//
// Behaviour:
//   - v1-5: TopicNames; v6: Topics, each by name or (null name) by id.
//     Both a name and an id: INVALID_REQUEST. A topic listed twice:
//     INVALID_REQUEST for each occurrence.
//   - Each topic is deleted through the controller, in order, with every
//     committed offset on it. Unknown name: UNKNOWN_TOPIC_OR_PARTITION;
//     unknown id: UNKNOWN_TOPIC_ID; invalid name: INVALID_TOPIC_EXCEPTION.
//     The v6 answer carries the topic's name and id.
//   - TimeoutMillis bounds each deletion as in CreateTopics (admTimeout).
//   - ErrorMessage (v5+) explains failures.
//
// Version notes: v0 not served (KIP-896); v4 flexible; v5 ErrorMessage;
// v6 topics by id (KIP-516).

const deleteTopicsKey = 20

func init() {
	register(API{Key: deleteTopicsKey, MinVersion: 1, MaxVersion: 6, Handler: handleDeleteTopics})
}

func handleDeleteTopics(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	ctx, cancel := context.WithTimeout(ctx, admTimeout(req.TimeoutMillis))
	defer cancel()

	type item struct {
		name *string
		id   [16]byte
	}
	var items []item
	if req.Version >= 6 {
		for _, t := range req.Topics {
			items = append(items, item{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, name := range req.TopicNames {
			name := name
			items = append(items, item{name: &name})
		}
	}
	count := map[string]int{}
	key := func(it item) string {
		if it.name != nil {
			return "n:" + *it.name
		}
		return "i:" + string(it.id[:])
	}
	for _, it := range items {
		count[key(it)]++
	}
	for _, it := range items {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID = it.name, it.id
		var r node.TopicResult
		switch {
		case count[key(it)] > 1:
			r.ErrorCode, r.Message = kerr.InvalidRequest.Code, "topic listed more than once in the request"
		case it.name != nil && it.id != [16]byte{}:
			r.ErrorCode, r.Message = kerr.InvalidRequest.Code, "topic name and topic id both set"
		case it.name == nil && it.id == [16]byte{}:
			r.ErrorCode, r.Message = kerr.InvalidRequest.Code, "topic without name or id"
		case it.name != nil && !admValidTopicName(*it.name):
			r.ErrorCode, r.Message = kerr.InvalidTopicException.Code, "invalid topic name"
		case it.name != nil && rc.topicDenied(kmsg.ACLOperationDelete, *it.name) != 0:
			r.ErrorCode = kerr.TopicAuthorizationFailed.Code
		case it.name != nil:
			r = n.DeleteTopics(ctx, []string{*it.name})[0]
		case rc.authorizerOn() && rc.topicDenied(kmsg.ACLOperationDelete, topicNameOrEmpty(n.TopicName(meta.TopicID(it.id)))) != 0:
			r.ErrorCode = kerr.TopicAuthorizationFailed.Code
		default:
			r = n.DeleteTopicsByID(ctx, []meta.TopicID{meta.TopicID(it.id)})[0]
		}
		if r.Topic != nil {
			name := r.Topic.Name
			rt.Topic = &name
			if req.Version >= 6 {
				rt.TopicID = r.Topic.ID
			}
		}
		rt.ErrorCode, rt.ErrorMessage = r.ErrorCode, admCodeMsg(r.ErrorCode, r.Message)
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// topicNameOrEmpty is a topic's name, or "" when the id is unknown.
func topicNameOrEmpty(name string, ok bool) string {
	if !ok {
		return ""
	}
	return name
}
