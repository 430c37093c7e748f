package meta

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// apply executes cmd at raft index and reports whether the state changed.
// It is deterministic: its only inputs are the state, index and cmd.
func (s *state) apply(index uint64, cmd Command) (Result, bool) {
	if !s.groupShard && len(s.groupShards) > 0 && legacyGroupCommand(cmd) {
		return fail(kerr.NotCoordinator.Code, "%s: groups live in group shards", cmd.Kind()), false
	}
	switch c := cmd.(type) {
	case RegisterBroker:
		return s.registerBroker(index, c)
	case UnregisterBroker:
		return s.unregisterBroker(index, c)
	case CreateTopic:
		return s.createTopic(index, c)
	case DeleteTopic:
		return s.deleteTopic(index, c)
	case CreatePartitions:
		return s.createPartitions(index, c)
	case AlterConfigs:
		return s.alterConfigs(index, c)
	case AllocateProducerIDs:
		return s.allocateProducerIDs(c)
	case CommitOffsets:
		return s.commitOffsets(c)
	case DeleteGroups:
		return s.deleteGroups(c)
	case DeleteOffsets:
		return s.deleteOffsets(c)
	case SetPartitionLeader:
		if IsGroupShard(c.ShardID) {
			return s.setGroupShardLeader(c)
		}
		return s.setPartitionLeader(c)
	case ReassignPartition:
		return s.reassignPartition(index, c)
	case ReplicaCaughtUp:
		return s.replicaCaughtUp(c)
	case CompleteReassignment:
		return s.completeReassignment(index, c)
	case AlterBrokerConfigs:
		return s.alterBrokerConfigs(c)
	case AlterScramCredentials:
		return s.alterScramCredentials(c)
	case CreateACLs:
		return s.createACLs(c)
	case DeleteACLs:
		return s.deleteACLs(c)
	case ExpireOffsets:
		return s.expireOffsets(c)
	case InitTxnProducer:
		return s.initTxnProducer(c)
	case AddTxnPartitions:
		return s.addTxnPartitions(c)
	case AddTxnGroup:
		return s.addTxnGroup(c)
	case TxnCommitOffsets:
		return s.txnCommitOffsets(c)
	case EndTxn:
		return s.endTxn(c)
	case TxnMarkersWritten:
		return s.txnMarkersWritten(c)
	case AbortTxn:
		return s.abortTxn(c)
	case ExpireTxn:
		return s.expireTxn(c)
	case PutGroupState:
		return s.putGroupState(c)
	case FenceGroupStates:
		return s.fenceGroupStates(c)
	case CreateGroupShards:
		return s.createGroupShards(c)
	case TxnGroupMarkersWritten:
		return s.txnGroupMarkersWritten(c)
	case CommitTxnOffsets, ImportOffsets, ImportGroupState, FinishImport, DeleteTopicOffsets:
		return fail(kerr.InvalidRequest.Code, "%s is a group shard command", cmd.Kind()), false
	default:
		panic(fmt.Sprintf("meta: apply of unhandled command type %T", cmd))
	}
}

func (s *state) registerBroker(index uint64, c RegisterBroker) (Result, bool) {
	if c.NodeID < 0 || c.Host == "" || c.Port <= 0 || c.Port > math.MaxUint16 {
		return fail(kerr.InvalidRequest.Code, "bad broker registration: node %d host %q port %d", c.NodeID, c.Host, c.Port), false
	}
	b := Broker(c)
	old, exists := s.brokers[c.NodeID]
	if exists && old == b {
		return Result{}, false
	}
	if !exists && len(s.brokers) >= BrokersMax {
		return fail(kerr.InvalidRequest.Code, "broker limit %d reached", BrokersMax), false
	}
	s.brokers[c.NodeID] = b
	s.topologyChanged(index)
	return Result{}, true
}

func (s *state) unregisterBroker(index uint64, c UnregisterBroker) (Result, bool) {
	if _, ok := s.brokers[c.NodeID]; !ok {
		return fail(kerr.BrokerIDNotRegistered.Code, "broker %d is not registered", c.NodeID), false
	}
	delete(s.brokers, c.NodeID)
	s.topologyChanged(index)
	return Result{}, true
}

// replicationFactor resolves rf (-1 = default) against the registered
// brokers and returns 0 with a failure if it cannot be met.
func (s *state) replicationFactor(rf int16) (int, Result) {
	n := len(s.brokers)
	if rf == -1 {
		rf = int16(min(3, n))
	}
	if rf < 1 || int(rf) > n || int(rf) > ReplicationFactorMax {
		return 0, fail(kerr.InvalidReplicationFactor.Code, "replication factor %d with %d registered brokers", rf, n)
	}
	return int(rf), Result{}
}

// buildConfigs validates entries and returns them sorted by key.
func buildConfigs(entries []ConfigEntry) ([]ConfigEntry, Result) {
	if len(entries) > ConfigEntriesMax {
		return nil, fail(kerr.InvalidConfig.Code, "%d configs beyond limit %d", len(entries), ConfigEntriesMax)
	}
	var out []ConfigEntry // nil when empty, as after a snapshot restore
	out = append(out, entries...)
	slices.SortStableFunc(out, func(a, b ConfigEntry) int { return cmp.Compare(a.Key, b.Key) })
	for i, c := range out {
		if msg := checkConfig(c.Key, c.Value); msg != "" {
			return nil, fail(kerr.InvalidConfig.Code, "%s", msg)
		}
		if i > 0 && out[i-1].Key == c.Key {
			return nil, fail(kerr.InvalidConfig.Code, "duplicate topic config %q", c.Key)
		}
	}
	return out, Result{}
}

func (s *state) createTopic(index uint64, c CreateTopic) (Result, bool) {
	if !validTopicName(c.Name) {
		return fail(kerr.InvalidTopicException.Code, "invalid topic name %q", c.Name), false
	}
	if _, ok := s.topics[c.Name]; ok {
		return fail(kerr.TopicAlreadyExists.Code, "topic %q already exists", c.Name), false
	}
	if other := s.collidingTopic(c.Name); other != "" {
		return fail(kerr.InvalidTopicException.Code, "topic %q collides with existing topic %q ('.' and '_' collide)", c.Name, other), false
	}
	if c.Partitions <= 0 || c.Partitions > PartitionsPerTopicMax {
		return fail(kerr.InvalidPartitions.Code, "partitions %d outside [1, %d]", c.Partitions, PartitionsPerTopicMax), false
	}
	rf, res := s.replicationFactor(c.ReplicationFactor)
	if res.Code != 0 {
		return res, false
	}
	configs, res := buildConfigs(c.Configs)
	if res.Code != 0 {
		return res, false
	}
	t := &Topic{Name: c.Name, ID: s.deriveTopicID(index, c.Name), Configs: configs}
	s.addPartitions(t, c.Partitions, rf)
	s.topics[t.Name] = t
	s.topicByID[t.ID] = t.Name
	s.topologyChanged(index)
	return Result{Topic: t}, true
}

// collidingTopic returns the existing topic whose name equals name up to
// '.' versus '_', or "". Existing topics never collide with each other, so
// at most one matches and the map order cannot change the answer.
func (s *state) collidingTopic(name string) string {
	key := collisionKey(name)
	for other := range s.topics {
		if collisionKey(other) == key {
			return other
		}
	}
	return ""
}

// addPartitions appends count partitions with fresh shard ids to t, which
// must not be published yet.
func (s *state) addPartitions(t *Topic, count int32, rf int) {
	for _, reps := range s.place(count, rf) {
		t.Partitions = append(t.Partitions, Partition{
			Index:    int32(len(t.Partitions)),
			ShardID:  s.nextShardID,
			Replicas: reps,
		})
		s.nextShardID++
	}
}

func (s *state) deleteTopic(index uint64, c DeleteTopic) (Result, bool) {
	name := c.Name
	switch {
	case name != "":
		if _, ok := s.topics[name]; !ok {
			return fail(kerr.UnknownTopicOrPartition.Code, "unknown topic %q", name), false
		}
	case !c.ID.IsZero():
		n, ok := s.topicByID[c.ID]
		if !ok {
			return fail(kerr.UnknownTopicID.Code, "unknown topic id %s", c.ID), false
		}
		name = n
	default:
		return fail(kerr.InvalidRequest.Code, "delete topic without name or id"), false
	}
	t := s.topics[name]
	delete(s.topics, name)
	delete(s.topicByID, t.ID)
	for g, byTopic := range s.offsets { // order-free: only deletes
		delete(byTopic, name)
		if len(byTopic) == 0 {
			delete(s.offsets, g)
		}
	}
	s.txnsForgetTopic(name)
	s.topologyChanged(index)
	return Result{Topic: t}, true
}

func (s *state) createPartitions(index uint64, c CreatePartitions) (Result, bool) {
	old, ok := s.topics[c.Topic]
	if !ok {
		return fail(kerr.UnknownTopicOrPartition.Code, "unknown topic %q", c.Topic), false
	}
	have := int32(len(old.Partitions))
	if c.Count <= have || c.Count > PartitionsPerTopicMax {
		return fail(kerr.InvalidPartitions.Code, "topic %q has %d partitions; cannot change to %d (increase only, max %d)",
			c.Topic, have, c.Count, PartitionsPerTopicMax), false
	}
	rf, res := s.replicationFactor(int16(len(old.Partitions[0].Replicas)))
	if res.Code != 0 {
		return res, false
	}
	t := old.clone()
	s.addPartitions(t, c.Count-have, rf)
	s.topics[t.Name] = t
	s.topologyChanged(index)
	return Result{Topic: t}, true
}

func (s *state) alterConfigs(index uint64, c AlterConfigs) (Result, bool) {
	old, ok := s.topics[c.Topic]
	if !ok {
		return fail(kerr.UnknownTopicOrPartition.Code, "unknown topic %q", c.Topic), false
	}
	configs, res := applyConfigOps(old.Configs, c.Ops, func(key string) bool { _, ok := topicConfigs[key]; return ok }, checkConfig)
	if res.Code != 0 {
		return res, false
	}
	if slices.Equal(configs, old.Configs) {
		return Result{}, false
	}
	t := old.clone()
	t.Configs = configs
	s.topics[t.Name] = t
	s.topologyChanged(index)
	return Result{}, true
}

// applyConfigOps applies ops (set or delete, each key at most once) to the
// sorted entries old and returns the new sorted entries (nil when empty,
// as after a snapshot restore), or a failed Result. known says whether a
// key may be altered at all; check returns what is wrong with a value, or
// "" (called with "" for an unknown key, to word the refusal).
func applyConfigOps(old []ConfigEntry, ops []ConfigOp, known func(key string) bool, check func(key, value string) string) ([]ConfigEntry, Result) {
	if len(ops) > ConfigEntriesMax {
		return nil, fail(kerr.InvalidRequest.Code, "%d config ops beyond limit %d", len(ops), ConfigEntriesMax)
	}
	m := make(map[string]string, len(old))
	for _, e := range old {
		m[e.Key] = e.Value
	}
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		if seen[op.Key] { // Kafka rejects a key twice in one request
			return nil, fail(kerr.InvalidRequest.Code, "config %q appears twice", op.Key)
		}
		seen[op.Key] = true
		if !known(op.Key) {
			return nil, fail(kerr.InvalidConfig.Code, "%s", check(op.Key, ""))
		}
		switch op.Op {
		case ConfigSet:
			if msg := check(op.Key, op.Value); msg != "" {
				return nil, fail(kerr.InvalidConfig.Code, "%s", msg)
			}
			m[op.Key] = op.Value
		case ConfigDelete:
			delete(m, op.Key)
		default:
			return nil, fail(kerr.InvalidRequest.Code, "unknown config op %d", op.Op)
		}
	}
	var configs []ConfigEntry
	for _, k := range sortedKeys(m) {
		configs = append(configs, ConfigEntry{Key: k, Value: m[k]})
	}
	return configs, Result{}
}

func (s *state) allocateProducerIDs(c AllocateProducerIDs) (Result, bool) {
	if c.Count < 1 || c.Count > ProducerIDBlockMax {
		return fail(kerr.InvalidRequest.Code, "producer id block size %d outside [1, %d]", c.Count, ProducerIDBlockMax), false
	}
	if s.nextProducerID > math.MaxInt64-int64(c.Count) {
		return fail(kerr.UnknownServerError.Code, "producer ids exhausted at %d", s.nextProducerID), false
	}
	b := ProducerIDBlock{First: s.nextProducerID, Count: c.Count}
	s.nextProducerID += int64(c.Count)
	return Result{ProducerIDs: b}, true
}

// partitionExists reports whether topic has partition p.
// In a group shard (which holds no topics) every partition exists: the
// proposer checked.
func (s *state) partitionExists(topic string, p int32) bool {
	if s.groupShard {
		return p >= 0
	}
	t, ok := s.topics[topic]
	return ok && p >= 0 && int(p) < len(t.Partitions)
}

func (s *state) commitOffsets(c CommitOffsets) (Result, bool) {
	if c.Group == "" || len(c.Offsets) == 0 || len(c.Offsets) > CommitEntriesMax {
		return fail(kerr.InvalidRequest.Code, "commit for group %q with %d offsets", c.Group, len(c.Offsets)), false
	}
	res := Result{Partitions: make([]PartitionCode, len(c.Offsets))}
	for i, o := range c.Offsets {
		res.Partitions[i] = PartitionCode{Topic: o.Topic, Partition: o.Partition}
		if !s.partitionExists(o.Topic, o.Partition) {
			res.Partitions[i].Code = kerr.UnknownTopicOrPartition.Code
			res.Code = kerr.UnknownTopicOrPartition.Code
		}
	}
	if res.Code != 0 {
		res.Message = "unknown topic or partition; nothing committed"
		return res, false
	}
	byTopic := s.offsets[c.Group]
	if byTopic == nil {
		byTopic = map[string]map[int32]OffsetValue{}
		s.offsets[c.Group] = byTopic
	}
	for _, o := range c.Offsets {
		parts := byTopic[o.Topic]
		if parts == nil {
			parts = map[int32]OffsetValue{}
			byTopic[o.Topic] = parts
		}
		parts[o.Partition] = OffsetValue{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch,
			Metadata: o.Metadata, CommitTimestampMs: c.CommitTimestampMs}
	}
	return res, true
}

func (s *state) deleteGroups(c DeleteGroups) (Result, bool) {
	if len(c.Groups) > DeleteGroupsMax {
		return fail(kerr.InvalidRequest.Code, "%d groups beyond limit %d", len(c.Groups), DeleteGroupsMax), false
	}
	res := Result{Groups: make([]GroupCode, len(c.Groups))}
	changed := false
	for i, g := range c.Groups {
		res.Groups[i].Group = g
		if _, ok := s.offsets[g]; !ok {
			res.Groups[i].Code = kerr.GroupIDNotFound.Code
			continue
		}
		delete(s.offsets, g)
		changed = true
	}
	return res, changed
}

func (s *state) deleteOffsets(c DeleteOffsets) (Result, bool) {
	if len(c.Partitions) > CommitEntriesMax {
		return fail(kerr.InvalidRequest.Code, "%d partitions beyond limit %d", len(c.Partitions), CommitEntriesMax), false
	}
	byTopic, ok := s.offsets[c.Group]
	if !ok {
		return fail(kerr.GroupIDNotFound.Code, "group %q has no committed offsets", c.Group), false
	}
	res := Result{Partitions: make([]PartitionCode, len(c.Partitions))}
	changed := false
	for i, tp := range c.Partitions {
		res.Partitions[i] = PartitionCode{Topic: tp.Topic, Partition: tp.Partition}
		if !s.partitionExists(tp.Topic, tp.Partition) {
			res.Partitions[i].Code = kerr.UnknownTopicOrPartition.Code
			continue
		}
		parts := byTopic[tp.Topic]
		if _, had := parts[tp.Partition]; !had {
			continue
		}
		delete(parts, tp.Partition)
		changed = true
		if len(parts) == 0 {
			delete(byTopic, tp.Topic)
		}
	}
	if len(byTopic) == 0 {
		delete(s.offsets, c.Group)
	}
	return res, changed
}

// expireOffsets deletes Group's offsets committed before CutoffMs. The
// result carries the expired partitions (sorted by topic and partition,
// code 0; the first CommitEntriesMax of them); a group without offsets, or with none that old, changes
// nothing and is no error.
func (s *state) expireOffsets(c ExpireOffsets) (Result, bool) {
	byTopic, ok := s.offsets[c.Group]
	if !ok {
		return Result{}, false
	}
	var res Result
	changed := false
	for _, tn := range sortedKeys(byTopic) {
		parts := byTopic[tn]
		for _, p := range sortedKeys(parts) {
			if parts[p].CommitTimestampMs < c.CutoffMs {
				delete(parts, p)
				changed = true
				if len(res.Partitions) < CommitEntriesMax {
					res.Partitions = append(res.Partitions, PartitionCode{Topic: tn, Partition: p})
				}
			}
		}
		if len(parts) == 0 {
			delete(byTopic, tn)
		}
	}
	if len(byTopic) == 0 {
		delete(s.offsets, c.Group)
	}
	return res, changed
}
