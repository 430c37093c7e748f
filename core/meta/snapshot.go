package meta

import (
	"fmt"
	"hash/crc32"
	"io"
)

// Snapshot format (all integers as in the command codec):
//
//	+--------+---------+-----------------------------------------+-----------+
//	| magic  | version | body                                    | crc32c    |
//	| "CHMS" | 1 byte  | applied, topologyIndex, nextShardID,    | 4 bytes   |
//	|        |         | nextProducerID, placementCursor,        | big-endian|
//	|        |         | brokers (by id), topics (by name),      |           |
//	|        |         | offsets (group, topic, partition sorted)|           |
//	|        |         | v2: leaders (shard, leader, term)       |           |
//	|        |         | v3: reassignments (shard, target,       |           |
//	|        |         |     caught up, retired)                 |           |
//	|        |         | v4: broker configs (key, value sorted)  |           |
//	|        |         | v5: SCRAM credentials (user, mechanism  |           |
//	|        |         |     sorted)                             |           |
//	|        |         | v6: ACLs (sorted)                       |           |
//	|        |         | v7: transactions (by id, txn.go)        |           |
//	|        |         | v8: + previous producer id per txn      |           |
//	|        |         | v9: + decision index per txn            |           |
//	|        |         | v10: group states (fence, records by    |           |
//	|        |         |     group, groupstate.go)               |           |
//	|        |         | v11: group shards (shard, replicas,     |           |
//	|        |         |     leader, term; groupshard.go)        |           |
//	+--------+---------+-----------------------------------------+-----------+
//
// The CRC (Castagnoli) covers magic, version and body. Every collection is
// written in sorted order, so equal states give identical bytes.
const (
	snapshotMagic   = "CHMS"
	SnapshotVersion = 11
	// snapshotVersionNoGroupShards is the layout without the group shards
	// section; still decoded (none: groups in the controller).
	snapshotVersionNoGroupShards = 10
	// snapshotVersionNoGroupStates is the layout without the group states
	// section; still decoded (no membership records, fence 0).
	snapshotVersionNoGroupStates = 9
	// snapshotVersionNoDecision is the transactions section without
	// Txn.DecisionIndex; still decoded (0: markers of a transaction
	// preparing then are not deduplicated by decision).
	snapshotVersionNoDecision = 8
	// snapshotVersionNoPrevProducer is the transactions section without
	// Txn.PrevProducerID; still decoded (none).
	snapshotVersionNoPrevProducer = 7
	// snapshotVersionNoLeaders is the layout without the leaders section;
	// still decoded (every leader then reads as not reported).
	snapshotVersionNoLeaders = 1
	// snapshotVersionNoReassignments is the layout without the
	// reassignments section; still decoded (no move in progress, nothing
	// retired).
	snapshotVersionNoReassignments = 2
	// snapshotVersionNoBrokerConfigs is the layout without the broker
	// configs section; still decoded (no dynamic broker config set).
	snapshotVersionNoBrokerConfigs = 3
	// snapshotVersionNoScram is the layout without the SCRAM credentials
	// section; still decoded (no credentials).
	snapshotVersionNoScram = 4
	// snapshotVersionNoACLs is the layout without the ACL section; still
	// decoded (no ACLs).
	snapshotVersionNoACLs = 5
	// snapshotVersionNoTxns is the layout without the transactions
	// section; still decoded (no transactional ids).
	snapshotVersionNoTxns = 6
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodeSnapshot returns the snapshot bytes of s.
func (s *state) encodeSnapshot() []byte {
	e := &enc{b: []byte(snapshotMagic)}
	e.u8(SnapshotVersion)
	e.uvar(s.applied)
	e.uvar(s.topologyIndex)
	e.uvar(s.nextShardID)
	e.svar(s.nextProducerID)
	e.uvar(s.placementCursor)
	e.uvar(uint64(len(s.brokers)))
	for _, id := range s.sortedBrokerIDs() {
		RegisterBroker(s.brokers[id]).encode(e)
	}
	e.uvar(uint64(len(s.topics)))
	for _, name := range sortedKeys(s.topics) {
		encodeTopic(e, s.topics[name])
	}
	s.encodeSnapshotOffsets(e)
	s.encodeSnapshotLeaders(e)
	s.encodeSnapshotReassignments(e)
	s.encodeSnapshotBrokerConfigs(e)
	s.encodeSnapshotScram(e)
	s.encodeSnapshotACLs(e)
	s.encodeSnapshotTxns(e)
	s.encodeSnapshotGroupStates(e)
	s.encodeSnapshotGroupShards(e)
	e.u32fixed(crc32.Checksum(e.b, crcTable))
	return e.b
}

// decodeSnapshot parses and checks snapshot bytes. Errors wrap
// ErrBadSnapshot.
func decodeSnapshot(b []byte) (*state, error) {
	if len(b) < len(snapshotMagic)+1+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrBadSnapshot, len(b))
	}
	body, sum := b[:len(b)-4], b[len(b)-4:]
	if got, want := crc32.Checksum(body, crcTable), (&dec{b: sum}).u32fixed(); got != want {
		return nil, fmt.Errorf("%w: crc %08x, stored %08x", ErrBadSnapshot, got, want)
	}
	if string(body[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrBadSnapshot, body[:len(snapshotMagic)])
	}
	d := &dec{b: body[len(snapshotMagic):], sentinel: ErrBadSnapshot}
	v := d.u8()
	if v < snapshotVersionNoLeaders || v > SnapshotVersion {
		return nil, fmt.Errorf("%w: unknown version %d", ErrBadSnapshot, v)
	}
	s := newState()
	s.applied, s.topologyIndex, s.nextShardID = d.uvar(), d.uvar(), d.uvar()
	s.nextProducerID, s.placementCursor = d.svar(), d.uvar()
	decodeSnapshotTopology(d, s)
	decodeSnapshotOffsets(d, s)
	if v >= snapshotVersionNoReassignments {
		decodeSnapshotLeaders(d, s)
	}
	if v > snapshotVersionNoReassignments {
		decodeSnapshotReassignments(d, s)
	}
	if v > snapshotVersionNoBrokerConfigs {
		decodeSnapshotBrokerConfigs(d, s)
	}
	if v > snapshotVersionNoScram {
		decodeSnapshotScram(d, s)
	}
	if v > snapshotVersionNoACLs {
		decodeSnapshotACLs(d, s)
	}
	if v > snapshotVersionNoTxns {
		decodeSnapshotTxns(d, s, v > snapshotVersionNoPrevProducer, v > snapshotVersionNoDecision)
	}
	if v > snapshotVersionNoGroupStates {
		decodeSnapshotGroupStates(d, s)
	}
	if v > snapshotVersionNoGroupShards {
		decodeSnapshotGroupShards(d, s)
	}
	d.done()
	if d.err != nil {
		return nil, d.err
	}
	if err := s.checkInvariants(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return s, nil
}

// encodeSnapshotOffsets writes the offsets section (group, topic,
// partition sorted).
func (s *state) encodeSnapshotOffsets(e *enc) {
	e.uvar(uint64(len(s.offsets)))
	for _, g := range sortedKeys(s.offsets) {
		e.str(g)
		byTopic := s.offsets[g]
		e.uvar(uint64(len(byTopic)))
		for _, tn := range sortedKeys(byTopic) {
			e.str(tn)
			parts := byTopic[tn]
			e.uvar(uint64(len(parts)))
			for _, p := range sortedKeys(parts) {
				v := parts[p]
				e.svar(int64(p))
				e.svar(v.Offset)
				e.svar(int64(v.LeaderEpoch))
				e.str(v.Metadata)
				e.svar(v.CommitTimestampMs)
			}
		}
	}
}

func decodeSnapshotTopology(d *dec, s *state) {
	n := d.count(BrokersMax)
	for i := 0; i < n && d.err == nil; i++ {
		b := Broker{NodeID: d.i32(), Host: d.str(HostLenMax), Port: d.i32(),
			Rack: d.str(RackLenMax), RaftAddr: d.str(RaftAddrLenMax)}
		if _, dup := s.brokers[b.NodeID]; dup {
			d.fail("duplicate broker %d", b.NodeID)
		}
		s.brokers[b.NodeID] = b
	}
	n = d.count(SnapshotBytesMax)
	for i := 0; i < n && d.err == nil; i++ {
		t := decodeTopic(d)
		if _, dup := s.topics[t.Name]; dup {
			d.fail("duplicate topic %q", t.Name)
		}
		s.topics[t.Name] = t
		s.topicByID[t.ID] = t.Name
	}
}

func decodeSnapshotOffsets(d *dec, s *state) {
	ng := d.count(SnapshotBytesMax)
	for i := 0; i < ng && d.err == nil; i++ {
		g := d.str(GroupIDLenMax)
		byTopic := map[string]map[int32]OffsetValue{}
		nt := d.count(SnapshotBytesMax)
		for j := 0; j < nt && d.err == nil; j++ {
			tn := d.str(TopicNameLenMax)
			parts := map[int32]OffsetValue{}
			np := d.count(PartitionsPerTopicMax)
			for k := 0; k < np && d.err == nil; k++ {
				p := d.i32()
				parts[p] = OffsetValue{Offset: d.svar(), LeaderEpoch: d.i32(),
					Metadata: d.str(OffsetMetadataLenMax), CommitTimestampMs: d.svar()}
			}
			if len(parts) != np || np == 0 {
				d.fail("group %q topic %q: %d offsets, %d distinct", g, tn, np, len(parts))
			}
			byTopic[tn] = parts
		}
		if len(byTopic) != nt || nt == 0 {
			d.fail("group %q: %d topics, %d distinct", g, nt, len(byTopic))
		}
		if _, dup := s.offsets[g]; dup {
			d.fail("duplicate group %q", g)
		}
		s.offsets[g] = byTopic
	}
}

// readSnapshot reads at most SnapshotBytesMax from r.
func readSnapshot(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, SnapshotBytesMax+1))
	if err != nil {
		return nil, err
	}
	if len(b) > SnapshotBytesMax {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadSnapshot, SnapshotBytesMax)
	}
	return b, nil
}
