package meta

import (
	"slices"
)

// Cluster-wide dynamic broker defaults (Kafka's DYNAMIC_DEFAULT_BROKER_CONFIG,
// set with IncrementalAlterConfigs or AlterConfigs on the BROKER resource
// with an empty name). They are replicated here so that every node agrees
// on them; a topic's own config overrides them, and they override each
// node's static settings (flags).

// AlterBrokerConfigs applies Ops to the cluster-wide dynamic broker
// defaults, all or nothing.
type AlterBrokerConfigs struct {
	Ops []ConfigOp
}

func (AlterBrokerConfigs) Kind() Kind { return KindAlterBrokerConfigs }

func (c AlterBrokerConfigs) encode(e *enc) { encodeConfigOps(e, c.Ops) }

// dynamicBrokerConfigs are the broker configs that can change live, with
// their rules.
var dynamicBrokerConfigs = map[string]configRule{
	"log.retention.ms":    intAtLeast(64, -1),
	"log.retention.bytes": intAtLeast(64, -1),
	"log.segment.bytes":   intAtLeast(32, SegmentBytesMin),
	"log.roll.ms":         intAtLeast(64, 1), // Kafka's broker name for segment.ms
	"message.max.bytes":   intBetween(32, 0, MessageBytesLimit),
}

// staticBrokerConfigs are the broker configs Chronik honours that are set
// only at a node's start (flags): refused as dynamic changes, as Kafka
// refuses read-only configs.
var staticBrokerConfigs = map[string]bool{
	"log.retention.check.interval.ms": true, "num.partitions": true, "default.replication.factor": true,
	"auto.create.topics.enable": true, "broker.rack": true, "replica.lag.time.max.ms": true,
	"offsets.retention.minutes": true, "offsets.retention.check.interval.ms": true,
	"offsets.topic.num.partitions": true,
}

// DynamicBrokerConfigKeys lists the broker configs AlterBrokerConfigs
// accepts, sorted.
func DynamicBrokerConfigKeys() []string { return sortedKeys(dynamicBrokerConfigs) }

// checkBrokerConfig returns what is wrong with setting key to value
// cluster-wide, or "".
func checkBrokerConfig(key, value string) string {
	if staticBrokerConfigs[key] {
		return "Cannot update these configs dynamically: " + key + " (set it with the node's flag)"
	}
	return checkIn(dynamicBrokerConfigs, nil, "dynamic broker", key, value)
}

func (s *state) alterBrokerConfigs(c AlterBrokerConfigs) (Result, bool) {
	configs, res := applyConfigOps(s.brokerConfigs, c.Ops, func(key string) bool { _, ok := dynamicBrokerConfigs[key]; return ok }, checkBrokerConfig)
	if res.Code != 0 {
		return res, false
	}
	if slices.Equal(configs, s.brokerConfigs) {
		return Result{}, false
	}
	s.brokerConfigs = configs
	return Result{}, true
}

// encodeSnapshotBrokerConfigs writes the broker-config section of a
// version 4 snapshot (sorted by key).
func (s *state) encodeSnapshotBrokerConfigs(e *enc) { encodeConfigs(e, s.brokerConfigs) }

func decodeSnapshotBrokerConfigs(d *dec, s *state) {
	cs := decodeConfigs(d)
	for i := 1; i < len(cs); i++ {
		if cs[i-1].Key >= cs[i].Key {
			d.fail("broker configs not sorted or duplicated at %q", cs[i].Key)
			return
		}
	}
	s.brokerConfigs = cs
}
