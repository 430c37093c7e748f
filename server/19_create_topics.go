package server

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// CreateTopics: v2-7
//
// Behaviour:
//   - Each topic is created through the controller (core/node), in request
//     order. NumPartitions and ReplicationFactor -1 take the node's
//     defaults (DefaultPartitions; min(3, brokers)); 0 or below -1 is
//     INVALID_PARTITIONS / INVALID_REPLICATION_FACTOR, as in Kafka.
//   - ReplicaAssignment may be null or empty (the pitfall: null arrays are
//     legal). A non-empty manual assignment is not supported: the topic is
//     answered INVALID_REQUEST with a message (Kafka would place replicas
//     as asked). Combined with NumPartitions/ReplicationFactor != -1 it is
//     INVALID_REQUEST in Kafka too.
//   - Configs: only the allowlist of core/meta; a null value or an unknown
//     key or bad value is INVALID_CONFIG.
//   - A name listed twice: INVALID_REQUEST for every occurrence.
//   - ValidateOnly runs, after a ReadIndex on the controller shard (so the
//     view is current), every check of the controller (name, existence,
//     collision, partitions, replication factor, configs) and creates
//     nothing.
//   - TimeoutMillis bounds the creation (clamped to [1 s, 60 s]; <= 0 takes
//     30 s); after creation the handler waits, within that bound, until
//     every partition has a leader in this node's view, as Kafka waits for
//     the metadata to propagate. Past the bound: REQUEST_TIMED_OUT (the
//     topic may still be created, as in Kafka).
//   - ErrorMessage (v1+) explains every failure. v5+: NumPartitions,
//     ReplicationFactor and the topic's full config list (effective
//     values with their sources, as DescribeConfigs) on success, -1/-1
//     on failure. v7: TopicID.
//
// Version notes: v0-1 not served (KIP-896); v3-4 same as v2 (v4 added
// -1 defaults, which we accept at every version); v5 flexible, returns
// configs; v6 same; v7 TopicID.

const createTopicsKey = 19

func init() {
	register(API{Key: createTopicsKey, MinVersion: 2, MaxVersion: 7, Handler: handleCreateTopics})
}

// admTimeout turns a request's TimeoutMillis into a bound for the admin
// operation.
func admTimeout(ms int32) time.Duration {
	switch {
	case ms <= 0:
		return 30 * time.Second
	case ms < 1000:
		return time.Second
	case ms > 60000:
		return time.Minute
	}
	return time.Duration(ms) * time.Millisecond
}

func handleCreateTopics(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	ctx, cancel := context.WithTimeout(ctx, admTimeout(req.TimeoutMillis))
	defer cancel()

	count := map[string]int{}
	for _, t := range req.Topics {
		count[t.Topic]++
	}
	if req.ValidateOnly {
		// Validate against everything committed so far, not a stale view.
		_ = n.SyncController(ctx)
	}
	for _, t := range req.Topics {
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Topic, -1, -1
		fail := func(code int16, msg string) {
			rt.ErrorCode, rt.ErrorMessage = code, admCodeMsg(code, msg)
			resp.Topics = append(resp.Topics, rt)
		}
		switch {
		case count[t.Topic] > 1:
			fail(kerr.InvalidRequest.Code, "topic listed more than once in the request")
			continue
		case !admValidTopicName(t.Topic):
			fail(kerr.InvalidTopicException.Code, "invalid topic name")
			continue
		case len(t.ReplicaAssignment) > 0 && (t.NumPartitions != -1 || t.ReplicationFactor != -1):
			fail(kerr.InvalidRequest.Code, "both numPartitions or replicationFactor and replicasAssignments were set; both cannot be used at the same time")
			continue
		case len(t.ReplicaAssignment) > 0:
			fail(kerr.InvalidRequest.Code, "manual replica assignment is not supported by chronik")
			continue
		case t.NumPartitions == 0 || t.NumPartitions < -1:
			fail(kerr.InvalidPartitions.Code, "number of partitions was set to an invalid non-positive value")
			continue
		case t.ReplicationFactor == 0 || t.ReplicationFactor < -1:
			fail(kerr.InvalidReplicationFactor.Code, "replication factor must be larger than 0, or -1 to use the default value")
			continue
		case !rc.mayCreateTopic(t.Topic):
			fail(kerr.TopicAuthorizationFailed.Code, "")
			continue
		}
		spec := node.TopicSpec{Name: t.Topic, Partitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor}
		bad := ""
		for _, c := range t.Configs {
			if c.Value == nil {
				bad = "null value not supported for topic config " + c.Name
				break
			}
			spec.Configs = append(spec.Configs, meta.ConfigEntry{Key: c.Name, Value: *c.Value})
		}
		if bad != "" {
			fail(kerr.InvalidConfig.Code, bad)
			continue
		}
		var r node.TopicResult
		if req.ValidateOnly {
			r = n.ValidateCreateTopics([]node.TopicSpec{spec})[0]
		} else {
			r = n.CreateTopics(ctx, []node.TopicSpec{spec}, false)[0]
			if r.ErrorCode == 0 && !admWaitLeaders(ctx, n, t.Topic) {
				r.ErrorCode, r.Message = kerr.RequestTimedOut.Code, "topic created; leaders not elected within the timeout"
			}
		}
		if r.ErrorCode != 0 {
			fail(r.ErrorCode, r.Message)
			continue
		}
		if tp := r.Topic; tp != nil {
			rt.TopicID = tp.ID
			rt.NumPartitions = int32(len(tp.Partitions))
			if len(tp.Partitions) > 0 {
				rt.ReplicationFactor = int16(len(tp.Partitions[0].Replicas))
			}
			rt.Configs = admCreatedConfigs(n, tp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// admWaitLeaders waits until every partition of topic has a leader in
// this node's view, or ctx ends. It polls: leadership reports arrive
// through the controller's log, which announces nothing to the handler.
func admWaitLeaders(ctx context.Context, n *node.Node, topic string) bool {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		cv := n.MetadataWith(ctx, []string{topic}, false)
		ok := len(cv.Topics) == 1 && cv.Topics[0].ErrorCode == 0 && len(cv.Topics[0].Partitions) > 0
		if ok {
			for _, p := range cv.Topics[0].Partitions {
				if p.Leader < 0 {
					ok = false
					break
				}
			}
		}
		if ok {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
