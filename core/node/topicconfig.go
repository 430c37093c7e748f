package node

import (
	"context"
	"strconv"
	"time"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/plog"
)

// TopicSettings is the effective configuration of one topic: its own
// configs (meta.Topic.Configs) over the cluster's dynamic broker defaults
// (meta.View.BrokerConfigs) over this node's static settings (Config) over
// Kafka's defaults. Every part of Chronik that honours a topic config
// reads it from here.
type TopicSettings struct {
	RetentionBytes    int64         // retention.bytes; -1 = unlimited
	RetentionAge      time.Duration // retention.ms; -1 = forever
	SegmentBytesMax   int64         // segment.bytes
	SegmentAgeMax     time.Duration // segment.ms
	MaxMessageBytes   int           // max.message.bytes: the one batch limit, front end and apply
	LogAppendTime     bool          // message.timestamp.type=LogAppendTime
	MinInsyncReplicas int           // min.insync.replicas
}

// ConfigSource says where an effective config value comes from, in
// Kafka's order of precedence (highest last).
type ConfigSource int8

const (
	SourceDefault        ConfigSource = iota // Kafka's (or Chronik's) default
	SourceStatic                             // this node's flag (STATIC_BROKER_CONFIG)
	SourceDynamicDefault                     // cluster-wide dynamic default (DYNAMIC_DEFAULT_BROKER_CONFIG)
	SourceTopic                              // set on the topic (DYNAMIC_TOPIC_CONFIG)
)

// ConfigValue is one effective config. Synonyms (Kafka's DescribeConfigs
// synonyms) list every source that sets the key or its broker synonym,
// highest precedence first, the effective one included.
type ConfigValue struct {
	Key      string
	Value    *string // nil: no value (Kafka's null)
	Source   ConfigSource
	ReadOnly bool // broker configs only: set at start, never live
	Synonyms []ConfigSynonym
}

// ConfigSynonym is one source of a config's value.
type ConfigSynonym struct {
	Key    string
	Value  *string
	Source ConfigSource
}

// configKey ties a topic config to its broker default and this node's
// static value.
type configKey struct {
	topic    string // "" for broker-only keys
	broker   string // "" for topic keys without a broker default
	readOnly bool   // broker key that cannot change live
	// static returns this node's value and whether it was set (a flag,
	// or a Config field away from its zero value); def is the default.
	static func(c *Config) (string, bool)
	def    string
}

func msString(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatInt(d.Milliseconds(), 10)
}

// minutesString is d in whole minutes (a shorter retention, set only by
// tests through node.Config, shows as 0).
func minutesString(d time.Duration) string { return strconv.FormatInt(int64(d/time.Minute), 10) }

func i64String(v int64) string { return strconv.FormatInt(v, 10) }

func nonZero[T comparable](v T, format func(T) string) (string, bool) {
	var zero T
	return format(v), v != zero
}

// configKeys is every config Chronik honours, sorted by broker key for
// broker-only entries; the order of this table is the order of
// DescribeConfigs answers.
var configKeys = []configKey{
	{topic: "cleanup.policy", def: "delete"},
	{topic: "compression.type", def: "producer"},
	{topic: "max.message.bytes", broker: "message.max.bytes", def: i64String(plog.DefaultBatchBytesMax),
		static: func(c *Config) (string, bool) { return nonZero(int64(c.Log.BatchBytesMax), i64String) }},
	{topic: "message.timestamp.type", def: "CreateTime"},
	{topic: "min.insync.replicas", def: "1"},
	{topic: "retention.bytes", broker: "log.retention.bytes", def: i64String(plog.DefaultRetentionBytes),
		static: func(c *Config) (string, bool) { return nonZero(c.RetentionBytes, i64String) }},
	{topic: "retention.ms", broker: "log.retention.ms", def: msString(plog.DefaultRetentionAge),
		static: func(c *Config) (string, bool) { return nonZero(c.RetentionAge, msString) }},
	{topic: "segment.bytes", broker: "log.segment.bytes", def: i64String(plog.DefaultSegmentBytesMax),
		static: func(c *Config) (string, bool) { return nonZero(c.Log.SegmentBytesMax, i64String) }},
	{topic: "segment.ms", broker: "log.roll.ms", def: msString(plog.DefaultSegmentAgeMax),
		static: func(c *Config) (string, bool) { return nonZero(c.Log.SegmentAgeMax, msString) }},
	{topic: "unclean.leader.election.enable", def: "false"},
	{broker: "auto.create.topics.enable", readOnly: true, def: "true",
		static: func(c *Config) (string, bool) { return strconv.FormatBool(c.AutoCreateTopics), !c.AutoCreateTopics }},
	{broker: "broker.rack", readOnly: true,
		static: func(c *Config) (string, bool) { return c.Rack, c.Rack != "" }},
	{broker: "default.replication.factor", readOnly: true, def: "-1",
		static: func(c *Config) (string, bool) {
			return i64String(int64(max(c.DefaultReplicationFactor, -1))), c.DefaultReplicationFactor > 0
		}},
	{broker: "log.retention.check.interval.ms", readOnly: true, def: msString(DefaultRetentionEvery),
		static: func(c *Config) (string, bool) {
			return msString(c.RetentionInterval), c.RetentionInterval != DefaultRetentionEvery
		}},
	{broker: "offsets.retention.check.interval.ms", readOnly: true, def: msString(DefaultOffsetsRetentionCheckInterval),
		static: func(c *Config) (string, bool) {
			return msString(c.OffsetsRetentionCheckInterval), c.OffsetsRetentionCheckInterval != DefaultOffsetsRetentionCheckInterval
		}},
	{broker: "offsets.topic.num.partitions", readOnly: true, def: strconv.Itoa(meta.DefaultGroupShards),
		static: func(c *Config) (string, bool) {
			return strconv.Itoa(int(c.GroupShards)), c.GroupShards != meta.DefaultGroupShards
		}},
	{broker: "offsets.retention.minutes", readOnly: true, def: minutesString(DefaultOffsetsRetention),
		static: func(c *Config) (string, bool) {
			return minutesString(c.OffsetsRetention), c.OffsetsRetention != DefaultOffsetsRetention
		}},
	{broker: "replica.lag.time.max.ms", readOnly: true, def: msString(DefaultReplicaLagMax),
		static: func(c *Config) (string, bool) {
			return msString(c.ReplicaLagMax), c.ReplicaLagMax != DefaultReplicaLagMax
		}},
	{broker: "max.incremental.fetch.session.cache.slots", readOnly: true, def: "1000",
		static: func(c *Config) (string, bool) {
			x, ok := c.StaticBrokerConfigs["max.incremental.fetch.session.cache.slots"]
			return x, ok
		}},
	{broker: "transactional.id.expiration.ms", readOnly: true, def: msString(DefaultTxnIDExpiration),
		static: func(c *Config) (string, bool) {
			return msString(c.TxnIDExpiration), c.TxnIDExpiration != DefaultTxnIDExpiration
		}},
	{broker: "transaction.abort.timed.out.transaction.cleanup.interval.ms", readOnly: true, def: msString(DefaultTxnTimeoutCheckInterval),
		static: func(c *Config) (string, bool) {
			return msString(c.TxnTimeoutCheckInterval), c.TxnTimeoutCheckInterval != DefaultTxnTimeoutCheckInterval
		}},
	{broker: "num.partitions", readOnly: true, def: "1",
		static: func(c *Config) (string, bool) {
			return i64String(int64(c.DefaultPartitions)), c.DefaultPartitions != DefaultPartitions
		}},
}

// synonyms returns the sources of k, highest precedence first: the topic's
// own value, the cluster-wide dynamic default, this node's static value,
// the default.
func (n *Node) synonyms(v *meta.View, t *meta.Topic, k configKey) []ConfigSynonym {
	var out []ConfigSynonym
	if t != nil && k.topic != "" {
		if x, ok := t.Config(k.topic); ok {
			out = append(out, ConfigSynonym{Key: k.topic, Value: &x, Source: SourceTopic})
		}
	}
	if k.broker != "" {
		if x, ok := v.BrokerConfig(k.broker); ok {
			out = append(out, ConfigSynonym{Key: k.broker, Value: &x, Source: SourceDynamicDefault})
		}
		if k.static != nil {
			if x, ok := k.static(&n.cfg); ok || n.cfg.StaticBrokerConfigs[k.broker] != "" {
				out = append(out, ConfigSynonym{Key: k.broker, Value: &x, Source: SourceStatic})
			}
		}
	}
	def := k.def
	key := k.broker
	if key == "" {
		key = k.topic
	}
	var dv *string
	if def != "" {
		dv = &def
	}
	return append(out, ConfigSynonym{Key: key, Value: dv, Source: SourceDefault})
}

func valueOf(key string, readOnly bool, syn []ConfigSynonym) ConfigValue {
	return ConfigValue{Key: key, Value: syn[0].Value, Source: syn[0].Source, ReadOnly: readOnly, Synonyms: syn}
}

// TopicConfigValues returns every topic config Chronik honours with its
// effective value for topic and where it comes from; false if the topic
// does not exist.
func (n *Node) TopicConfigValues(topic string) ([]ConfigValue, bool) {
	v := n.view()
	t := v.Topic(topic)
	if t == nil {
		return nil, false
	}
	return n.topicConfigValues(v, t), true
}

// TopicConfigValuesFor is TopicConfigValues for t as given (a topic just
// created or validated), over the current broker defaults.
func (n *Node) TopicConfigValuesFor(t *meta.Topic) []ConfigValue {
	return n.topicConfigValues(n.view(), t)
}

func (n *Node) topicConfigValues(v *meta.View, t *meta.Topic) []ConfigValue {
	var out []ConfigValue
	for _, k := range configKeys {
		if k.topic != "" {
			out = append(out, valueOf(k.topic, false, n.synonyms(v, t, k)))
		}
	}
	return out
}

// BrokerConfigValues returns every broker config Chronik honours with its
// effective value on this node and where it comes from.
func (n *Node) BrokerConfigValues() []ConfigValue { return n.BrokerConfigValuesIn(n.view()) }

// BrokerConfigValuesIn is BrokerConfigValues with the cluster-wide
// defaults of view v.
func (n *Node) BrokerConfigValuesIn(v *meta.View) []ConfigValue {
	var out []ConfigValue
	for _, k := range configKeys {
		if k.broker != "" {
			out = append(out, valueOf(k.broker, k.readOnly, n.synonyms(v, nil, k)))
		}
	}
	return out
}

// AlterBrokerConfigs changes the cluster-wide dynamic broker defaults
// through the controller, all or nothing; validateOnly runs the
// controller's checks against the current view and changes nothing.
func (n *Node) AlterBrokerConfigs(ctx context.Context, ops []meta.ConfigOp, validateOnly bool) (code int16, msg string) {
	cmd := meta.AlterBrokerConfigs{Ops: ops}
	if validateOnly {
		var setup []meta.Command
		if cs := n.view().BrokerConfigs; len(cs) > 0 {
			set := meta.AlterBrokerConfigs{}
			for _, c := range cs {
				set.Ops = append(set.Ops, meta.ConfigOp{Key: c.Key, Value: c.Value})
			}
			setup = append(setup, set)
		}
		r := n.dryRun(setup, cmd)
		return r.Code, r.Message
	}
	r, err := n.proposeMeta(ctx, cmd)
	if err != nil {
		return metaCode(ctx, err), err.Error()
	}
	return r.Code, r.Message
}

// topicSettings returns t's effective settings (t nil: the defaults) in
// view v.
func (n *Node) topicSettings(v *meta.View, t *meta.Topic) TopicSettings {
	s := TopicSettings{
		RetentionBytes:    plog.DefaultRetentionBytes,
		RetentionAge:      plog.DefaultRetentionAge,
		SegmentBytesMax:   plog.DefaultSegmentBytesMax,
		SegmentAgeMax:     plog.DefaultSegmentAgeMax,
		MaxMessageBytes:   plog.DefaultBatchBytesMax,
		MinInsyncReplicas: 1,
	}
	for _, k := range configKeys {
		if k.topic == "" {
			continue
		}
		val := n.synonyms(v, t, k)[0].Value
		if val == nil {
			continue
		}
		x, err := strconv.ParseInt(*val, 10, 64)
		num := err == nil
		ms := time.Duration(x) * time.Millisecond
		if x < 0 {
			ms = -1
		}
		switch k.topic {
		case "retention.bytes":
			if num {
				s.RetentionBytes = max(x, -1)
			}
		case "retention.ms":
			if num {
				s.RetentionAge = ms
			}
		case "segment.bytes":
			if num && x > 0 {
				s.SegmentBytesMax = x
			}
		case "segment.ms":
			if num && x > 0 {
				s.SegmentAgeMax = ms
			}
		case "max.message.bytes":
			if num {
				s.MaxMessageBytes = int(min(max(x, 0), plog.BatchBytesLimit))
			}
		case "message.timestamp.type":
			s.LogAppendTime = *val == "LogAppendTime"
		case "min.insync.replicas":
			if num {
				s.MinInsyncReplicas = int(max(x, 1))
			}
		}
	}
	return s
}

// TopicSettingsOf returns the effective settings of topic (the defaults
// if it does not exist).
func (n *Node) TopicSettingsOf(topic string) TopicSettings {
	v := n.view()
	return n.topicSettings(v, v.Topic(topic))
}

// DynamicBrokerConfigs returns the cluster-wide dynamic broker defaults
// set now, sorted by key.
func (n *Node) DynamicBrokerConfigs() []meta.ConfigEntry { return n.view().BrokerConfigs }
