package meta

import "errors"

// Shard ids. The controller shard is fixed; partition shards are allocated
// from a counter in the state starting at FirstPartitionShardID and are never
// reused, so a deleted partition's shard id can never name a new partition.
const (
	ControllerShardID     uint64 = 1
	FirstPartitionShardID uint64 = 1000
)

// Limits. Names put the qualifier last (TopicNameLenMax); lengths are in
// bytes. Decode rejects a command beyond a codec limit with ErrBadCommand;
// apply rejects semantically invalid values with a Kafka error code.
const (
	CommandBytesMax       = 16 << 20 // one encoded command
	TopicNameLenMax       = 249      // Kafka's limit
	GroupIDLenMax         = 1024
	HostLenMax            = 255
	RackLenMax            = 255
	RaftAddrLenMax        = 300
	ConfigEntriesMax      = 64 // configs per topic, ops per AlterConfigs
	ConfigKeyLenMax       = 128
	ConfigValueLenMax     = 1024
	PartitionsPerTopicMax = 10000
	ReplicationFactorMax  = 16
	OffsetMetadataLenMax  = 4096
	CommitEntriesMax      = 10000 // partitions per CommitOffsets/DeleteOffsets
	DeleteGroupsMax       = 1000  // groups per DeleteGroups
	ProducerIDBlockMax    = 1000  // producer ids per AllocateProducerIDs
	BrokersMax            = 1024  // registered brokers
	ResultMessageLenMax   = 1024
	SnapshotBytesMax      = 1 << 30
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
