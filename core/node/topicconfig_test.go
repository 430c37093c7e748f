package node

import (
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/plog"
)

// A topic's own config beats the cluster-wide dynamic default, which
// beats this node's flag, which beats Kafka's default; sources say which.
func TestTopicSettingsPrecedence(t *testing.T) {
	n := &Node{cfg: Config{RetentionAge: time.Hour, RetentionBytes: 5 << 20, DefaultPartitions: DefaultPartitions,
		RetentionInterval: DefaultRetentionEvery, AutoCreateTopics: true, Log: plog.Options{SegmentAgeMax: time.Minute}}}
	v := &meta.View{BrokerConfigs: []meta.ConfigEntry{{Key: "log.retention.ms", Value: "60000"}, {Key: "message.max.bytes", Value: "2000000"}}}
	topic := &meta.Topic{Name: "t", Configs: []meta.ConfigEntry{
		{Key: "message.timestamp.type", Value: "LogAppendTime"}, {Key: "min.insync.replicas", Value: "2"}, {Key: "retention.ms", Value: "-1"},
	}}
	got := n.topicSettings(v, topic)
	want := TopicSettings{RetentionBytes: 5 << 20, RetentionAge: -1, SegmentBytesMax: plog.DefaultSegmentBytesMax,
		SegmentAgeMax: time.Minute, MaxMessageBytes: 2000000, LogAppendTime: true, MinInsyncReplicas: 2}
	if got != want {
		t.Fatalf("topic settings\n got %+v\nwant %+v", got, want)
	}
	// Without the topic's own value, the cluster-wide default rules.
	if s := n.topicSettings(v, &meta.Topic{Name: "u"}); s.RetentionAge != time.Minute || s.LogAppendTime || s.MinInsyncReplicas != 1 {
		t.Fatalf("defaults %+v", s)
	}
	sources := map[string]ConfigSource{}
	values := map[string]string{}
	for _, c := range n.topicConfigValues(v, topic) {
		sources[c.Key] = c.Source
		if c.Value != nil {
			values[c.Key] = *c.Value
		}
	}
	for key, src := range map[string]ConfigSource{
		"retention.ms": SourceTopic, "max.message.bytes": SourceDynamicDefault, "retention.bytes": SourceStatic,
		"segment.ms": SourceStatic, "segment.bytes": SourceDefault, "message.timestamp.type": SourceTopic,
	} {
		if sources[key] != src {
			t.Errorf("%s: source %d, want %d", key, sources[key], src)
		}
	}
	if values["segment.ms"] != "60000" || values["retention.bytes"] != "5242880" || values["max.message.bytes"] != "2000000" {
		t.Errorf("values %v", values)
	}
	for _, c := range n.topicConfigValues(v, topic) {
		if c.Key == "retention.ms" && (len(c.Synonyms) != 4 || c.Synonyms[1].Key != "log.retention.ms" || c.Synonyms[2].Source != SourceStatic) {
			t.Errorf("retention.ms synonyms %+v", c.Synonyms)
		}
	}
	broker := map[string]ConfigValue{}
	for _, c := range n.BrokerConfigValuesIn(v) {
		broker[c.Key] = c
	}
	if c := broker["log.retention.ms"]; c.Source != SourceDynamicDefault || *c.Value != "60000" || c.ReadOnly {
		t.Errorf("log.retention.ms %+v", c)
	}
	if c := broker["num.partitions"]; c.Source != SourceDefault || *c.Value != "1" || !c.ReadOnly {
		t.Errorf("num.partitions %+v", c)
	}
	if c := broker["broker.rack"]; c.Value != nil || c.Source != SourceDefault {
		t.Errorf("broker.rack %+v", c)
	}
}
