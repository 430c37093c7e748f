package meta

import (
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"sync"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/pingcap/failpoint"
	"github.com/twmb/franz-go/pkg/kerr"
)

// GroupStateMachine is a group coordinator shard's dragonboat state
// machine (groupshard.go): the controller's state type holding only
// committed offsets, group membership records and their fence, the
// transaction decisions applied, and whether the legacy import is done.
// Why the same state type and not a copy: the offset and record commands'
// apply code (and its tests) is shared as it is.
//
// Concurrency: as StateMachine's (dragonboat serializes Update, snapshots
// and Lookup under mu).
type GroupStateMachine struct {
	log *slog.Logger
	mu  sync.RWMutex
	st  *state
}

var _ sm.IStateMachine = (*GroupStateMachine)(nil)

// NewGroupStateMachine returns an empty group shard state machine.
func NewGroupStateMachine(log *slog.Logger) *GroupStateMachine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &GroupStateMachine{log: log, st: newGroupState()}
}

func newGroupState() *state {
	s := newState()
	s.groupShard = true
	return s
}

// GroupFactory returns a dragonboat CreateStateMachineFunc for group
// shards.
func GroupFactory(log *slog.Logger) sm.CreateStateMachineFunc {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(shardID, replicaID uint64) sm.IStateMachine {
		return NewGroupStateMachine(log.With("shard", shardID, "replica", replicaID))
	}
}

// Update applies one entry; a bad command becomes an INVALID_REQUEST
// result (never an error, which would stop the node).
func (m *GroupStateMachine) Update(e sm.Entry) (sm.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.Index <= m.st.applied {
		panic(fmt.Sprintf("meta: group shard update at index %d after applied index %d", e.Index, m.st.applied))
	}
	// The controller's failpoints (sm.go): either state machine of this
	// package failing an apply stops the node the same way.
	failpoint.Inject("beforeApply", func() { failpoint.Return(sm.Result{}, errFailpoint) })
	m.st.applied = e.Index
	cmd, err := Decode(e.Cmd)
	var res Result
	if err != nil {
		m.log.Warn("meta: group shard rejecting undecodable command", "index", e.Index, "bytes", len(e.Cmd), "err", err)
		res = fail(kerr.InvalidRequest.Code, "%v", err)
	} else {
		res, _ = m.st.applyGroupShard(e.Index, cmd)
	}
	failpoint.Inject("afterApply", func() { failpoint.Return(sm.Result{}, errFailpoint) })
	return res.Pack(), nil
}

// QueryImported returns bool: whether the legacy import is done.
type QueryImported struct{}

// QueryOffsetTopics returns []string: the topics with an offset in any
// group, sorted.
type QueryOffsetTopics struct{}

// Lookup answers QueryGroupOffsets, QueryOffset, QueryGroups,
// QueryExpirableGroups, QueryGroupStates and QueryImported.
func (m *GroupStateMachine) Lookup(q interface{}) (interface{}, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch q := q.(type) {
	case QueryGroupOffsets:
		return m.st.groupOffsets(q.Group), nil
	case QueryOffset:
		v, ok := m.st.offsets[q.Group][q.Topic][q.Partition]
		return OffsetLookup{Value: v, Found: ok}, nil
	case QueryGroups:
		return m.st.groupNames(), nil
	case QueryExpirableGroups:
		return m.st.expirableGroups(q.CutoffMs), nil
	case QueryGroupStates:
		return m.st.groupStatesCopy(), nil
	case QueryImported:
		return m.st.imported, nil
	case QueryOffsetTopics:
		return m.st.offsetTopics(), nil
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnknownQuery, q)
	}
}

// groupNames: groups with offsets or a membership record, sorted.
func (s *state) groupNames() []string {
	seen := map[string]bool{}
	for g := range s.offsets {
		seen[g] = true
	}
	for g := range s.groupStates {
		seen[g] = true
	}
	return sortedKeys(seen)
}

// Group shard snapshot format (integers as in the command codec):
//
//	"CHGS" | version (1 byte) | applied, imported, offsets (as the
//	controller's), group states (as the controller's v10 section),
//	txn decisions (producer id, decision; by producer id) | crc32c
const (
	groupSnapshotMagic   = "CHGS"
	GroupSnapshotVersion = 1
)

func (s *state) encodeGroupSnapshot() []byte {
	e := &enc{b: []byte(groupSnapshotMagic)}
	e.u8(GroupSnapshotVersion)
	e.uvar(s.applied)
	e.boolean(s.imported)
	s.encodeSnapshotOffsets(e)
	s.encodeSnapshotGroupStates(e)
	e.uvar(uint64(len(s.txnDecisions)))
	for _, pid := range sortedKeys(s.txnDecisions) {
		e.svar(pid)
		e.uvar(s.txnDecisions[pid])
	}
	e.u32fixed(crc32.Checksum(e.b, crcTable))
	return e.b
}

func decodeGroupSnapshot(b []byte) (*state, error) {
	if len(b) < len(groupSnapshotMagic)+1+4 {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrBadSnapshot, len(b))
	}
	body, sum := b[:len(b)-4], b[len(b)-4:]
	if got, want := crc32.Checksum(body, crcTable), (&dec{b: sum}).u32fixed(); got != want {
		return nil, fmt.Errorf("%w: crc %08x, stored %08x", ErrBadSnapshot, got, want)
	}
	if string(body[:len(groupSnapshotMagic)]) != groupSnapshotMagic {
		return nil, fmt.Errorf("%w: bad magic %q", ErrBadSnapshot, body[:len(groupSnapshotMagic)])
	}
	d := &dec{b: body[len(groupSnapshotMagic):], sentinel: ErrBadSnapshot}
	if v := d.u8(); d.err == nil && v != GroupSnapshotVersion {
		return nil, fmt.Errorf("%w: unknown group shard snapshot version %d", ErrBadSnapshot, v)
	}
	s := newGroupState()
	s.applied = d.uvar()
	s.imported = d.boolean()
	decodeSnapshotOffsets(d, s)
	decodeSnapshotGroupStates(d, s)
	n := d.count(txnDecisionsMax)
	for i := 0; i < n && d.err == nil; i++ {
		pid := d.svar()
		if _, dup := s.txnDecisions[pid]; dup {
			d.fail("duplicate producer %d", pid)
		}
		s.txnDecisions[pid] = d.uvar()
	}
	d.done()
	if d.err != nil {
		return nil, d.err
	}
	if err := s.checkGroupStates(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	return s, nil
}

// SaveSnapshot writes the deterministic snapshot.
func (m *GroupStateMachine) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	m.mu.RLock()
	b := m.st.encodeGroupSnapshot()
	m.mu.RUnlock()
	_, err := w.Write(b)
	return err
}

// RecoverFromSnapshot replaces the state with the snapshot's.
func (m *GroupStateMachine) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	b, err := readSnapshot(r)
	if err != nil {
		return err
	}
	st, err := decodeGroupSnapshot(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.st = st
	m.mu.Unlock()
	return nil
}

// CheckInvariants checks the group records' invariants.
func (m *GroupStateMachine) CheckInvariants() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.checkGroupStates()
}

// Close releases nothing.
func (m *GroupStateMachine) Close() error { return nil }
