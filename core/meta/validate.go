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

// configRule checks one value of an allowed topic config.
type configRule func(v string) bool

func intAtLeast(bits int, lo int64) configRule {
	return func(v string) bool {
		n, err := strconv.ParseInt(v, 10, bits)
		return err == nil && n >= lo
	}
}

func oneOf(allowed ...string) configRule {
	return func(v string) bool {
		for _, a := range allowed {
			if v == a {
				return true
			}
		}
		return false
	}
}

// topicConfigs is the allowlist of topic configs and their value rules.
// Minimums follow Kafka's (segment.bytes >= 14, segment.ms >= 1, ...);
// cleanup.policy is "delete" only because Chronik does not compact.
var topicConfigs = map[string]configRule{
	"retention.ms":           intAtLeast(64, -1),
	"retention.bytes":        intAtLeast(64, -1),
	"segment.bytes":          intAtLeast(32, 14),
	"segment.ms":             intAtLeast(64, 1),
	"max.message.bytes":      intAtLeast(32, 0),
	"cleanup.policy":         oneOf("delete"),
	"min.insync.replicas":    intAtLeast(32, 1),
	"message.timestamp.type": oneOf("CreateTime", "LogAppendTime"),
	"compression.type":       oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"),
}

// AllowedTopicConfigs lists the topic config keys apply accepts, sorted.
func AllowedTopicConfigs() []string { return sortedKeys(topicConfigs) }

// checkConfig returns a message for an unknown key or a bad value, or "".
func checkConfig(key, value string) string {
	rule, ok := topicConfigs[key]
	if !ok {
		return fmt.Sprintf("unknown or unsupported topic config %q", key)
	}
	if !rule(value) {
		return fmt.Sprintf("invalid value %q for topic config %q", value, key)
	}
	return ""
}
