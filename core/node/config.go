package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// Sentinel errors. Kafka-level outcomes are error codes in results; these
// are for the node itself.
var (
	ErrClosed        = errors.New("node: closed")
	ErrInvalidConfig = errors.New("node: invalid config")
	// ErrStartFailed: dragonboat could not start (it reports the cause in
	// its log).
	ErrStartFailed = errors.New("node: start failed")
)

// Defaults. Timing defaults hold a stable leader on a loaded 2-core
// machine with three in-process replicas (design brief).
//
// RTTMillisecond is dragonboat's tick: every tick the NodeHost queues a
// LocalTick message to every shard it hosts, and a leader sends a heartbeat
// to each follower every HeartbeatRTT ticks. The work is per shard, so it
// grows with the partitions held: at 5 ms, three nodes on 2 cores holding
// ~1,100 partition shards each (franz-go's kgo suite at RF 3) queued ~220k
// ticks/s per node plus ~75k heartbeats/s; the step workers (which also
// fsync the Raft log in the same loop) fell behind, batched 10-20 ticks
// (dragonboat's "had N LocalTick msgs in one batch"), leaders missed
// CheckQuorum and stepped down (~1,000 step-downs in 25 s), and the
// controller shard's leadership moved with them, taking the group
// coordinator and its in-memory membership along (consumers saw
// UNKNOWN_MEMBER_ID). At 20 ms the same run had 39 step-downs and none of
// the controller. Election timeout: ElectionRTT x RTT = 400 ms (dragonboat
// randomises it up to twice that); heartbeats every 40 ms.
const (
	DefaultRTTMillisecond  = 20
	DefaultElectionRTT     = 20
	DefaultHeartbeatRTT    = 2
	DefaultPartitions      = 1
	DefaultSnapshotEntries = 10000
	// DefaultRaftLogBytes: see Config.RaftLogBytes.
	DefaultRaftLogBytes   = 256 << 20
	DefaultCompactionOver = 5000
	DefaultRetentionEvery = 10 * time.Second // Kafka's log.retention.check.interval.ms is 5 min; a topic with retention.ms=1000 should lose old data within seconds

	controllerVotersMax = 3
	pidBlockSize        = 100 // producer ids fetched from the controller at once
)

// Config configures one node. Zero values take the defaults above.
type Config struct {
	NodeID   uint64 // >= 1; also this node's replica id in every shard
	RaftAddr string // host:port for Raft traffic (dialled through Net)
	Host     string // advertised Kafka host
	Port     int32  // advertised Kafka port
	Rack     string
	// Peers maps node id -> Raft address of every node known at start,
	// including this one. Empty: a cluster of this node alone. The
	// controller's voters are the first up-to-3 ids in sorted order.
	Peers map[uint64]string

	DataDir string
	FS      diskio.FS
	Net     netio.Network
	Clock   clock.Clock
	Logger  *slog.Logger

	RTTMillisecond uint64
	ElectionRTT    uint64
	HeartbeatRTT   uint64

	DefaultPartitions        int32 // for CreateTopics with -1 and auto-create
	DefaultReplicationFactor int16 // -1/0: min(3, registered brokers), resolved by the controller
	AutoCreateTopics         bool

	SnapshotEntries    uint64 // partition shards: entries between snapshots
	CompactionOverhead uint64 // partition shards: entries kept after a snapshot
	// RaftLogBytes is the node's budget for the partitions' Raft log (the
	// WAL): a partition replica that applied its share, RaftLogBytes /
	// hosted partition replicas (at least raftLogShareMin), since its last
	// snapshot gets one now (raftlogtrim.go), so the WAL stays about this
	// size however large the entries; SnapshotEntries alone counts
	// entries, and 10,000 entries of 1 MiB batches are 10 GiB. Zero:
	// DefaultRaftLogBytes; negative: off.
	RaftLogBytes      int64
	RetentionInterval time.Duration // log.retention.check.interval.ms

	// Broker defaults for topics that do not set their own
	// (log.retention.bytes, log.retention.ms); zero: Kafka's defaults.
	// The other log.* defaults (segment bytes and age, message.max.bytes)
	// are Log's SegmentBytesMax, SegmentAgeMax and BatchBytesMax. The
	// effective settings of a topic: TopicSettings (topicconfig.go).
	RetentionBytes int64
	RetentionAge   time.Duration

	// ReplicaLagMax is replica.lag.time.max.ms: a follower that has not
	// been caught up with the leader for longer leaves the ISR (doc.go,
	// "In-sync replicas"). Zero: DefaultReplicaLagMax (30 s).
	ReplicaLagMax time.Duration

	// OffsetsRetention is offsets.retention.minutes: a group without
	// members loses the offsets it committed longer ago (offsetexpiry.go).
	// Zero: DefaultOffsetsRetention (7 days).
	OffsetsRetention time.Duration
	// OffsetsRetentionCheckInterval is offsets.retention.check.interval.ms:
	// how often the group coordinator looks for expired offsets. Zero:
	// DefaultOffsetsRetentionCheckInterval (10 min).
	OffsetsRetentionCheckInterval time.Duration
	// TxnTimeoutCheckInterval is how often the transaction coordinator
	// aborts transactions older than their transaction.timeout.ms (txn.go).
	// Zero: DefaultTxnTimeoutCheckInterval (10 s).
	TxnTimeoutCheckInterval time.Duration
	// TxnIDExpiration is transactional.id.expiration.ms: the same pass
	// forgets transactional ids with no transaction in progress and
	// unchanged for this long. Zero: DefaultTxnIDExpiration (7 days).
	TxnIDExpiration time.Duration
	// OffsetsExpirySettle is how long this node must have coordinated
	// a group shard in its current term before it expires its offsets, so
	// that live members of a group have rejoined it (they do within their
	// session timeout). Zero: DefaultOffsetsExpirySettle (30 min, Kafka's
	// group.max.session.timeout.ms); negative: no wait (tests).
	OffsetsExpirySettle time.Duration
	// GroupShards is N, the number of group coordinator shards a cluster
	// creates (the first node to create them fixes it; later values are
	// ignored): Kafka's offsets.topic.num.partitions. 0:
	// meta.DefaultGroupShards.
	GroupShards int32
	// GroupActive, if set, reports whether the group coordinator holds
	// live members of group (or cannot rule it out): such a group keeps
	// all its offsets. Nil: every group counts as empty. Called from the
	// expiry pass's goroutine; it must not block.
	GroupActive func(group string) bool
	// GroupKnown, if set, reports whether the group coordinator, in its
	// tenure of term term of the group's shard, knows group's membership: it has
	// held the group since the tenure began (loaded from its replicated
	// record, or created since). GroupActive's answer for such a group
	// is final, so the pass does not wait OffsetsExpirySettle for it.
	// Called from the expiry pass's goroutine; it must not block.
	GroupKnown func(term uint64, group string) bool
	// GroupExpired, if set, is called after the expiry pass removed the
	// last committed offset of group (Kafka then drops an Empty group:
	// the coordinator forgets it unless members joined meanwhile).
	GroupExpired func(group string)

	// Log is the template for every partition log (FS, Dir, Clock, Logger
	// are filled in per replica).
	Log plog.Options

	// RaftLogSegmentBytes is the Raft log's (core/wal) segment size; zero:
	// wal.DefaultSegmentBytes.
	RaftLogSegmentBytes int64

	// OnStorageFailure, if set, is the node's fail-stop: FS is wrapped in
	// diskio.FailStop, so the first failed write, fsync or truncate (a
	// full disk, an I/O error) calls it with the error before any caller
	// sees it. It must end the process (chronik serve logs and exits) or
	// fence the node (the simulator). Nil: the error goes to the caller,
	// and dragonboat panics on it.
	OnStorageFailure func(error)

	// DiskSpace, if set, reports the total and usable bytes of the
	// filesystem holding dir (DescribeLogDirs v4's TotalBytes and
	// UsableBytes); the binary supplies statfs. Nil or an error: -1.
	DiskSpace func(dir string) (totalBytes, usableBytes int64, err error)

	// StaticBrokerConfigs are the broker settings given to the binary
	// (flag or environment), by Kafka key name ("log.retention.ms") with
	// the value as given: what DescribeConfigs reports as
	// STATIC_BROKER_CONFIG. Unset keys are absent (DEFAULT_CONFIG).
	StaticBrokerConfigs map[string]string

	// UnsafeAckBeforeApply is a deliberately broken variant for testing
	// the simulator only: Produce proposes without waiting and answers at
	// once with the high watermark as the base offset, before anything is
	// committed. Never set it elsewhere.
	UnsafeAckBeforeApply bool

	// legacyGroups: this node never creates the group shards, as a node
	// of a release before them (tests of the upgrade).
	legacyGroups bool
}

func (c Config) withDefaults() (Config, error) {
	if c.NodeID == 0 || c.RaftAddr == "" || c.FS == nil || c.Net == nil || c.DataDir == "" || c.Host == "" || c.Port <= 0 {
		return c, fmt.Errorf("%w: NodeID, RaftAddr, Host, Port, DataDir, FS and Net are required", ErrInvalidConfig)
	}
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	peers := make(map[uint64]string, len(c.Peers)+1)
	for id, a := range c.Peers {
		peers[id] = a
	}
	if a, ok := peers[c.NodeID]; ok && a != c.RaftAddr {
		return c, fmt.Errorf("%w: Peers names %q for this node, RaftAddr is %q", ErrInvalidConfig, a, c.RaftAddr)
	}
	peers[c.NodeID] = c.RaftAddr
	c.Peers = peers
	def := func(v *uint64, d uint64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.RTTMillisecond, DefaultRTTMillisecond)
	def(&c.ElectionRTT, DefaultElectionRTT)
	def(&c.HeartbeatRTT, DefaultHeartbeatRTT)
	def(&c.SnapshotEntries, DefaultSnapshotEntries)
	def(&c.CompactionOverhead, DefaultCompactionOver)
	if c.RaftLogBytes == 0 {
		c.RaftLogBytes = DefaultRaftLogBytes
	}
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = DefaultPartitions
	}
	if c.DefaultReplicationFactor <= 0 {
		c.DefaultReplicationFactor = -1
	}
	if c.ReplicaLagMax <= 0 {
		c.ReplicaLagMax = DefaultReplicaLagMax
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = DefaultRetentionEvery
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = DefaultOffsetsRetention
	}
	if c.OffsetsRetentionCheckInterval <= 0 {
		c.OffsetsRetentionCheckInterval = DefaultOffsetsRetentionCheckInterval
	}
	if c.TxnTimeoutCheckInterval <= 0 {
		c.TxnTimeoutCheckInterval = DefaultTxnTimeoutCheckInterval
	}
	if c.TxnIDExpiration <= 0 {
		c.TxnIDExpiration = DefaultTxnIDExpiration
	}
	if c.GroupShards <= 0 {
		c.GroupShards = meta.DefaultGroupShards
	}
	if c.GroupShards > meta.GroupShardsMax {
		return c, fmt.Errorf("%w: GroupShards %d beyond %d", ErrInvalidConfig, c.GroupShards, meta.GroupShardsMax)
	}
	if c.OffsetsExpirySettle == 0 {
		c.OffsetsExpirySettle = DefaultOffsetsExpirySettle
	}
	return c, nil
}
