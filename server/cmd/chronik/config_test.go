package main

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/node"
)

func TestParseServeConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		err  string
		chk  func(t *testing.T, c serveConfig)
	}{
		{name: "defaults", chk: func(t *testing.T, c serveConfig) {
			if c.NodeID != 1 || c.KafkaAddr != "127.0.0.1:9092" || c.AdvertisedAddr != c.KafkaAddr || c.DataDir != "./chronik-data" || len(c.Peers) != 0 || c.LogLevel != slog.LevelInfo {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{name: "env", env: map[string]string{"CHRONIK_NODE_ID": "2", "CHRONIK_DATA_DIR": "/x", "CHRONIK_HTTP_ADDR": "off", "CHRONIK_LOG_LEVEL": "debug"},
			args: []string{"--raft-addr", "h:2"},
			chk: func(t *testing.T, c serveConfig) {
				if c.NodeID != 2 || c.DataDir != "/x" || c.HTTPAddr != "" || c.LogLevel != slog.LevelDebug {
					t.Fatalf("env: %+v", c)
				}
			}},
		{name: "flag beats env", env: map[string]string{"CHRONIK_NODE_ID": "2"}, args: []string{"--node-id", "3"},
			chk: func(t *testing.T, c serveConfig) {
				if c.NodeID != 3 {
					t.Fatalf("node id %d, want 3", c.NodeID)
				}
			}},
		{name: "peers", args: []string{"--node-id", "2", "--raft-addr", "b:7002", "--peers", "1=a:7001, 2=b:7002,3=c:7003"},
			chk: func(t *testing.T, c serveConfig) {
				if len(c.Peers) != 3 || c.Peers[3] != "c:7003" || c.peerIDs()[0] != 1 {
					t.Fatalf("peers: %v", c.Peers)
				}
			}},
		{name: "peers without self", args: []string{"--peers", "2=b:1"}, err: "does not list this node"},
		{name: "peers disagree with raft-addr", args: []string{"--peers", "1=a:1"}, err: "but --raft-addr is"},
		{name: "dup peer", args: []string{"--peers", "1=a:1,1=a:2"}, err: "listed twice"},
		{name: "bad peer", args: []string{"--peers", "x"}, err: "not id=host:port"},
		{name: "zero node", args: []string{"--node-id", "0"}, err: "at least 1"},
		{name: "unspecified advertised", args: []string{"--kafka-addr", "0.0.0.0:9092"}, err: "unspecified"},
		{name: "bad port", args: []string{"--kafka-addr", "h:0"}, err: "bad port"},
		{name: "bad format", args: []string{"--log-format", "xml"}, err: "text or json"},
		{name: "bad level", args: []string{"--log-level", "loud"}, err: "--log-level"},
		{name: "bad env", env: map[string]string{"CHRONIK_NODE_ID": "x"}, err: "CHRONIK_NODE_ID"},
		{name: "extra args", args: []string{"extra"}, err: "unexpected arguments"},
		{name: "raft log bytes", env: map[string]string{"CHRONIK_RAFT_LOG_BYTES": "1048576"},
			chk: func(t *testing.T, c serveConfig) {
				if c.RaftLogBytes != 1<<20 {
					t.Fatalf("raft log bytes %d", c.RaftLogBytes)
				}
			}},
		{name: "raft log bytes off", args: []string{"--raft-log-bytes", "-1"},
			chk: func(t *testing.T, c serveConfig) {
				if c.RaftLogBytes != -1 {
					t.Fatalf("raft log bytes %d", c.RaftLogBytes)
				}
			}},
		{name: "raft log bytes zero", args: []string{"--raft-log-bytes", "0"}, err: "--raft-log-bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServeConfig(tc.args, env(tc.env), io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.chk(t, c)
		})
	}
}

// TestBrokerFlags: every broker flag, given as a flag and as its CHRONIK_
// variable, lands in node.Config and in StaticBrokerConfigs under its
// Kafka key with the value as given; nothing given leaves node.Config's
// zero values (the node's defaults) and no static configs.
func TestBrokerFlags(t *testing.T) {
	for _, tc := range []struct {
		flag, value, key string
		chk              func(c node.Config) bool
	}{
		{"log-retention-ms", "86400000", "log.retention.ms", func(c node.Config) bool { return c.RetentionAge == 24*time.Hour }},
		{"log-retention-ms", "-1", "log.retention.ms", func(c node.Config) bool { return c.RetentionAge == -1 }},
		{"log-retention-bytes", "1073741824", "log.retention.bytes", func(c node.Config) bool { return c.RetentionBytes == 1<<30 }},
		{"log-retention-bytes", "-1", "log.retention.bytes", func(c node.Config) bool { return c.RetentionBytes == -1 }},
		{"log-retention-check-interval-ms", "2500", "log.retention.check.interval.ms", func(c node.Config) bool { return c.RetentionInterval == 2500*time.Millisecond }},
		{"log-segment-bytes", "1048576", "log.segment.bytes", func(c node.Config) bool { return c.Log.SegmentBytesMax == 1<<20 }},
		{"log-segment-ms", "3600000", "log.roll.ms", func(c node.Config) bool { return c.Log.SegmentAgeMax == time.Hour }},
		{"message-max-bytes", "2097152", "message.max.bytes", func(c node.Config) bool { return c.Log.BatchBytesMax == 2<<20 }},
		{"replica-lag-time-max-ms", "10000", "replica.lag.time.max.ms", func(c node.Config) bool { return c.ReplicaLagMax == 10*time.Second }},
		{"offsets-retention-minutes", "1440", "offsets.retention.minutes", func(c node.Config) bool { return c.OffsetsRetention == 24*time.Hour }},
		{"offsets-retention-check-interval-ms", "60000", "offsets.retention.check.interval.ms", func(c node.Config) bool { return c.OffsetsRetentionCheckInterval == time.Minute }},
		{"offsets-topic-num-partitions", "7", "offsets.topic.num.partitions", func(c node.Config) bool { return c.GroupShards == 7 }},
		{"num-partitions", "3", "num.partitions", func(c node.Config) bool { return c.DefaultPartitions == 3 }},
		{"transactional-id-expiration-ms", "3600000", "transactional.id.expiration.ms", func(c node.Config) bool { return c.TxnIDExpiration == time.Hour }},
		{"transaction-abort-timed-out-transaction-cleanup-interval-ms", "2000", "transaction.abort.timed.out.transaction.cleanup.interval.ms",
			func(c node.Config) bool { return c.TxnTimeoutCheckInterval == 2*time.Second }},
		{"default-replication-factor", "2", "default.replication.factor", func(c node.Config) bool { return c.DefaultReplicationFactor == 2 }},
		{"auto-create-topics-enable", "false", "auto.create.topics.enable", func(c node.Config) bool { return !c.AutoCreateTopics }},
		{"auto-create-topics-enable", "true", "auto.create.topics.enable", func(c node.Config) bool { return c.AutoCreateTopics }},
		{"broker-rack", "r1", "broker.rack", func(c node.Config) bool { return c.Rack == "r1" }},
		// The server's setting, not the node's: TestFetchSessionSlotsFlag.
		{"max-incremental-fetch-session-cache-slots", "10", "max.incremental.fetch.session.cache.slots", func(node.Config) bool { return true }},
	} {
		envName := "CHRONIK_" + strings.ToUpper(strings.ReplaceAll(tc.flag, "-", "_"))
		for _, how := range []string{"flag", "env"} {
			t.Run(tc.flag+"="+tc.value+"/"+how, func(t *testing.T) {
				var args []string
				env := map[string]string{}
				if how == "flag" {
					args = []string{"--" + tc.flag + "=" + tc.value}
				} else {
					env[envName] = tc.value
				}
				c, err := parseServeConfig(args, func(k string) string { return env[k] }, io.Discard)
				if err != nil {
					t.Fatal(err)
				}
				var nc node.Config
				c.Broker.apply(&nc)
				if !tc.chk(nc) {
					t.Fatalf("node.Config %+v", nc)
				}
				if want := map[string]string{tc.key: tc.value}; !maps.Equal(nc.StaticBrokerConfigs, want) {
					t.Fatalf("StaticBrokerConfigs %v, want %v", nc.StaticBrokerConfigs, want)
				}
			})
		}
	}
	t.Run("none given", func(t *testing.T) {
		c, err := parseServeConfig(nil, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var nc node.Config
		c.Broker.apply(&nc)
		want := node.Config{AutoCreateTopics: true}
		if !reflect.DeepEqual(nc, want) {
			t.Fatalf("node.Config %+v, want only AutoCreateTopics", nc)
		}
	})
	t.Run("bare bool flag, several flags, flag over env", func(t *testing.T) {
		env := map[string]string{"CHRONIK_AUTO_CREATE_TOPICS_ENABLE": "false", "CHRONIK_NUM_PARTITIONS": "4", "CHRONIK_BROKER_RACK": "env-rack"}
		c, err := parseServeConfig([]string{"--auto-create-topics-enable", "--broker-rack", "r2", "--log-retention-ms", "1000"},
			func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var nc node.Config
		c.Broker.apply(&nc)
		want := map[string]string{"auto.create.topics.enable": "true", "num.partitions": "4", "broker.rack": "r2", "log.retention.ms": "1000"}
		if !nc.AutoCreateTopics || nc.DefaultPartitions != 4 || nc.Rack != "r2" || nc.RetentionAge != time.Second || !maps.Equal(nc.StaticBrokerConfigs, want) {
			t.Fatalf("node.Config %+v", nc)
		}
	})
}

// TestBrokerFlagsRefused: bad values stop the start with an error naming
// the flag (or the variable).
func TestBrokerFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--log-retention-ms", "x"}, want: "-log-retention-ms: not an integer"},
		{args: []string{"--log-retention-ms", "-2"}, want: "-log-retention-ms: must be -1 (forever) or at least 1, not -2"},
		{args: []string{"--log-retention-ms", "0"}, want: "-log-retention-ms: must be -1 (forever) or at least 1, not 0"},
		{args: []string{"--log-retention-ms", "99999999999999999999"}, want: "-log-retention-ms: not an integer"},
		{args: []string{"--log-retention-bytes", "-5"}, want: "-log-retention-bytes: must be -1 (unlimited) or at least 1, not -5"},
		{args: []string{"--log-retention-bytes", "0"}, want: "-log-retention-bytes: must be -1 (unlimited) or at least 1, not 0"},
		{args: []string{"--log-retention-check-interval-ms", "-1"}, want: "-log-retention-check-interval-ms: must be at least 1"},
		{args: []string{"--log-retention-check-interval-ms", "0"}, want: "-log-retention-check-interval-ms: must be at least 1"},
		{args: []string{"--replica-lag-time-max-ms", "-1"}, want: "-replica-lag-time-max-ms: must be at least 1"},
		{args: []string{"--offsets-retention-minutes", "0"}, want: "-offsets-retention-minutes: must be at least 1, not 0"},
		{args: []string{"--offsets-retention-check-interval-ms", "0"}, want: "-offsets-retention-check-interval-ms: must be at least 1"},
		{args: []string{"--max-incremental-fetch-session-cache-slots", "-1"}, want: "-max-incremental-fetch-session-cache-slots: must be at least 0"},
		{args: []string{"--tls-cert-file", "c.pem"}, want: "--tls-cert-file and --tls-key-file go together"},
		{args: []string{"--authorizer", "simple"}, want: "--authorizer must be acl or empty"},
		{args: []string{"--superusers", "User:a"}, want: "--superusers needs --authorizer acl"},
		{args: []string{"--authorizer", "acl", "--superusers", "admin"}, want: "is not Type:name"},
		{args: []string{"--sasl-mechanisms", "GSSAPI"}, want: "unknown mechanism"},
		{args: []string{"--tls-client-ca-file", "ca.pem"}, want: "--tls-client-ca-file needs --tls-cert-file"},
		{args: []string{"--raft-tls-cert-file", "c.pem", "--raft-tls-key-file", "k.pem"}, want: "go together (mutual TLS between nodes)"},
		{args: []string{"--log-segment-bytes", "1048575"}, want: "-log-segment-bytes: must be in [1048576 (Kafka's minimum), 1073741824], not 1048575"},
		{args: []string{"--log-segment-bytes", "2147483647"}, want: "-log-segment-bytes: must be in [1048576"},
		{args: []string{"--log-segment-bytes", "1MB"}, want: "-log-segment-bytes: not an integer"},
		{args: []string{"--log-segment-ms", "0"}, want: "-log-segment-ms: must be at least 1"},
		{args: []string{"--log-segment-ms", "-1"}, want: "-log-segment-ms: must be at least 1"},
		{args: []string{"--message-max-bytes", "60"}, want: "-message-max-bytes: must be in [61, 67108864], not 60"},
		{args: []string{"--message-max-bytes", "67108865"}, want: "-message-max-bytes: must be in [61, 67108864]"},
		{args: []string{"--num-partitions", "0"}, want: "-num-partitions: must be at least 1, not 0"},
		{args: []string{"--num-partitions", "2147483648"}, want: "-num-partitions: must be at least 1"},
		{args: []string{"--default-replication-factor", "0"}, want: "-default-replication-factor: must be at least 1, not 0"},
		{args: []string{"--default-replication-factor", "32768"}, want: "-default-replication-factor: must be at least 1"},
		{args: []string{"--auto-create-topics-enable=maybe"}, want: "-auto-create-topics-enable: must be true or false"},
		{args: []string{"--broker-rack", strings.Repeat("r", 256)}, want: "-broker-rack: longer than 255 bytes"},
		{env: map[string]string{"CHRONIK_LOG_SEGMENT_BYTES": "1024"}, want: `CHRONIK_LOG_SEGMENT_BYTES="1024": must be in [1048576`},
		{env: map[string]string{"CHRONIK_NUM_PARTITIONS": "three"}, want: `CHRONIK_NUM_PARTITIONS="three": not an integer`},
		{env: map[string]string{"CHRONIK_AUTO_CREATE_TOPICS_ENABLE": "yes please"}, want: "CHRONIK_AUTO_CREATE_TOPICS_ENABLE"},
	} {
		t.Run(strings.Join(tc.args, " ")+fmt.Sprint(tc.env), func(t *testing.T) {
			_, err := parseServeConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestFetchSessionSlotsFlag: --max-incremental-fetch-session-cache-slots
// reaches the broker's fetch session cache; Kafka's 0 (no sessions) maps
// to the server's "none" (negative), and not given keeps its default.
func TestFetchSessionSlotsFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"--max-incremental-fetch-session-cache-slots=5"}, 5},
		{[]string{"--max-incremental-fetch-session-cache-slots=0"}, -1},
	} {
		c, err := parseServeConfig(tc.args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Broker.fetchSessions().Slots; got != tc.want {
			t.Fatalf("%v: Slots %d, want %d", tc.args, got, tc.want)
		}
	}
}
