package node

import (
	"strconv"
	"time"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/plog"
)

// TopicSettings is the effective configuration of one topic: its own
// configs (meta.Topic.Configs) over the cluster's dynamic broker defaults
// over this node's static settings (Config) over Kafka's defaults. Every
// part of Chronik that honours a topic config reads it from here.
type TopicSettings struct {
	RetentionBytes    int64         // retention.bytes; -1 = unlimited
	RetentionAge      time.Duration // retention.ms; -1 = forever
	SegmentBytesMax   int64         // segment.bytes
	SegmentAgeMax     time.Duration // segment.ms
	MaxMessageBytes   int           // max.message.bytes: the one batch limit, front end and apply
	LogAppendTime     bool          // message.timestamp.type=LogAppendTime
	MinInsyncReplicas int           // min.insync.replicas
}

// topicSettings returns t's effective settings (t nil: the defaults).
func (n *Node) topicSettings(t *meta.Topic) TopicSettings {
	s := n.defaultTopicSettings()
	if t == nil {
		return s
	}
	i64 := func(key string, dst *int64) {
		if v, ok := t.Config(key); ok {
			if x, err := strconv.ParseInt(v, 10, 64); err == nil {
				*dst = x
			}
		}
	}
	ms := func(key string, dst *time.Duration) {
		var x int64 = -2
		i64(key, &x)
		switch {
		case x == -1:
			*dst = -1
		case x >= 0:
			*dst = time.Duration(x) * time.Millisecond
		}
	}
	i64("retention.bytes", &s.RetentionBytes)
	ms("retention.ms", &s.RetentionAge)
	i64("segment.bytes", &s.SegmentBytesMax)
	ms("segment.ms", &s.SegmentAgeMax)
	mmb := int64(s.MaxMessageBytes)
	i64("max.message.bytes", &mmb)
	s.MaxMessageBytes = int(min(max(mmb, 0), plog.BatchBytesLimit))
	if v, ok := t.Config("message.timestamp.type"); ok {
		s.LogAppendTime = v == "LogAppendTime"
	}
	misr := int64(s.MinInsyncReplicas)
	i64("min.insync.replicas", &misr)
	s.MinInsyncReplicas = int(max(misr, 1))
	return s
}

// defaultTopicSettings are the settings of a topic that sets nothing.
func (n *Node) defaultTopicSettings() TopicSettings {
	c := n.cfg
	s := TopicSettings{
		RetentionBytes:    plog.DefaultRetentionBytes,
		RetentionAge:      plog.DefaultRetentionAge,
		SegmentBytesMax:   plog.DefaultSegmentBytesMax,
		SegmentAgeMax:     plog.DefaultSegmentAgeMax,
		MaxMessageBytes:   plog.DefaultBatchBytesMax,
		MinInsyncReplicas: 1,
	}
	if c.RetentionBytes != 0 {
		s.RetentionBytes = c.RetentionBytes
	}
	if c.RetentionAge != 0 {
		s.RetentionAge = c.RetentionAge
	}
	if c.Log.SegmentBytesMax != 0 {
		s.SegmentBytesMax = c.Log.SegmentBytesMax
	}
	if c.Log.SegmentAgeMax != 0 {
		s.SegmentAgeMax = c.Log.SegmentAgeMax
	}
	if c.Log.BatchBytesMax != 0 {
		s.MaxMessageBytes = c.Log.BatchBytesMax
	}
	return s
}

// TopicSettingsOf returns the effective settings of topic (the defaults
// if it does not exist).
func (n *Node) TopicSettingsOf(topic string) TopicSettings {
	return n.topicSettings(n.view().Topic(topic))
}
