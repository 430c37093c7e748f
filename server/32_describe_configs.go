package server

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// DescribeConfigs: v1-4
//
// Behaviour:
//   - TOPIC resources: every allowed topic config (core/meta's allowlist).
//     Keys set on the topic have Source DYNAMIC_TOPIC_CONFIG; the others
//     carry the node's default with Source DEFAULT_CONFIG (IsDefault is a
//     v0 field; v0 is not served). ConfigNames null = all; otherwise only
//     the named keys that exist are returned (Kafka omits unknown ones).
//     Unknown topic: UNKNOWN_TOPIC_OR_PARTITION; invalid name:
//     INVALID_TOPIC_EXCEPTION.
//   - BROKER resources (name "" or a broker id) are answered with an empty
//     config list and no error: Chronik has no dynamic broker configs, and
//     kadm and the Kafka tools ask. A non-numeric broker name is
//     INVALID_REQUEST. BROKER_LOGGER and other types: INVALID_REQUEST.
//   - Answers are read after a ReadIndex on the controller shard, so a
//     config change acknowledged by any broker is visible (Kafka's
//     brokers may answer from stale metadata; kadm users expect this).
//   - Synonyms (v1+) are always empty; Documentation (v3+) is null;
//     ConfigType (v3+) is set per key. Nothing is sensitive or read-only.
//
// Version notes: v1 synonyms and Source; v3 ConfigType and
// Documentation; v4 flexible.

const describeConfigsKey = 32

func init() {
	register(API{Key: describeConfigsKey, MinVersion: 1, MaxVersion: 4, Handler: handleDescribeConfigs})
}

// admConfigTypes are the Kafka ConfigType of the allowed topic configs.
var admConfigTypes = map[string]kmsg.ConfigType{
	"retention.ms":           kmsg.ConfigTypeLong,
	"retention.bytes":        kmsg.ConfigTypeLong,
	"segment.bytes":          kmsg.ConfigTypeInt,
	"segment.ms":             kmsg.ConfigTypeLong,
	"max.message.bytes":      kmsg.ConfigTypeInt,
	"cleanup.policy":         kmsg.ConfigTypeList,
	"min.insync.replicas":    kmsg.ConfigTypeInt,
	"message.timestamp.type": kmsg.ConfigTypeString,
	"compression.type":       kmsg.ConfigTypeString,
}

type admConfig struct {
	Name   string
	Value  *string
	Source kmsg.ConfigSource
}

// admTopicConfigs merges a topic's set configs over the defaults, sorted
// by key; names, if non-nil, filters the keys.
func admTopicConfigs(set, defaults []meta.ConfigEntry, names []string) []admConfig {
	want := func(string) bool { return true }
	if names != nil {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		want = func(k string) bool { return m[k] }
	}
	setm := map[string]string{}
	for _, c := range set {
		setm[c.Key] = c.Value
	}
	var out []admConfig
	seen := map[string]bool{}
	add := func(k, v string, src kmsg.ConfigSource) {
		if seen[k] || !want(k) {
			return
		}
		seen[k] = true
		out = append(out, admConfig{Name: k, Value: &v, Source: src})
	}
	// defaults is sorted and covers the allowlist; set keys come from it.
	for _, d := range defaults {
		if v, ok := setm[d.Key]; ok {
			add(d.Key, v, kmsg.ConfigSourceDynamicTopicConfig)
		} else {
			add(d.Key, d.Value, kmsg.ConfigSourceDefaultConfig)
		}
	}
	for _, c := range set {
		add(c.Key, c.Value, kmsg.ConfigSourceDynamicTopicConfig)
	}
	return out
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
	defaults := n.TopicConfigDefaults()
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		fail := func(code int16, msg string) {
			rr.ErrorCode, rr.ErrorMessage = code, admCodeMsg(code, msg)
		}
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if !admValidTopicName(r.ResourceName) {
				fail(kerr.InvalidTopicException.Code, "invalid topic name")
				break
			}
			set, ok := n.TopicConfig(r.ResourceName)
			if !ok {
				fail(kerr.UnknownTopicOrPartition.Code, "")
				break
			}
			for _, c := range admTopicConfigs(set, defaults, r.ConfigNames) {
				rc := kmsg.NewDescribeConfigsResponseResourceConfig()
				rc.Name, rc.Value, rc.Source = c.Name, c.Value, c.Source
				rc.IsDefault = c.Source == kmsg.ConfigSourceDefaultConfig
				rc.ConfigType = admConfigTypes[c.Name]
				rc.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{}
				rr.Configs = append(rr.Configs, rc)
			}
		case kmsg.ConfigResourceTypeBroker:
			if r.ResourceName != "" {
				if _, err := strconv.ParseInt(r.ResourceName, 10, 32); err != nil {
					fail(kerr.InvalidRequest.Code, "broker resource name must be a broker id")
					break
				}
			}
			rr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		default:
			fail(kerr.InvalidRequest.Code, "unsupported resource type "+r.ResourceType.String())
		}
		if rr.Configs == nil {
			rr.Configs = []kmsg.DescribeConfigsResponseResourceConfig{}
		}
		resp.Resources = append(resp.Resources, rr)
	}
	return resp, nil
}
