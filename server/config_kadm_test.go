package server

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

// Cluster-wide broker defaults through kadm: described with sources on
// every broker, changed live through the controller, inherited by topics
// that set nothing, overridden by a topic's own value; read-only and
// per-broker changes are refused; the legacy AlterConfigs replaces.
func TestBrokerConfigsThreeNodes(t *testing.T) {
	c := startCluster(t, 3, func(cfg *node.Config) { cfg.DefaultPartitions = 2 })
	adm := c.admin()
	defer adm.Close()
	ctx := adminCtx(t)
	c.createTopic("own", 1)
	c.createTopic("inherits", 1)

	brokerValue := func(id int32, key string) kadm.Config {
		t.Helper()
		rc, err := adm.DescribeBrokerConfigs(ctx, id)
		if err != nil || len(rc) != 1 || rc[0].Err != nil {
			t.Fatalf("describe broker %d: %+v %v", id, rc, err)
		}
		for _, cf := range rc[0].Configs {
			if cf.Key == key {
				return cf
			}
		}
		t.Fatalf("broker %d: no %s in %+v", id, key, rc[0].Configs)
		return kadm.Config{}
	}
	topicValue := func(topic, key string) kadm.Config {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil || len(rc) != 1 || rc[0].Err != nil {
			t.Fatalf("describe %s: %+v %v", topic, rc, err)
		}
		for _, cf := range rc[0].Configs {
			if cf.Key == key {
				return cf
			}
		}
		t.Fatalf("%s: no %s", topic, key)
		return kadm.Config{}
	}
	if cf := brokerValue(1, "num.partitions"); *cf.Value != "2" || cf.Source != kmsg.ConfigSourceStaticBrokerConfig {
		t.Fatalf("num.partitions %+v", cf)
	}
	if cf := brokerValue(2, "log.retention.ms"); *cf.Value != "604800000" || cf.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("log.retention.ms before %+v", cf)
	}

	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("3600000")}}, "own")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter topic: %+v %v", ar, err)
	}
	br, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("86400000")}})
	if err != nil || len(br) != 1 || br[0].Err != nil {
		t.Fatalf("alter cluster default: %+v %v", br, err)
	}
	for id := int32(1); id <= 3; id++ {
		if cf := brokerValue(id, "log.retention.ms"); *cf.Value != "86400000" || cf.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
			t.Fatalf("broker %d log.retention.ms %+v", id, cf)
		}
	}
	if cf := topicValue("inherits", "retention.ms"); *cf.Value != "86400000" || cf.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("inherited retention.ms %+v", cf)
	}
	if cf := topicValue("own", "retention.ms"); *cf.Value != "3600000" || cf.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("own retention.ms %+v", cf)
	}
	for _, b := range []uint64{1, 2, 3} {
		if s := c.broker(b).Node.TopicSettingsOf("inherits"); s.RetentionAge.Milliseconds() != 86400000 {
			t.Fatalf("node %d applies retention %v", b, s.RetentionAge)
		}
	}

	for _, tc := range []struct {
		what    string
		cfg     kadm.AlterConfig
		brokers []int32
		want    *kerr.Error
		msg     string
	}{
		{"read-only", kadm.AlterConfig{Op: kadm.SetConfig, Name: "num.partitions", Value: strp("3")}, nil, kerr.InvalidConfig, "dynamically"},
		{"per broker", kadm.AlterConfig{Op: kadm.SetConfig, Name: "log.retention.ms", Value: strp("1")}, []int32{2}, kerr.InvalidRequest, "per-broker"},
		{"segment below minimum", kadm.AlterConfig{Op: kadm.SetConfig, Name: "log.segment.bytes", Value: strp("1000")}, nil, kerr.InvalidConfig, "1048576"},
		{"unknown", kadm.AlterConfig{Op: kadm.SetConfig, Name: "log.flush.interval.ms", Value: strp("1")}, nil, kerr.InvalidConfig, "log.flush.interval.ms"},
	} {
		br, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{tc.cfg}, tc.brokers...)
		if err != nil || len(br) != 1 {
			t.Fatalf("%s: %+v %v", tc.what, br, err)
		}
		wantErr(t, tc.what, br[0].Err, tc.want)
		if !strings.Contains(br[0].ErrMessage, tc.msg) {
			t.Fatalf("%s: message %q lacks %q", tc.what, br[0].ErrMessage, tc.msg)
		}
	}

	// Topic configs Chronik does not honour are refused with a reason.
	for key, val := range map[string]string{"cleanup.policy": "compact", "compression.type": "zstd", "flush.ms": "10", "segment.bytes": "1048575"} {
		ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: key, Value: strp(val)}}, "own")
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, key, ar[0].Err, kerr.InvalidConfig)
		if !strings.Contains(ar[0].ErrMessage, key) {
			t.Fatalf("%s: message %q does not name the key", key, ar[0].ErrMessage)
		}
	}

	// Legacy AlterConfigs (key 33) replaces the whole set.
	lr, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: strp("60000")}}, "own")
	if err != nil || lr[0].Err != nil {
		t.Fatalf("legacy alter: %+v %v", lr, err)
	}
	if cf := topicValue("own", "retention.ms"); cf.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Fatalf("legacy alter kept retention.ms: %+v", cf)
	}
	if cf := topicValue("own", "segment.ms"); *cf.Value != "60000" || cf.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("legacy alter segment.ms: %+v", cf)
	}
	lb, err := adm.AlterBrokerConfigsState(ctx, nil)
	if err != nil || lb[0].Err != nil {
		t.Fatalf("legacy broker alter: %+v %v", lb, err)
	}
	if cf := brokerValue(3, "log.retention.ms"); cf.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("legacy broker alter kept the default: %+v", cf)
	}
}
