package main

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/server"
)

// brokerSettings are the Kafka broker settings `chronik serve` takes. A
// zero field means "not given": node.Config then applies its own default,
// and DescribeConfigs can tell a static setting (Given) from a default.
type brokerSettings struct {
	RetentionAge             time.Duration // log.retention.ms; -1 = forever
	RetentionBytes           int64         // log.retention.bytes; -1 = unlimited
	RetentionInterval        time.Duration // log.retention.check.interval.ms
	SegmentBytesMax          int64         // log.segment.bytes
	SegmentAgeMax            time.Duration // log.roll.ms
	BatchBytesMax            int           // message.max.bytes
	DefaultPartitions        int32         // num.partitions
	DefaultReplicationFactor int16         // default.replication.factor
	AutoCreateTopics         *bool         // auto.create.topics.enable; nil = not given (true)
	Rack                     string        // broker.rack
	ReplicaLagMax            time.Duration // replica.lag.time.max.ms
	OffsetsRetention         time.Duration // offsets.retention.minutes
	OffsetsRetentionInterval time.Duration // offsets.retention.check.interval.ms
	GroupShards              int32         // offsets.topic.num.partitions
	FetchSessionSlots        *int          // max.incremental.fetch.session.cache.slots; nil = not given (1000)
	TxnIDExpiration          time.Duration // transactional.id.expiration.ms
	TxnTimeoutCheckInterval  time.Duration // transaction.abort.timed.out.transaction.cleanup.interval.ms

	// Given maps the Kafka key of every setting given (flag or
	// environment) to its value as given.
	Given map[string]string
}

// Limits of the broker flags (Kafka 4's, where Chronik can honour them).
const (
	segmentBytesFlagMin = 1 << 20 // Kafka 4's log.segment.bytes minimum
	batchHeaderBytes    = 61      // a v2 record batch header: the smallest batch
)

// brokerFlag is one broker setting: its flag (and CHRONIK_ variable),
// Kafka key, usage, and a parser that validates and stores a value.
type brokerFlag struct {
	name, key, usage string
	isBool           bool
	parse            func(s *brokerSettings, v string) error
}

func brokerFlags() []brokerFlag {
	return []brokerFlag{
		{name: "log-retention-ms", key: "log.retention.ms",
			usage: "default retention.ms of topics, in `ms`; -1 keeps data forever (default: Kafka's 604800000, 7 days)",
			parse: func(s *brokerSettings, v string) error { return parseMs(v, true, &s.RetentionAge) }},
		{name: "log-retention-bytes", key: "log.retention.bytes",
			usage: "default retention.bytes: the `bytes` kept per partition; -1 is unlimited (default -1)",
			parse: func(s *brokerSettings, v string) error {
				n, err := parseInt(v, -1, math.MaxInt64, "-1 (unlimited) or at least 1")
				if err == nil && n == 0 {
					err = fmt.Errorf("must be -1 (unlimited) or at least 1, not 0")
				}
				s.RetentionBytes = n
				return err
			}},
		{name: "log-retention-check-interval-ms", key: "log.retention.check.interval.ms",
			usage: "how often retention runs on every partition, in `ms` (default 10000)",
			parse: func(s *brokerSettings, v string) error { return parseMs(v, false, &s.RetentionInterval) }},
		{name: "log-segment-bytes", key: "log.segment.bytes",
			usage: fmt.Sprintf("default segment.bytes: roll a partition's segment file at this many `bytes`, in [%d, %d] (default %d)", segmentBytesFlagMin, plog.SegmentBytesLimit, plog.DefaultSegmentBytesMax),
			parse: func(s *brokerSettings, v string) error {
				n, err := parseInt(v, segmentBytesFlagMin, plog.SegmentBytesLimit, fmt.Sprintf("in [%d (Kafka's minimum), %d]", segmentBytesFlagMin, plog.SegmentBytesLimit))
				s.SegmentBytesMax = n
				return err
			}},
		{name: "log-segment-ms", key: "log.roll.ms",
			usage: "default segment.ms: roll a partition's segment file at this age, in `ms` (default 604800000, 7 days)",
			parse: func(s *brokerSettings, v string) error { return parseMs(v, false, &s.SegmentAgeMax) }},
		{name: "message-max-bytes", key: "message.max.bytes",
			usage: fmt.Sprintf("default max.message.bytes: the largest record batch accepted, in `bytes`, in [%d, %d] (default %d)", batchHeaderBytes, plog.BatchBytesLimit, plog.DefaultBatchBytesMax),
			parse: func(s *brokerSettings, v string) error {
				n, err := parseInt(v, batchHeaderBytes, plog.BatchBytesLimit, fmt.Sprintf("in [%d, %d]", batchHeaderBytes, plog.BatchBytesLimit))
				s.BatchBytesMax = int(n)
				return err
			}},
		{name: "replica-lag-time-max-ms", key: "replica.lag.time.max.ms",
			usage: "a follower that has not caught up with its leader for this long, in `ms`, leaves the in-sync replicas (min.insync.replicas counts them; default 30000)",
			parse: func(s *brokerSettings, v string) error { return parseMs(v, false, &s.ReplicaLagMax) }},
		{name: "offsets-retention-minutes", key: "offsets.retention.minutes",
			usage: "a consumer group without members loses the offsets it committed more than this many `minutes` ago (default 10080, 7 days)",
			parse: func(s *brokerSettings, v string) error {
				n, err := parseInt(v, 1, math.MaxInt64/int64(time.Minute), "at least 1")
				s.OffsetsRetention = time.Duration(n) * time.Minute
				return err
			}},
		{name: "offsets-retention-check-interval-ms", key: "offsets.retention.check.interval.ms",
			usage: "how often the group coordinator looks for expired committed offsets, in `ms` (default 600000, 10 minutes)",
			parse: func(s *brokerSettings, v string) error { return parseMs(v, false, &s.OffsetsRetentionInterval) }},
		{name: "offsets-topic-num-partitions", key: "offsets.topic.num.partitions",
			usage: fmt.Sprintf("`count` of group coordinator shards (Kafka's __consumer_offsets partitions) a new cluster creates, in [1, %d]; fixed once created, later values are ignored (default %d)", meta.GroupShardsMax, meta.DefaultGroupShards),
			parse: func(s *brokerSettings, v string) error {
				n, err := parseInt(v, 1, meta.GroupShardsMax, fmt.Sprintf("in [1, %d]", meta.GroupShardsMax))
				s.GroupShards = int32(n)
				return err
			}},
		{name: "max-incremental-fetch-session-cache-slots", key: "max.incremental.fetch.session.cache.slots",
			usage: "how many consumer fetch sessions (KIP-227) this broker keeps, a `count`; 0 serves every fetch without a session (default 1000)",
			parse: func(s *brokerSettings, v string) error {
				n, err := parseInt(v, 0, math.MaxInt32, "at least 0")
				x := int(n)
				s.FetchSessionSlots = &x
				return err
			}},
		{name: "transactional-id-expiration-ms", key: "transactional.id.expiration.ms",
			usage: "the transaction coordinator forgets a transactional id with no transaction in progress left unchanged this long, in `ms` (default 604800000, 7 days)",
			parse: func(s *brokerSettings, v string) error { return parseMs(v, false, &s.TxnIDExpiration) }},
		{name: "transaction-abort-timed-out-transaction-cleanup-interval-ms", key: "transaction.abort.timed.out.transaction.cleanup.interval.ms",
			usage: "how often the transaction coordinator aborts transactions past their transaction.timeout.ms (and forgets expired ids), in `ms` (default 10000)",
			parse: func(s *brokerSettings, v string) error { return parseMs(v, false, &s.TxnTimeoutCheckInterval) }},
		{name: "num-partitions", key: "num.partitions",
			usage: fmt.Sprintf("`count` of partitions of auto-created topics and of CreateTopics asking for -1 (default %d)", node.DefaultPartitions),
			parse: func(s *brokerSettings, v string) error {
				n, err := parseInt(v, 1, math.MaxInt32, "at least 1")
				s.DefaultPartitions = int32(n)
				return err
			}},
		{name: "default-replication-factor", key: "default.replication.factor",
			usage: "replication factor (`count`) of auto-created topics and of CreateTopics asking for -1 (default: min(3, registered brokers))",
			parse: func(s *brokerSettings, v string) error {
				n, err := parseInt(v, 1, math.MaxInt16, "at least 1")
				s.DefaultReplicationFactor = int16(n)
				return err
			}},
		{name: "auto-create-topics-enable", key: "auto.create.topics.enable", isBool: true,
			usage: "create a topic when a client produces to it or asks Metadata for it (default true)",
			parse: func(s *brokerSettings, v string) error {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return fmt.Errorf("must be true or false")
				}
				s.AutoCreateTopics = &b
				return nil
			}},
		{name: "broker-rack", key: "broker.rack",
			usage: "this broker's `rack`, reported in Metadata and DescribeCluster (default none)",
			parse: func(s *brokerSettings, v string) error {
				if len(v) > meta.RackLenMax {
					return fmt.Errorf("longer than %d bytes", meta.RackLenMax)
				}
				s.Rack = v
				return nil
			}},
	}
}

// parseInt parses a decimal integer in [lo, hi]; want describes the range.
func parseInt(v string, lo, hi int64, want string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("must be %s, not %d", want, n)
	}
	return n, nil
}

// parseMs parses milliseconds: at least 1, or -1 where forever is allowed.
// 0 is refused because a zero node.Config field means "the default".
func parseMs(v string, forever bool, dst *time.Duration) error {
	lo, want := int64(1), "at least 1"
	if forever {
		lo, want = -1, "-1 (forever) or at least 1"
	}
	n, err := parseInt(v, lo, math.MaxInt64/int64(time.Millisecond), want)
	if err == nil && n == 0 {
		err = fmt.Errorf("must be %s, not 0", want)
	}
	if err != nil {
		return err
	}
	if n == -1 {
		*dst = -1
	} else {
		*dst = time.Duration(n) * time.Millisecond
	}
	return nil
}

// brokerFlagValue is a brokerFlag as a flag.Value: it parses into the
// shared settings and records the value as given.
type brokerFlagValue struct {
	f   brokerFlag
	s   *brokerSettings
	raw string
}

func (v *brokerFlagValue) String() string {
	if v == nil {
		return ""
	}
	return v.raw
}

func (v *brokerFlagValue) Set(raw string) error {
	if err := v.f.parse(v.s, raw); err != nil {
		return err
	}
	v.raw = raw
	if v.s.Given == nil {
		v.s.Given = map[string]string{}
	}
	v.s.Given[v.f.key] = raw
	return nil
}

func (v *brokerFlagValue) IsBoolFlag() bool { return v.f.isBool }

// addBrokerFlags registers the broker flags on fs, parsing into s.
func addBrokerFlags(fs *flag.FlagSet, s *brokerSettings) {
	for _, f := range brokerFlags() {
		fs.Var(&brokerFlagValue{f: f, s: s}, f.name, f.usage+" [Kafka "+f.key+"]")
	}
}

// fetchSessions is the fetch session cache the settings ask for (zero:
// the server's default).
func (s brokerSettings) fetchSessions() server.FetchSessionConfig {
	var c server.FetchSessionConfig
	if s.FetchSessionSlots != nil {
		c.Slots = *s.FetchSessionSlots
		if c.Slots == 0 {
			c.Slots = -1 // Kafka's 0: no sessions; the server's 0 means its default
		}
	}
	return c
}

// apply sets the given settings on c; what was not given stays zero (the
// node's default), except AutoCreateTopics, which defaults to true.
func (s brokerSettings) apply(c *node.Config) {
	c.RetentionAge, c.RetentionBytes, c.RetentionInterval = s.RetentionAge, s.RetentionBytes, s.RetentionInterval
	c.Log.SegmentBytesMax, c.Log.SegmentAgeMax, c.Log.BatchBytesMax = s.SegmentBytesMax, s.SegmentAgeMax, s.BatchBytesMax
	c.DefaultPartitions, c.DefaultReplicationFactor = s.DefaultPartitions, s.DefaultReplicationFactor
	c.AutoCreateTopics = s.AutoCreateTopics == nil || *s.AutoCreateTopics
	c.Rack = s.Rack
	c.ReplicaLagMax = s.ReplicaLagMax
	c.OffsetsRetention, c.OffsetsRetentionCheckInterval = s.OffsetsRetention, s.OffsetsRetentionInterval
	c.GroupShards = s.GroupShards
	c.TxnIDExpiration, c.TxnTimeoutCheckInterval = s.TxnIDExpiration, s.TxnTimeoutCheckInterval
	if len(s.Given) > 0 {
		c.StaticBrokerConfigs = make(map[string]string, len(s.Given))
		for k, v := range s.Given {
			c.StaticBrokerConfigs[k] = v
		}
	}
}
