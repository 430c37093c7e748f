package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// Shared by the config APIs (CreateTopics, DescribeConfigs, AlterConfigs,
// IncrementalAlterConfigs): Kafka's view of core/node's effective configs.

// admConfigTypes are the Kafka ConfigType of the configs Chronik honours.
var admConfigTypes = map[string]kmsg.ConfigType{
	"retention.ms":                    kmsg.ConfigTypeLong,
	"retention.bytes":                 kmsg.ConfigTypeLong,
	"segment.bytes":                   kmsg.ConfigTypeInt,
	"segment.ms":                      kmsg.ConfigTypeLong,
	"max.message.bytes":               kmsg.ConfigTypeInt,
	"cleanup.policy":                  kmsg.ConfigTypeList,
	"min.insync.replicas":             kmsg.ConfigTypeInt,
	"message.timestamp.type":          kmsg.ConfigTypeString,
	"compression.type":                kmsg.ConfigTypeString,
	"unclean.leader.election.enable":  kmsg.ConfigTypeBoolean,
	"log.retention.ms":                kmsg.ConfigTypeLong,
	"log.retention.bytes":             kmsg.ConfigTypeLong,
	"log.segment.bytes":               kmsg.ConfigTypeInt,
	"log.roll.ms":                     kmsg.ConfigTypeLong,
	"message.max.bytes":               kmsg.ConfigTypeInt,
	"log.retention.check.interval.ms": kmsg.ConfigTypeLong,
	"num.partitions":                  kmsg.ConfigTypeInt,
	"default.replication.factor":      kmsg.ConfigTypeShort,
	"auto.create.topics.enable":       kmsg.ConfigTypeBoolean,
	"broker.rack":                     kmsg.ConfigTypeString,
	"replica.lag.time.max.ms":         kmsg.ConfigTypeLong,
}

// admSource maps core/node's sources to Kafka's; isTopic picks the source
// of a topic's own value.
func admSource(s node.ConfigSource) kmsg.ConfigSource {
	switch s {
	case node.SourceTopic:
		return kmsg.ConfigSourceDynamicTopicConfig
	case node.SourceDynamicDefault:
		return kmsg.ConfigSourceDynamicDefaultBrokerConfig
	case node.SourceStatic:
		return kmsg.ConfigSourceStaticBrokerConfig
	}
	return kmsg.ConfigSourceDefaultConfig
}

// admDescribed turns effective values into DescribeConfigs entries; names,
// if non-nil, filters the keys (unknown names are omitted, as Kafka does).
func admDescribed(vals []node.ConfigValue, names []string, synonyms bool) []kmsg.DescribeConfigsResponseResourceConfig {
	want := func(string) bool { return true }
	if names != nil {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		want = func(k string) bool { return m[k] }
	}
	out := []kmsg.DescribeConfigsResponseResourceConfig{}
	for _, v := range vals {
		if !want(v.Key) {
			continue
		}
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.Value, rc.Source, rc.ReadOnly = v.Key, v.Value, admSource(v.Source), v.ReadOnly
		rc.IsDefault = v.Source == node.SourceDefault
		rc.ConfigType = admConfigTypes[v.Key]
		rc.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{}
		if synonyms {
			for _, s := range v.Synonyms {
				sy := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				sy.Name, sy.Value, sy.Source = s.Key, s.Value, admSource(s.Source)
				rc.ConfigSynonyms = append(rc.ConfigSynonyms, sy)
			}
		}
		out = append(out, rc)
	}
	return out
}

// admCreatedConfigs is CreateTopics v5+'s config list of a created (or
// validated) topic.
func admCreatedConfigs(n *node.Node, t *meta.Topic) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	for _, v := range n.TopicConfigValuesFor(t) {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name, rc.Value, rc.Source = v.Key, v.Value, int8(admSource(v.Source))
		out = append(out, rc)
	}
	return out
}

// admResourceKey names a config resource in an alter request.
type admResourceKey struct {
	t    kmsg.ConfigResourceType
	name string
}

// admAlterOutcome is one resource's answer to an alter request.
type admAlterOutcome struct {
	key  admResourceKey
	code int16
	msg  *string
}

// admAlterEach answers each resource of an AlterConfigs or
// IncrementalAlterConfigs request, in request order: the authorizer first
// (admAlterDenied), then apply, told whether the resource is listed more
// than once (refused for each occurrence, as Kafka does).
func admAlterEach[R any](rc *RequestContext, rs []R, key func(R) admResourceKey, apply func(r R, dup bool) (int16, string)) []admAlterOutcome {
	count := map[admResourceKey]int{}
	for _, r := range rs {
		count[key(r)]++
	}
	out := make([]admAlterOutcome, 0, len(rs))
	for _, r := range rs {
		k := key(r)
		code, msg := admAlterDenied(rc, k.t, k.name), ""
		if code == 0 {
			code, msg = apply(r, count[k] > 1)
		}
		out = append(out, admAlterOutcome{key: k, code: code, msg: admCodeMsg(code, msg)})
	}
	return out
}

// admAlterTarget checks the resource of an AlterConfigs or
// IncrementalAlterConfigs entry: only topics and the cluster-wide broker
// default ("") can be altered.
func admAlterTarget(t kmsg.ConfigResourceType, name string, dup bool) (int16, string) {
	switch {
	case dup:
		return kerr.InvalidRequest.Code, "resource listed more than once in the request"
	case t == kmsg.ConfigResourceTypeBroker && name != "":
		return kerr.InvalidRequest.Code, "per-broker dynamic configs are not supported by chronik; alter the cluster-wide default (resource name \"\")"
	case t != kmsg.ConfigResourceTypeTopic && t != kmsg.ConfigResourceTypeBroker:
		return kerr.InvalidRequest.Code, "unsupported resource type " + t.String()
	case t == kmsg.ConfigResourceTypeTopic && !admValidTopicName(name):
		return kerr.InvalidTopicException.Code, "invalid topic name"
	}
	return 0, ""
}

// admAlterDenied is the authorization failure of altering a resource's
// configs (ALTER_CONFIGS on the topic, or on the cluster for BROKER), or 0.
func admAlterDenied(rc *RequestContext, t kmsg.ConfigResourceType, name string) int16 {
	switch t {
	case kmsg.ConfigResourceTypeTopic:
		return rc.topicDenied(kmsg.ACLOperationAlterConfigs, name)
	case kmsg.ConfigResourceTypeBroker:
		if !rc.authorizedCluster(kmsg.ACLOperationAlterConfigs) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	}
	return 0
}

// admAlterOps applies ops to a checked resource (admAlterTarget), through
// the controller, or only validates them.
func admAlterOps(ctx context.Context, n *node.Node, t kmsg.ConfigResourceType, name string, ops []meta.ConfigOp, validateOnly bool) (int16, string) {
	if t == kmsg.ConfigResourceTypeBroker {
		return n.AlterBrokerConfigs(ctx, ops, validateOnly)
	}
	cmd := meta.AlterConfigs{Topic: name, Ops: ops}
	var res node.TopicResult
	if validateOnly {
		res = n.ValidateAlterConfigs(cmd)
	} else {
		res = n.AlterConfigs(ctx, []meta.AlterConfigs{cmd})[0]
	}
	return res.ErrorCode, res.Message
}
