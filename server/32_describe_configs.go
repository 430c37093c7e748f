package server

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v1-4
//
// Behaviour:
//   - TOPIC resources: every topic config Chronik honours with its
//     effective value and source: DYNAMIC_TOPIC_CONFIG (set on the topic),
//     DYNAMIC_DEFAULT_BROKER_CONFIG (the cluster-wide default set through
//     the BROKER resource ""), STATIC_BROKER_CONFIG (this node's flag),
//     DEFAULT_CONFIG. ConfigNames null = all; otherwise only the named
//     keys that exist are returned (Kafka omits unknown ones). Unknown
//     topic: UNKNOWN_TOPIC_OR_PARTITION; invalid name:
//     INVALID_TOPIC_EXCEPTION.
//   - BROKER resources (name "" for the cluster-wide defaults, or this
//     broker's id): every broker setting Chronik honours (log.retention.ms,
//     log.retention.bytes, log.segment.bytes, log.roll.ms,
//     message.max.bytes, log.retention.check.interval.ms, num.partitions,
//     default.replication.factor, auto.create.topics.enable, broker.rack)
//     with its effective value on this node and source; the ones that only
//     a flag sets are ReadOnly. Another broker's id: INVALID_REQUEST (its
//     static settings live on that broker; Kafka clients send broker
//     resources to the broker itself). A non-numeric name: INVALID_REQUEST.
//     BROKER_LOGGER and other types: INVALID_REQUEST.
//   - IncludeSynonyms: every source that sets the key (the topic, the
//     cluster-wide default, this node's flag, the default), highest
//     precedence first.
//   - Answers are read after a ReadIndex on the controller shard, so a
//     config change acknowledged by any broker is visible (Kafka's
//     brokers may answer from stale metadata; kadm users expect this).
//   - Documentation (v3+) is null; ConfigType (v3+) is set per key.
//     Nothing is sensitive.
//
// Version notes: v1 synonyms and Source; v3 ConfigType and
// Documentation; v4 flexible.

const describeConfigsKey = 32

func init() {
	register(API{Key: describeConfigsKey, MinVersion: 1, MaxVersion: 4, Handler: handleDescribeConfigs})
}

func handleDescribeConfigs(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	// Read-your-writes across brokers: an alteration acknowledged by any
	// broker is visible here (best effort: on failure, the local view).
	_ = n.SyncController(ctx)
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		rr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		fail := func(code int16, msg string) {
			rr.ErrorCode, rr.ErrorMessage = code, admCodeMsg(code, msg)
		}
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if !admValidTopicName(r.ResourceName) {
				fail(kerr.InvalidTopicException.Code, "invalid topic name")
				break
			}
			if code := rc.topicDenied(kmsg.ACLOperationDescribeConfigs, r.ResourceName); code != 0 {
				fail(code, "")
				break
			}
			vals, ok := n.TopicConfigValues(r.ResourceName)
			if !ok {
				fail(kerr.UnknownTopicOrPartition.Code, "")
				break
			}
			rr.Configs = admDescribed(vals, r.ConfigNames, req.IncludeSynonyms)
		case kmsg.ConfigResourceTypeBroker:
			if code, msg := admBrokerResource(int32(n.ID()), r.ResourceName); code != 0 {
				fail(code, msg)
				break
			}
			if !rc.authorizedCluster(kmsg.ACLOperationDescribeConfigs) {
				fail(kerr.ClusterAuthorizationFailed.Code, "")
				break
			}
			rr.Configs = admDescribed(n.BrokerConfigValues(), r.ConfigNames, req.IncludeSynonyms)
		default:
			fail(kerr.InvalidRequest.Code, "unsupported resource type "+r.ResourceType.String())
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}

// admBrokerResource checks a BROKER resource name: "" (the cluster-wide
// defaults) or this broker's id.
func admBrokerResource(self int32, name string) (int16, string) {
	if name == "" {
		return 0, ""
	}
	id, err := strconv.ParseInt(name, 10, 32)
	switch {
	case err != nil:
		return kerr.InvalidRequest.Code, "broker resource name must be a broker id"
	case int32(id) != self:
		return kerr.InvalidRequest.Code, "broker " + name + "'s configs are answered by broker " + name + " itself (this is broker " + strconv.Itoa(int(self)) + ")"
	}
	return 0, ""
}
