package meta

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
)

// state is the replicated controller state. It is only touched by apply
// (under the StateMachine's lock) and by snapshot save/recover.
//
// Invariants (checked by checkInvariants after every snapshot recovery and
// in tests after every command):
//   - every partition shard id is >= FirstPartitionShardID, < nextShardID,
//     and unique across topics; nextShardID only grows, so ids are never
//     reused;
//   - a topic's Partitions[i].Index == i, and its partition count never
//     shrinks while it exists;
//   - no two topic names differ only in '.' versus '_';
//   - topicByID is exactly the inverse of topics' IDs; no ID is zero;
//   - every committed offset names an existing topic and partition, and no
//     group or group/topic offset map is empty (empty ones are pruned, so a
//     restored state equals the live one);
//   - nextProducerID only grows.
type state struct {
	applied         uint64 // raft index of the last applied entry
	topologyIndex   uint64 // raft index of the last broker/topic change
	nextShardID     uint64
	nextProducerID  int64
	placementCursor uint64 // leader of the next placed partition, mod brokers

	brokers   map[int32]Broker
	topics    map[string]*Topic // values are immutable; replaced on change
	topicByID map[TopicID]string
	offsets   map[string]map[string]map[int32]OffsetValue // group -> topic -> partition
	// brokerConfigs are the cluster-wide dynamic broker defaults, sorted
	// by key with unique keys; nil when none (brokerconfig.go).
	brokerConfigs []ConfigEntry
	// scram are the SCRAM credentials sorted by (user, mechanism); nil
	// when none. Replaced, never modified, on change (scram.go).
	scram []ScramCredential
	// acls are the ACLs sorted by CompareACLs, unique; nil when none.
	// Replaced, never modified, on change (acl.go).
	acls []ACL
	// txns are the transaction coordinator's state by transactional id
	// (txn.go); values are replaced, never modified. txnByPID indexes
	// them by producer id, txnPreparing lists those in Prepare*.
	txns         map[string]*Txn
	txnByPID     map[int64]string
	txnPreparing map[string]bool
	// groupStates are the group coordinator's membership records by group
	// (groupstate.go); groupFence is the latest coordinator tenure that
	// fenced or wrote them. Invariant: every record's Term <= groupFence.
	groupStates map[string]GroupState
	groupFence  uint64
	// groupShards are the group coordinator shards (groupshard.go), by
	// index; nil until CreateGroupShards. Replaced, never modified.
	groupShards []GroupShard

	// Group shard state only (GroupStateMachine): groupShard marks the
	// state of a group shard (offsets are not checked against topics);
	// imported is set once the legacy import finished; txnDecisions is
	// the last transaction decision applied per producer.
	groupShard   bool
	imported     bool
	txnDecisions map[int64]uint64

	// Caches for the View, rebuilt lazily after a broker/topic change.
	brokersSorted []Broker
	topicsSorted  []*Topic
	cacheValid    bool
	// txnPreparingSorted caches the View's PreparingTxns.
	txnPreparingSorted []*Txn
	txnCacheValid      bool
}

func newState() *state {
	return &state{
		nextShardID:  FirstPartitionShardID,
		brokers:      map[int32]Broker{},
		topics:       map[string]*Topic{},
		topicByID:    map[TopicID]string{},
		offsets:      map[string]map[string]map[int32]OffsetValue{},
		txns:         map[string]*Txn{},
		txnByPID:     map[int64]string{},
		txnPreparing: map[string]bool{},
		groupStates:  map[string]GroupState{},
		txnDecisions: map[int64]uint64{},
	}
}

// topologyChanged marks brokers or topics as changed at index.
func (s *state) topologyChanged(index uint64) {
	s.topologyIndex = index
	s.cacheValid = false
}

func (s *state) sortedBrokerIDs() []int32 { return sortedKeys(s.brokers) }

// view builds the immutable View; the broker and topic slices are shared
// between Views until the topology changes.
func (s *state) view() *View {
	if !s.cacheValid {
		s.brokersSorted = make([]Broker, 0, len(s.brokers))
		for _, id := range s.sortedBrokerIDs() {
			s.brokersSorted = append(s.brokersSorted, s.brokers[id])
		}
		s.topicsSorted = make([]*Topic, 0, len(s.topics))
		for _, name := range sortedKeys(s.topics) {
			s.topicsSorted = append(s.topicsSorted, s.topics[name])
		}
		s.cacheValid = true
	}
	return &View{
		Version:         s.applied,
		TopologyVersion: s.topologyIndex,
		Brokers:         s.brokersSorted,
		Topics:          s.topicsSorted,
		BrokerConfigs:   s.brokerConfigs,
		Scram:           s.scram,
		ACLs:            s.acls,
		PreparingTxns:   s.preparingTxns(),
		GroupShards:     s.groupShards,
		NextShardID:     s.nextShardID,
	}
}

// deriveTopicID hashes (index, name, attempt) until the id is non-zero and
// unused. Collisions are astronomically unlikely; the bound keeps the loop
// finite.
func (s *state) deriveTopicID(index uint64, name string) TopicID {
	const attemptsMax = 16
	for attempt := uint64(0); attempt < attemptsMax; attempt++ {
		h := sha256.New()
		var buf [16]byte
		binary.BigEndian.PutUint64(buf[:8], index)
		binary.BigEndian.PutUint64(buf[8:], attempt)
		h.Write([]byte("chronik-topic-id\x00"))
		h.Write(buf[:])
		h.Write([]byte(name))
		var id TopicID
		copy(id[:], h.Sum(nil))
		if _, used := s.topicByID[id]; !id.IsZero() && !used {
			return id
		}
	}
	panic(fmt.Sprintf("meta: no free topic id for %q at index %d after %d attempts", name, index, attemptsMax))
}

// place returns replica lists for count new partitions with rf replicas
// each, round-robin over the sorted broker ids starting at the placement
// cursor, which then advances by count so leaders spread across topics.
func (s *state) place(count int32, rf int) [][]int32 {
	ids := s.sortedBrokerIDs()
	n := uint64(len(ids))
	out := make([][]int32, count)
	for p := range out {
		start := (s.placementCursor + uint64(p)) % n
		reps := make([]int32, rf)
		for j := range reps {
			reps[j] = ids[(start+uint64(j))%n]
		}
		out[p] = reps
	}
	s.placementCursor = (s.placementCursor + uint64(count)) % n
	return out
}

// checkInvariants returns an error describing the first broken invariant.
func (s *state) checkInvariants() error {
	shards := map[uint64]string{}
	collisions := map[string]string{}
	for _, name := range sortedKeys(s.topics) {
		t := s.topics[name]
		if t.Name != name || !validTopicName(name) {
			return fmt.Errorf("topic key %q holds topic %q", name, t.Name)
		}
		if other, dup := collisions[collisionKey(name)]; dup {
			return fmt.Errorf("topics %q and %q collide", other, name)
		}
		collisions[collisionKey(name)] = name
		if t.ID.IsZero() || s.topicByID[t.ID] != name {
			return fmt.Errorf("topic %q id %s not indexed", name, t.ID)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %q has no partitions", name)
		}
		for i, p := range t.Partitions {
			if p.Index != int32(i) {
				return fmt.Errorf("topic %q partition %d has index %d", name, i, p.Index)
			}
			if p.ShardID < FirstPartitionShardID || p.ShardID >= s.nextShardID {
				return fmt.Errorf("topic %q partition %d shard %d outside [%d, %d)", name, i, p.ShardID, FirstPartitionShardID, s.nextShardID)
			}
			if other, dup := shards[p.ShardID]; dup {
				return fmt.Errorf("shard %d used by %q and %q", p.ShardID, other, name)
			}
			shards[p.ShardID] = name
			if len(p.Replicas) == 0 {
				return fmt.Errorf("topic %q partition %d has no replicas", name, i)
			}
			if !checkReassignment(p) {
				return fmt.Errorf("topic %q partition %d: replicas %v target %v caught up %v retired %v",
					name, i, p.Replicas, p.Target, p.CaughtUp, p.Retired)
			}
			if !checkLeader(p) {
				return fmt.Errorf("topic %q partition %d: leader %d term %d (replicas %v)", name, i, p.Leader, p.LeaderEpoch, p.Replicas)
			}
		}
		if !slices.IsSortedFunc(t.Configs, func(a, b ConfigEntry) int { return cmp.Compare(a.Key, b.Key) }) {
			return fmt.Errorf("topic %q configs not sorted", name)
		}
	}
	if msg := s.checkTxnInvariants(); msg != "" {
		return fmt.Errorf("%s", msg)
	}
	if err := s.checkGroupStates(); err != nil {
		return err
	}
	if err := s.checkGroupShards(); err != nil {
		return err
	}
	if len(s.topicByID) != len(s.topics) {
		return fmt.Errorf("%d topic ids for %d topics", len(s.topicByID), len(s.topics))
	}
	for _, g := range sortedKeys(s.offsets) {
		if len(s.offsets[g]) == 0 {
			return fmt.Errorf("group %q has an empty offset map", g)
		}
		for _, tn := range sortedKeys(s.offsets[g]) {
			t, ok := s.topics[tn]
			if !ok {
				return fmt.Errorf("group %q has offsets for missing topic %q", g, tn)
			}
			if len(s.offsets[g][tn]) == 0 {
				return fmt.Errorf("group %q has an empty offset map for topic %q", g, tn)
			}
			for p := range s.offsets[g][tn] {
				if p < 0 || int(p) >= len(t.Partitions) {
					return fmt.Errorf("group %q has offset for missing partition %s-%d", g, tn, p)
				}
			}
		}
	}
	return nil
}
