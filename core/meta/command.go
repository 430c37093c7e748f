package meta

import "fmt"

// CommandVersion is the first byte of every encoded command. Decode rejects
// other versions; a future version adds a case, never changes this one.
const CommandVersion byte = 1

// Kind identifies a command type on the wire (second byte). Values are
// frozen.
type Kind byte

const (
	KindRegisterBroker        Kind = 1
	KindUnregisterBroker      Kind = 2
	KindCreateTopic           Kind = 3
	KindDeleteTopic           Kind = 4
	KindCreatePartitions      Kind = 5
	KindAlterConfigs          Kind = 6
	KindAllocateProducerIDs   Kind = 7
	KindCommitOffsets         Kind = 8
	KindDeleteGroups          Kind = 9
	KindDeleteOffsets         Kind = 10
	KindSetPartitionLeader    Kind = 11
	KindReassignPartition     Kind = 12
	KindReplicaCaughtUp       Kind = 13
	KindCompleteReassignment  Kind = 14
	KindAlterBrokerConfigs    Kind = 15
	KindAlterScramCredentials Kind = 16
	KindCreateACLs            Kind = 17
	KindDeleteACLs            Kind = 18
	KindExpireOffsets         Kind = 19
	KindInitTxnProducer       Kind = 20
	KindAddTxnPartitions      Kind = 21
	KindAddTxnGroup           Kind = 22
	KindTxnCommitOffsets      Kind = 23
	KindEndTxn                Kind = 24
	KindTxnMarkersWritten     Kind = 25
	KindAbortTxn              Kind = 26
	KindExpireTxn             Kind = 27
	KindEndTxnBump            Kind = 28
	KindPutGroupState         Kind = 29
	KindFenceGroupStates      Kind = 30
	KindCreateGroupShards     Kind = 31
	KindTxnGroupMarkers       Kind = 32
	KindCommitTxnOffsets      Kind = 33
	KindImportOffsets         Kind = 34
	KindImportGroupState      Kind = 35
	KindFinishImport          Kind = 36
	KindDeleteTopicOffsets    Kind = 37
)

// Command is one controller-shard command. The set is closed: only the
// types in this package implement it.
type Command interface {
	Kind() Kind
	encode(e *enc)
}

// RegisterBroker adds a broker or replaces its addresses (upsert by NodeID).
type RegisterBroker struct {
	NodeID   int32
	Host     string
	Port     int32
	Rack     string
	RaftAddr string
}

// UnregisterBroker removes a broker. Partitions that name it as a replica
// keep it; only future placements skip it.
type UnregisterBroker struct {
	NodeID int32
}

// ConfigEntry is one topic config key and value.
type ConfigEntry struct {
	Key   string
	Value string
}

// CreateTopic creates a topic with Partitions partitions. ReplicationFactor
// -1 means min(3, registered brokers). Replicas are placed in apply.
// ValidateOnly requests are answered by the proposer and never proposed.
type CreateTopic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           []ConfigEntry
}

// DeleteTopic deletes a topic by Name or, if Name is empty, by ID, together
// with every committed offset on it.
type DeleteTopic struct {
	Name string
	ID   TopicID
}

// CreatePartitions raises a topic's partition count to Count.
type CreatePartitions struct {
	Topic string
	Count int32
}

// ConfigOpType is an incremental config operation.
type ConfigOpType byte

const (
	ConfigSet    ConfigOpType = 0
	ConfigDelete ConfigOpType = 1
)

// ConfigOp sets or deletes one key. Value is ignored for ConfigDelete.
type ConfigOp struct {
	Key   string
	Op    ConfigOpType
	Value string
}

// AlterConfigs applies Ops to a topic's configs, all or nothing.
type AlterConfigs struct {
	Topic string
	Ops   []ConfigOp
}

// AllocateProducerIDs reserves Count (1..ProducerIDBlockMax) contiguous
// producer ids.
type AllocateProducerIDs struct {
	Count int32
}

// OffsetCommit is one partition's committed offset.
type OffsetCommit struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// CommitOffsets commits offsets for Group, all or nothing: if any partition
// is unknown, nothing is committed. CommitTimestampMs comes from the
// proposer, never from a clock in apply.
type CommitOffsets struct {
	Group             string
	CommitTimestampMs int64
	Offsets           []OffsetCommit
}

// DeleteGroups deletes every committed offset of each group.
type DeleteGroups struct {
	Groups []string
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// DeleteOffsets deletes some committed offsets of Group (Kafka OffsetDelete).
type DeleteOffsets struct {
	Group      string
	Partitions []TopicPartition
}

// ExpireOffsets deletes the committed offsets of Group whose
// CommitTimestampMs is below CutoffMs (offsets.retention.minutes). The
// group coordinator proposes it for a group it holds no members of, with
// CutoffMs = its clock minus the retention: the cutoff comes from the
// proposer, never from a clock in apply. Membership is not replicated, so
// apply cannot re-check it: a member joining between the proposer's check
// and the apply may lose offsets it has not committed since the cutoff
// (Kafka's expiry has the same race); see DESIGN.md, "Groups".
type ExpireOffsets struct {
	Group    string
	CutoffMs int64
}

func (RegisterBroker) Kind() Kind      { return KindRegisterBroker }
func (UnregisterBroker) Kind() Kind    { return KindUnregisterBroker }
func (CreateTopic) Kind() Kind         { return KindCreateTopic }
func (DeleteTopic) Kind() Kind         { return KindDeleteTopic }
func (CreatePartitions) Kind() Kind    { return KindCreatePartitions }
func (AlterConfigs) Kind() Kind        { return KindAlterConfigs }
func (AllocateProducerIDs) Kind() Kind { return KindAllocateProducerIDs }
func (CommitOffsets) Kind() Kind       { return KindCommitOffsets }
func (DeleteGroups) Kind() Kind        { return KindDeleteGroups }
func (DeleteOffsets) Kind() Kind       { return KindDeleteOffsets }
func (ExpireOffsets) Kind() Kind       { return KindExpireOffsets }

func (k Kind) String() string {
	switch k {
	case KindRegisterBroker:
		return "RegisterBroker"
	case KindUnregisterBroker:
		return "UnregisterBroker"
	case KindCreateTopic:
		return "CreateTopic"
	case KindDeleteTopic:
		return "DeleteTopic"
	case KindCreatePartitions:
		return "CreatePartitions"
	case KindAlterConfigs:
		return "AlterConfigs"
	case KindAllocateProducerIDs:
		return "AllocateProducerIDs"
	case KindCommitOffsets:
		return "CommitOffsets"
	case KindDeleteGroups:
		return "DeleteGroups"
	case KindDeleteOffsets:
		return "DeleteOffsets"
	case KindSetPartitionLeader:
		return "SetPartitionLeader"
	case KindReassignPartition:
		return "ReassignPartition"
	case KindReplicaCaughtUp:
		return "ReplicaCaughtUp"
	case KindCompleteReassignment:
		return "CompleteReassignment"
	case KindAlterBrokerConfigs:
		return "AlterBrokerConfigs"
	case KindAlterScramCredentials:
		return "AlterScramCredentials"
	case KindCreateACLs:
		return "CreateACLs"
	case KindDeleteACLs:
		return "DeleteACLs"
	case KindExpireOffsets:
		return "ExpireOffsets"
	case KindInitTxnProducer:
		return "InitTxnProducer"
	case KindAddTxnPartitions:
		return "AddTxnPartitions"
	case KindAddTxnGroup:
		return "AddTxnGroup"
	case KindTxnCommitOffsets:
		return "TxnCommitOffsets"
	case KindEndTxn:
		return "EndTxn"
	case KindTxnMarkersWritten:
		return "TxnMarkersWritten"
	case KindAbortTxn:
		return "AbortTxn"
	case KindExpireTxn:
		return "ExpireTxn"
	case KindEndTxnBump:
		return "EndTxnBump"
	case KindPutGroupState:
		return "PutGroupState"
	case KindFenceGroupStates:
		return "FenceGroupStates"
	case KindCreateGroupShards:
		return "CreateGroupShards"
	case KindTxnGroupMarkers:
		return "TxnGroupMarkersWritten"
	case KindCommitTxnOffsets:
		return "CommitTxnOffsets"
	case KindImportOffsets:
		return "ImportOffsets"
	case KindImportGroupState:
		return "ImportGroupState"
	case KindFinishImport:
		return "FinishImport"
	case KindDeleteTopicOffsets:
		return "DeleteTopicOffsets"
	default:
		return fmt.Sprintf("Kind(%d)", byte(k))
	}
}

// Encode returns the wire form of cmd: version, kind, fields. It does not
// check limits; a command beyond them fails Decode, so apply answers it with
// INVALID_REQUEST.
func Encode(cmd Command) []byte {
	e := &enc{b: make([]byte, 0, 64)}
	e.u8(CommandVersion)
	e.u8(byte(cmd.Kind()))
	cmd.encode(e)
	return e.b
}

// Decode parses an encoded command. Any malformed input returns an error
// wrapping ErrBadCommand; it never panics.
func Decode(b []byte) (Command, error) {
	if len(b) > CommandBytesMax {
		return nil, fmt.Errorf("%w: %d bytes beyond limit %d", ErrBadCommand, len(b), CommandBytesMax)
	}
	d := &dec{b: b, sentinel: ErrBadCommand}
	if v := d.u8(); d.err == nil && v != CommandVersion {
		d.fail("unknown version %d", v)
	}
	k := Kind(d.u8())
	if d.err != nil {
		return nil, d.err
	}
	cmd := decodeBody(d, k)
	d.done()
	if d.err != nil {
		return nil, d.err
	}
	return cmd, nil
}

func decodeBody(d *dec, k Kind) Command {
	switch k {
	case KindRegisterBroker:
		return RegisterBroker{NodeID: d.i32(), Host: d.str(HostLenMax), Port: d.i32(),
			Rack: d.str(RackLenMax), RaftAddr: d.str(RaftAddrLenMax)}
	case KindUnregisterBroker:
		return UnregisterBroker{NodeID: d.i32()}
	case KindCreateTopic:
		return CreateTopic{Name: d.str(TopicNameLenMax), Partitions: d.i32(),
			ReplicationFactor: d.i16(), Configs: decodeConfigs(d)}
	case KindDeleteTopic:
		return DeleteTopic{Name: d.str(TopicNameLenMax), ID: d.id()}
	case KindCreatePartitions:
		return CreatePartitions{Topic: d.str(TopicNameLenMax), Count: d.i32()}
	case KindAlterConfigs:
		return decodeAlterConfigs(d)
	case KindAllocateProducerIDs:
		return AllocateProducerIDs{Count: d.i32()}
	case KindCommitOffsets:
		return decodeCommitOffsets(d)
	case KindDeleteGroups:
		n := d.count(DeleteGroupsMax)
		var c DeleteGroups
		for i := 0; i < n && d.err == nil; i++ {
			c.Groups = append(c.Groups, d.str(GroupIDLenMax))
		}
		return c
	case KindDeleteOffsets:
		c := DeleteOffsets{Group: d.str(GroupIDLenMax)}
		n := d.count(CommitEntriesMax)
		for i := 0; i < n && d.err == nil; i++ {
			c.Partitions = append(c.Partitions, TopicPartition{Topic: d.str(TopicNameLenMax), Partition: d.i32()})
		}
		return c
	case KindSetPartitionLeader:
		return SetPartitionLeader{ShardID: d.uvar(), Leader: d.i32(), Term: d.uvar()}
	case KindReassignPartition, KindReplicaCaughtUp, KindCompleteReassignment:
		return decodeReassignBody(d, k)
	case KindAlterBrokerConfigs:
		return AlterBrokerConfigs{Ops: decodeConfigOps(d)}
	case KindAlterScramCredentials:
		return decodeAlterScramCredentials(d)
	case KindCreateACLs:
		return CreateACLs{ACLs: decodeACLs(d, ACLChangeMax)}
	case KindDeleteACLs:
		return DeleteACLs{ACLs: decodeACLs(d, ACLChangeMax)}
	case KindExpireOffsets:
		return ExpireOffsets{Group: d.str(GroupIDLenMax), CutoffMs: d.svar()}
	case KindInitTxnProducer, KindAddTxnPartitions, KindAddTxnGroup, KindTxnCommitOffsets,
		KindEndTxn, KindTxnMarkersWritten, KindAbortTxn, KindExpireTxn, KindEndTxnBump:
		return decodeTxnBody(d, k)
	case KindPutGroupState, KindFenceGroupStates:
		return decodeGroupStateBody(d, k)
	case KindCreateGroupShards, KindTxnGroupMarkers, KindCommitTxnOffsets, KindImportOffsets,
		KindImportGroupState, KindFinishImport, KindDeleteTopicOffsets:
		return decodeGroupShardBody(d, k)
	default:
		d.fail("unknown kind %d", byte(k))
		return nil
	}
}

func decodeConfigs(d *dec) []ConfigEntry {
	n := d.count(ConfigEntriesMax)
	var out []ConfigEntry
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, ConfigEntry{Key: d.str(ConfigKeyLenMax), Value: d.str(ConfigValueLenMax)})
	}
	return out
}

func decodeAlterConfigs(d *dec) Command {
	return AlterConfigs{Topic: d.str(TopicNameLenMax), Ops: decodeConfigOps(d)}
}

func decodeConfigOps(d *dec) []ConfigOp {
	var ops []ConfigOp
	n := d.count(ConfigEntriesMax)
	for i := 0; i < n && d.err == nil; i++ {
		op := ConfigOp{Key: d.str(ConfigKeyLenMax), Op: ConfigOpType(d.u8()), Value: d.str(ConfigValueLenMax)}
		if op.Op != ConfigSet && op.Op != ConfigDelete {
			d.fail("unknown config op %d", op.Op)
		}
		ops = append(ops, op)
	}
	return ops
}

func decodeCommitOffsets(d *dec) Command {
	c := CommitOffsets{Group: d.str(GroupIDLenMax), CommitTimestampMs: d.svar()}
	n := d.count(CommitEntriesMax)
	for i := 0; i < n && d.err == nil; i++ {
		c.Offsets = append(c.Offsets, OffsetCommit{Topic: d.str(TopicNameLenMax), Partition: d.i32(),
			Offset: d.svar(), LeaderEpoch: d.i32(), Metadata: d.str(OffsetMetadataLenMax)})
	}
	return c
}

func (c RegisterBroker) encode(e *enc) {
	e.svar(int64(c.NodeID))
	e.str(c.Host)
	e.svar(int64(c.Port))
	e.str(c.Rack)
	e.str(c.RaftAddr)
}

func (c UnregisterBroker) encode(e *enc) { e.svar(int64(c.NodeID)) }

func (c CreateTopic) encode(e *enc) {
	e.str(c.Name)
	e.svar(int64(c.Partitions))
	e.svar(int64(c.ReplicationFactor))
	encodeConfigs(e, c.Configs)
}

func encodeConfigs(e *enc, cs []ConfigEntry) {
	e.uvar(uint64(len(cs)))
	for _, c := range cs {
		e.str(c.Key)
		e.str(c.Value)
	}
}

func (c DeleteTopic) encode(e *enc) {
	e.str(c.Name)
	e.id(c.ID)
}

func (c CreatePartitions) encode(e *enc) {
	e.str(c.Topic)
	e.svar(int64(c.Count))
}

func (c AlterConfigs) encode(e *enc) {
	e.str(c.Topic)
	encodeConfigOps(e, c.Ops)
}

func encodeConfigOps(e *enc, ops []ConfigOp) {
	e.uvar(uint64(len(ops)))
	for _, op := range ops {
		e.str(op.Key)
		e.u8(byte(op.Op))
		e.str(op.Value)
	}
}

func (c AllocateProducerIDs) encode(e *enc) { e.svar(int64(c.Count)) }

func (c CommitOffsets) encode(e *enc) {
	e.str(c.Group)
	e.svar(c.CommitTimestampMs)
	e.uvar(uint64(len(c.Offsets)))
	for _, o := range c.Offsets {
		e.str(o.Topic)
		e.svar(int64(o.Partition))
		e.svar(o.Offset)
		e.svar(int64(o.LeaderEpoch))
		e.str(o.Metadata)
	}
}

func (c DeleteGroups) encode(e *enc) {
	e.uvar(uint64(len(c.Groups)))
	for _, g := range c.Groups {
		e.str(g)
	}
}

func (c DeleteOffsets) encode(e *enc) {
	e.str(c.Group)
	e.uvar(uint64(len(c.Partitions)))
	for _, p := range c.Partitions {
		e.str(p.Topic)
		e.svar(int64(p.Partition))
	}
}

func (c ExpireOffsets) encode(e *enc) {
	e.str(c.Group)
	e.svar(c.CutoffMs)
}
