package meta

import "errors"

// Shard ids. The controller shard is fixed; partition shards are allocated
// from a counter in the state starting at FirstPartitionShardID and are never
// reused, so a deleted partition's shard id can never name a new partition.
const (
	ControllerShardID     uint64 = 1
	FirstPartitionShardID uint64 = 1000
)

// Limits on commands. Decode rejects anything beyond them with ErrBadCommand;
// apply rejects semantically invalid values with a Kafka error code.
const (
	MaxCommandBytes          = 16 << 20 // one encoded command
	MaxTopicNameLen          = 249      // Kafka's limit
	MaxGroupIDLen            = 1024
	MaxHostLen               = 255
	MaxRackLen               = 255
	MaxRaftAddrLen           = 300
	MaxConfigEntries         = 64 // per topic and per command
	MaxConfigKeyLen          = 128
	MaxConfigValueLen        = 1024
	MaxPartitionsPerTopic    = 10000
	MaxOffsetMetadataLen     = 4096
	MaxCommitEntries         = 10000 // partitions in one CommitOffsets/DeleteOffsets
	MaxDeleteGroups          = 1000
	MaxProducerIDBlock       = 1000
	MaxResultMessageLen      = 1024
	MaxSnapshotBytes         = 1 << 30
	MaxBrokers               = 1024
	MaxReplicationFactorHigh = 16 // largest replication factor accepted by apply
)

// Sentinel errors.
var (
	// ErrBadCommand: the bytes are not a valid encoded command (truncated,
	// unknown version or kind, a length or count beyond its limit, trailing
	// bytes).
	ErrBadCommand = errors.New("meta: bad command")
	// ErrBadResult: the bytes are not a valid encoded result.
	ErrBadResult = errors.New("meta: bad result")
	// ErrBadSnapshot: a snapshot failed its CRC, version or structure checks.
	ErrBadSnapshot = errors.New("meta: bad snapshot")
	// ErrUnknownQuery: Lookup was given a query type it does not serve.
	ErrUnknownQuery = errors.New("meta: unknown query")
)
