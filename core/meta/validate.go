package meta

import (
	"fmt"
	"strconv"
	"strings"
)

// validTopicName applies Kafka's rule: 1..249 characters of [a-zA-Z0-9._-],
// and not "." or "..".
func validTopicName(name string) bool {
	if len(name) == 0 || len(name) > TopicNameLenMax || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// collisionKey is what Kafka compares to reject names that differ only in
// '.' versus '_' (they collide in metric names).
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// configRule checks one value of an allowed config; it returns "" or what
// is wrong with the value (Kafka's ConfigException wording).
type configRule func(v string) string

func intBetween(bits int, lo, hi int64) configRule {
	return func(v string) string {
		n, err := strconv.ParseInt(v, 10, bits)
		switch {
		case err != nil:
			return fmt.Sprintf("Value must be a whole number of %d bits", bits)
		case n < lo:
			return fmt.Sprintf("Value must be at least %d", lo)
		case n > hi:
			return fmt.Sprintf("Value must be no more than %d", hi)
		}
		return ""
	}
}

func intAtLeast(bits int, lo int64) configRule {
	return intBetween(bits, lo, int64(1)<<(bits-1)-1)
}

func oneOf(why string, allowed ...string) configRule {
	return func(v string) string {
		for _, a := range allowed {
			if v == a {
				return ""
			}
		}
		return fmt.Sprintf("String must be one of: %s%s", strings.Join(allowed, ", "), why)
	}
}

// Limits of configs whose range is Chronik's or Kafka 4's.
const (
	// SegmentBytesMin is Kafka 4's minimum segment.bytes (and
	// log.segment.bytes).
	SegmentBytesMin = 1 << 20
	// MessageBytesLimit is the largest max.message.bytes accepted: the
	// partition log's largest batch (plog.BatchBytesLimit).
	MessageBytesLimit = 64 << 20
)

// topicConfigs is the allowlist of topic configs Chronik honours and their
// value rules. Every key here takes effect (DESIGN.md, "Topic and broker
// settings"); Kafka topic configs that Chronik does not honour are
// refused (unsupportedTopicConfigs), never accepted and ignored.
var topicConfigs = map[string]configRule{
	"retention.ms":           intAtLeast(64, -1),
	"retention.bytes":        intAtLeast(64, -1),
	"segment.bytes":          intAtLeast(32, SegmentBytesMin),
	"segment.ms":             intAtLeast(64, 1),
	"max.message.bytes":      intBetween(32, 0, MessageBytesLimit),
	"cleanup.policy":         oneOf(" (chronik does not compact yet: log compaction is not implemented)", "delete"),
	"min.insync.replicas":    intAtLeast(32, 1),
	"message.timestamp.type": oneOf("", "CreateTime", "LogAppendTime"),
	// Batches are stored as the producer compressed them; recompression
	// is not implemented, so only "producer" is honoured.
	"compression.type": oneOf(" (chronik stores batches as the producer compressed them)", "producer"),
	// Raft never elects a leader that lacks committed entries.
	"unclean.leader.election.enable": oneOf(" (Raft never elects an unclean leader)", "false"),
}

// unsupportedTopicConfigs are Kafka topic configs Chronik knows but does not
// honour: refused with a message that says so.
var unsupportedTopicConfigs = map[string]bool{
	"compression.gzip.level": true, "compression.lz4.level": true, "compression.zstd.level": true,
	"delete.retention.ms": true, "file.delete.delay.ms": true, "flush.messages": true, "flush.ms": true,
	"follower.replication.throttled.replicas": true, "leader.replication.throttled.replicas": true,
	"index.interval.bytes": true, "local.retention.bytes": true, "local.retention.ms": true,
	"max.compaction.lag.ms": true, "min.compaction.lag.ms": true, "min.cleanable.dirty.ratio": true,
	"message.downconversion.enable": true, "message.format.version": true,
	"message.timestamp.after.max.ms": true, "message.timestamp.before.max.ms": true,
	"message.timestamp.difference.max.ms": true, "preallocate": true, "remote.storage.enable": true,
	"remote.log.copy.disable": true, "remote.log.delete.on.disable": true,
	"segment.index.bytes": true, "segment.jitter.ms": true,
}

// AllowedTopicConfigs lists the topic config keys apply accepts, sorted.
func AllowedTopicConfigs() []string { return sortedKeys(topicConfigs) }

// checkConfig returns a message for an unknown key or a bad value, or "".
func checkConfig(key, value string) string {
	return checkIn(topicConfigs, unsupportedTopicConfigs, "topic", key, value)
}

func checkIn(rules map[string]configRule, unsupported map[string]bool, what, key, value string) string {
	rule, ok := rules[key]
	switch {
	case !ok && unsupported[key]:
		return fmt.Sprintf("%s config %q is not supported by chronik", what, key)
	case !ok:
		return fmt.Sprintf("unknown %s config %q", what, key)
	}
	if msg := rule(value); msg != "" {
		return fmt.Sprintf("Invalid value %q for configuration %s: %s", value, key, msg)
	}
	return ""
}
