package meta

import (
	"bytes"
	"fmt"
	"slices"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Group coordinator shards (Kafka's __consumer_offsets partitions).
//
// Committed offsets and group membership records live in N group shards,
// each its own Raft group, instead of the controller shard, so that offset
// commits spread over the cluster. The controller records the shards
// (CreateGroupShards: N, shard ids, replicas placed like partitions, and
// the leader each reports through SetPartitionLeader); N is fixed by the
// first CreateGroupShards and never changes, so a group's shard,
// GroupShardIndex(group, N), is the same on every node forever.
//
// A group shard runs GroupStateMachine: the controller's state type
// restricted to the offset and group-record commands (CommitOffsets,
// DeleteGroups, DeleteOffsets, ExpireOffsets, PutGroupState,
// FenceGroupStates), so their apply code is shared, plus:
//   - CommitTxnOffsets: a committed transaction's offsets for groups of
//     this shard, proposed by the shard's leader after the controller
//     decided (the group's "marker"); deduplicated per producer by the
//     decision's controller log index, so a late or repeated one applies
//     nothing;
//   - DeleteTopicOffsets: a deleted topic's offsets, proposed by the
//     shard's leader once the controller deleted the topic;
//   - ImportOffsets, ImportGroupState, FinishImport: the one-time copy of
//     this shard's groups from the controller's legacy state (a data dir
//     of a release before group shards), done by the shard's first
//     leader before it serves; imports never overwrite what the shard
//     holds.
//
// The proposer checks that a committed offset's topic and partition exist
// (the shard holds no topics); reads drop offsets of deleted topics until
// DeleteTopicOffsets removed them.
//
// Once group shards exist, the controller refuses its own legacy group
// commands (NOT_COORDINATOR), so the legacy offsets stop changing.

// Group shard ids and limits.
const (
	// FirstGroupShardID is group shard 0's dragonboat shard id; shard i
	// is FirstGroupShardID+i (below FirstPartitionShardID).
	FirstGroupShardID uint64 = 100
	// GroupShardsMax bounds N.
	GroupShardsMax = 256
	// DefaultGroupShards is N when nothing else is configured: small
	// enough for one node and the simulator.
	DefaultGroupShards = 4
	// txnDecisionsMax bounds the producers a group shard remembers the
	// last applied decision of.
	txnDecisionsMax = 100_000
)

// GroupShard is one group coordinator shard as the controller records it.
type GroupShard struct {
	Index       int32
	ShardID     uint64
	Replicas    []int32
	Leader      int32  // 0 until reported
	LeaderEpoch uint64 // the Raft term of Leader's report
}

// GroupShardIndex is Kafka's partition of group in __consumer_offsets
// with n partitions: abs(javaStringHashCode(group)) % n (Kafka's
// Utils.abs maps MinInt32 to 0). n <= 0 answers 0.
func GroupShardIndex(group string, n int) int32 {
	if n <= 0 {
		return 0
	}
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	if h == -1<<31 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % int32(n)
}

// GroupShardFor returns the group shard of group in v, false while v has
// none.
func (v *View) GroupShardFor(group string) (GroupShard, bool) {
	if len(v.GroupShards) == 0 {
		return GroupShard{}, false
	}
	return v.GroupShards[GroupShardIndex(group, len(v.GroupShards))], true
}

// IsGroupShard reports whether shardID is in the group shards' id range.
func IsGroupShard(shardID uint64) bool {
	return shardID >= FirstGroupShardID && shardID < FirstGroupShardID+GroupShardsMax
}

// CreateGroupShards places Count group shards (replication factor
// min(3, registered brokers), placed like partitions). A no-op once group
// shards exist: the first one fixes N.
type CreateGroupShards struct {
	Count int32
}

// TxnGroupMarkersWritten reports that a preparing transaction's committed
// offsets for Groups are in their group shards (the groups' markers).
type TxnGroupMarkersWritten struct {
	TxnID      string
	ProducerID int64
	Epoch      int16
	NowMs      int64
	Groups     []string
}

// CommitTxnOffsets (group shard) commits a transaction's offsets decided
// at controller index Decision for producer ProducerID; a Decision at or
// below the producer's last applied one applies nothing.
type CommitTxnOffsets struct {
	ProducerID        int64
	Decision          uint64
	CommitTimestampMs int64
	Offsets           []TxnOffset
}

// ImportOffsets (group shard) copies a group's legacy offsets; those of
// partitions the shard already holds are kept.
type ImportOffsets struct {
	Group   string
	Offsets []GroupOffset
}

// ImportGroupState (group shard) copies a group's legacy membership
// record, unless the shard holds one.
type ImportGroupState struct {
	State GroupState
}

// FinishImport (group shard) marks the legacy import done.
type FinishImport struct{}

// DeleteTopicOffsets (group shard) deletes every group's offsets of a
// deleted topic (the controller deletes a topic; its group shards' leaders
// then propose this, see core/node).
type DeleteTopicOffsets struct {
	Topic string
}

func (CreateGroupShards) Kind() Kind      { return KindCreateGroupShards }
func (TxnGroupMarkersWritten) Kind() Kind { return KindTxnGroupMarkers }
func (CommitTxnOffsets) Kind() Kind       { return KindCommitTxnOffsets }
func (ImportOffsets) Kind() Kind          { return KindImportOffsets }
func (ImportGroupState) Kind() Kind       { return KindImportGroupState }
func (FinishImport) Kind() Kind           { return KindFinishImport }
func (DeleteTopicOffsets) Kind() Kind     { return KindDeleteTopicOffsets }

func (c CreateGroupShards) encode(e *enc) { e.svar(int64(c.Count)) }

func (c TxnGroupMarkersWritten) encode(e *enc) {
	encodeTxnHead(e, c.TxnID, c.ProducerID, c.Epoch)
	e.svar(c.NowMs)
	e.uvar(uint64(len(c.Groups)))
	for _, g := range c.Groups {
		e.str(g)
	}
}

func (c CommitTxnOffsets) encode(e *enc) {
	e.svar(c.ProducerID)
	e.uvar(c.Decision)
	e.svar(c.CommitTimestampMs)
	e.uvar(uint64(len(c.Offsets)))
	for _, o := range c.Offsets {
		e.str(o.Group)
		e.str(o.Topic)
		e.svar(int64(o.Partition))
		e.svar(o.Offset)
		e.svar(int64(o.LeaderEpoch))
		e.str(o.Metadata)
	}
}

func encodeGroupOffsets(e *enc, offs []GroupOffset) {
	e.uvar(uint64(len(offs)))
	for _, o := range offs {
		e.str(o.Topic)
		e.svar(int64(o.Partition))
		e.svar(o.Offset)
		e.svar(int64(o.LeaderEpoch))
		e.str(o.Metadata)
		e.svar(o.CommitTimestampMs)
	}
}

func decodeGroupOffsets(d *dec, max int) []GroupOffset {
	n := d.count(max)
	var out []GroupOffset
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, GroupOffset{Topic: d.str(TopicNameLenMax), Partition: d.i32(), OffsetValue: OffsetValue{
			Offset: d.svar(), LeaderEpoch: d.i32(), Metadata: d.str(OffsetMetadataLenMax), CommitTimestampMs: d.svar()}})
	}
	return out
}

func (c ImportOffsets) encode(e *enc) {
	e.str(c.Group)
	encodeGroupOffsets(e, c.Offsets)
}

func (c ImportGroupState) encode(e *enc) { PutGroupState(c.State).encode(e) }

func (FinishImport) encode(*enc) {}

func (c DeleteTopicOffsets) encode(e *enc) { e.str(c.Topic) }

func decodeGroupShardBody(d *dec, k Kind) Command {
	switch k {
	case KindCreateGroupShards:
		return CreateGroupShards{Count: d.i32()}
	case KindTxnGroupMarkers:
		c := TxnGroupMarkersWritten{TxnID: d.str(TxnIDLenMax), ProducerID: d.svar(), Epoch: d.i16(), NowMs: d.svar()}
		n := d.count(TxnGroupsMax)
		for i := 0; i < n && d.err == nil; i++ {
			c.Groups = append(c.Groups, d.str(GroupIDLenMax))
		}
		return c
	case KindCommitTxnOffsets:
		c := CommitTxnOffsets{ProducerID: d.svar(), Decision: d.uvar(), CommitTimestampMs: d.svar()}
		n := d.count(CommitEntriesMax)
		for i := 0; i < n && d.err == nil; i++ {
			c.Offsets = append(c.Offsets, TxnOffset{Group: d.str(GroupIDLenMax), OffsetCommit: OffsetCommit{Topic: d.str(TopicNameLenMax),
				Partition: d.i32(), Offset: d.svar(), LeaderEpoch: d.i32(), Metadata: d.str(OffsetMetadataLenMax)}})
		}
		return c
	case KindImportOffsets:
		return ImportOffsets{Group: d.str(GroupIDLenMax), Offsets: decodeGroupOffsets(d, CommitEntriesMax)}
	case KindImportGroupState:
		return ImportGroupState{State: GroupState(decodeGroupStateBody(d, KindPutGroupState).(PutGroupState))}
	case KindDeleteTopicOffsets:
		return DeleteTopicOffsets{Topic: d.str(TopicNameLenMax)}
	default:
		return FinishImport{}
	}
}

// legacyGroupCommand reports whether cmd is one of the controller's group
// commands, refused there once group shards exist.
func legacyGroupCommand(cmd Command) bool {
	switch cmd.(type) {
	case CommitOffsets, DeleteGroups, DeleteOffsets, ExpireOffsets, PutGroupState, FenceGroupStates:
		return true
	}
	return false
}

// applyGroupShard is apply for a group shard's state.
func (s *state) applyGroupShard(index uint64, cmd Command) (Result, bool) {
	switch c := cmd.(type) {
	case CommitOffsets, DeleteGroups, DeleteOffsets, ExpireOffsets, PutGroupState, FenceGroupStates:
		return s.apply(index, c)
	case CommitTxnOffsets:
		return s.commitTxnOffsets(c)
	case ImportOffsets:
		return s.importOffsets(c)
	case ImportGroupState:
		return s.importGroupState(c)
	case DeleteTopicOffsets:
		return s.deleteTopicOffsets(c.Topic)
	case FinishImport:
		if s.imported {
			return Result{}, false
		}
		s.imported = true
		return Result{}, true
	default:
		return fail(kerr.InvalidRequest.Code, "%s is not a group shard command", cmd.Kind()), false
	}
}

func (s *state) createGroupShards(c CreateGroupShards) (Result, bool) {
	if len(s.groupShards) > 0 {
		return Result{}, false
	}
	if c.Count < 1 || c.Count > GroupShardsMax {
		return fail(kerr.InvalidRequest.Code, "group shards %d outside [1, %d]", c.Count, GroupShardsMax), false
	}
	if len(s.brokers) == 0 {
		return fail(kerr.CoordinatorNotAvailable.Code, "no registered broker"), false
	}
	rf := min(3, len(s.brokers))
	for i, reps := range s.place(c.Count, rf) {
		s.groupShards = append(s.groupShards, GroupShard{Index: int32(i), ShardID: FirstGroupShardID + uint64(i), Replicas: reps})
	}
	s.cacheValid = false
	return Result{}, true
}

// setGroupShardLeader is SetPartitionLeader for a group shard.
func (s *state) setGroupShardLeader(c SetPartitionLeader) (Result, bool) {
	i := int(c.ShardID - FirstGroupShardID)
	if !IsGroupShard(c.ShardID) || i >= len(s.groupShards) {
		return fail(kerr.UnknownTopicOrPartition.Code, "no group shard %d", c.ShardID), false
	}
	g := s.groupShards[i]
	if c.Term == 0 || !slices.Contains(g.Replicas, c.Leader) {
		return fail(kerr.InvalidRequest.Code, "leader %d term %d is not valid for group shard %d (replicas %v)", c.Leader, c.Term, c.ShardID, g.Replicas), false
	}
	if c.Term < g.LeaderEpoch || (c.Term == g.LeaderEpoch && c.Leader == g.Leader) {
		return Result{}, false
	}
	// Copy on write: Views share the slice.
	shards := slices.Clone(s.groupShards)
	shards[i].Leader, shards[i].LeaderEpoch = c.Leader, c.Term
	s.groupShards = shards
	s.cacheValid = false
	return Result{}, true
}

func (s *state) txnGroupMarkersWritten(c TxnGroupMarkersWritten) (Result, bool) {
	return s.markersWritten(c.TxnID, c.ProducerID, c.Epoch, c.NowMs, func(t *Txn) bool {
		n := len(t.Groups)
		t.Groups = slices.DeleteFunc(t.Groups, func(g string) bool { return slices.Contains(c.Groups, g) })
		return len(t.Groups) != n
	})
}

func (s *state) commitTxnOffsets(c CommitTxnOffsets) (Result, bool) {
	if last, ok := s.txnDecisions[c.ProducerID]; ok && c.Decision <= last {
		return Result{}, false // a duplicate marker
	}
	if _, ok := s.txnDecisions[c.ProducerID]; !ok && len(s.txnDecisions) >= txnDecisionsMax {
		var oldest int64
		first := true
		for _, pid := range sortedKeys(s.txnDecisions) {
			if first || s.txnDecisions[pid] < s.txnDecisions[oldest] {
				oldest, first = pid, false
			}
		}
		delete(s.txnDecisions, oldest)
	}
	s.txnDecisions[c.ProducerID] = c.Decision
	for _, o := range c.Offsets {
		s.setOffset(o.Group, o.Topic, o.Partition, OffsetValue{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch,
			Metadata: o.Metadata, CommitTimestampMs: c.CommitTimestampMs})
	}
	return Result{}, true
}

// deleteTopicOffsets deletes topic's offsets from every group.
func (s *state) deleteTopicOffsets(topic string) (Result, bool) {
	changed := false
	for _, g := range sortedKeys(s.offsets) {
		byTopic := s.offsets[g]
		if _, ok := byTopic[topic]; !ok {
			continue
		}
		delete(byTopic, topic)
		changed = true
		if len(byTopic) == 0 {
			delete(s.offsets, g)
		}
	}
	return Result{}, changed
}

// offsetTopics lists, sorted, the topics with an offset in any group.
func (s *state) offsetTopics() []string {
	seen := map[string]bool{}
	for _, byTopic := range s.offsets {
		for t := range byTopic {
			seen[t] = true
		}
	}
	return sortedKeys(seen)
}

// setOffset stores one committed offset.
func (s *state) setOffset(group, topic string, part int32, v OffsetValue) {
	byTopic := s.offsets[group]
	if byTopic == nil {
		byTopic = map[string]map[int32]OffsetValue{}
		s.offsets[group] = byTopic
	}
	parts := byTopic[topic]
	if parts == nil {
		parts = map[int32]OffsetValue{}
		byTopic[topic] = parts
	}
	parts[part] = v
}

func (s *state) importOffsets(c ImportOffsets) (Result, bool) {
	if c.Group == "" || len(c.Offsets) > CommitEntriesMax {
		return fail(kerr.InvalidRequest.Code, "import for group %q with %d offsets", c.Group, len(c.Offsets)), false
	}
	changed := false
	for _, o := range c.Offsets {
		if _, had := s.offsets[c.Group][o.Topic][o.Partition]; had {
			continue
		}
		s.setOffset(c.Group, o.Topic, o.Partition, o.OffsetValue)
		changed = true
	}
	return Result{}, changed
}

func (s *state) importGroupState(c ImportGroupState) (Result, bool) {
	st := c.State
	if st.Group == "" || len(st.Data) == 0 {
		return fail(kerr.InvalidRequest.Code, "import of an empty group record %q", st.Group), false
	}
	if _, had := s.groupStates[st.Group]; had || len(s.groupStates) >= GroupStatesMax {
		return Result{}, false
	}
	// Imported records keep no tenure: any write of this shard's
	// coordinators follows them.
	s.groupStates[st.Group] = GroupState{Group: st.Group, Data: bytes.Clone(st.Data)}
	return Result{}, true
}

// encodeSnapshotGroupShards writes the controller's v11 section.
func (s *state) encodeSnapshotGroupShards(e *enc) {
	e.uvar(uint64(len(s.groupShards)))
	for _, g := range s.groupShards {
		e.uvar(g.ShardID)
		e.uvar(uint64(len(g.Replicas)))
		for _, r := range g.Replicas {
			e.svar(int64(r))
		}
		e.svar(int64(g.Leader))
		e.uvar(g.LeaderEpoch)
	}
}

func decodeSnapshotGroupShards(d *dec, s *state) {
	n := d.count(GroupShardsMax)
	for i := 0; i < n && d.err == nil; i++ {
		g := GroupShard{Index: int32(i), ShardID: d.uvar()}
		nr := d.count(ReplicationFactorMax)
		for j := 0; j < nr && d.err == nil; j++ {
			g.Replicas = append(g.Replicas, d.i32())
		}
		g.Leader, g.LeaderEpoch = d.i32(), d.uvar()
		s.groupShards = append(s.groupShards, g)
	}
}

func (s *state) checkGroupShards() error {
	for i, g := range s.groupShards {
		if g.Index != int32(i) || g.ShardID != FirstGroupShardID+uint64(i) || len(g.Replicas) == 0 ||
			(g.LeaderEpoch == 0) != (g.Leader == 0) || (g.LeaderEpoch != 0 && !slices.Contains(g.Replicas, g.Leader)) {
			return fmt.Errorf("group shard %d: %+v", i, g)
		}
	}
	return nil
}
