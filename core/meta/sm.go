package meta

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/pingcap/failpoint"
	"github.com/twmb/franz-go/pkg/kerr"
)

// StateMachine is the controller shard's dragonboat state machine.
//
// Concurrency: dragonboat calls Update, SaveSnapshot, RecoverFromSnapshot
// and Lookup; they are serialized by mu (Lookup and SaveSnapshot share it).
// View, Version and Changed may be called from any goroutine at any time.
type StateMachine struct {
	log *slog.Logger

	mu sync.RWMutex
	st *state

	view    atomic.Pointer[View]
	changed atomic.Pointer[chan struct{}]
}

var _ sm.IStateMachine = (*StateMachine)(nil)

// New returns an empty state machine that logs to log (nil: discard).
func New(log *slog.Logger) *StateMachine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &StateMachine{log: log, st: newState()}
	ch := make(chan struct{})
	m.changed.Store(&ch)
	m.view.Store(m.st.view())
	return m
}

// Factory returns a dragonboat CreateStateMachineFunc for the controller
// shard.
func Factory(log *slog.Logger) sm.CreateStateMachineFunc {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(shardID, replicaID uint64) sm.IStateMachine {
		return New(log.With("shard", shardID, "replica", replicaID))
	}
}

// View returns the current immutable View.
func (m *StateMachine) View() *View { return m.view.Load() }

// Version returns the raft index of the last applied entry.
func (m *StateMachine) Version() uint64 { return m.view.Load().Version }

// Changed returns a channel that is closed at the next state change. Call
// it before View to never miss a change:
//
//	ch := m.Changed(); v := m.View(); ...use v...; <-ch
func (m *StateMachine) Changed() <-chan struct{} { return *m.changed.Load() }

// publish stores a new View and, if the state changed, wakes the watchers.
// The View is stored first so that a woken watcher sees it.
func (m *StateMachine) publish(changed bool) {
	m.view.Store(m.st.view())
	if changed {
		ch := make(chan struct{})
		close(*m.changed.Swap(&ch))
	}
}

// Update applies one entry. It never returns an error: dragonboat stops the
// node on one, and a bad command is the proposer's fault, so it becomes an
// INVALID_REQUEST result and is logged.
func (m *StateMachine) Update(e sm.Entry) (sm.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.Index <= m.st.applied {
		panic(fmt.Sprintf("meta: update at index %d after applied index %d", e.Index, m.st.applied))
	}
	failpoint.Inject("beforeApply", func() { failpoint.Return(sm.Result{}, errFailpoint) })
	failpoint.Inject("slowApply", func() {}) // a delay: enabled as sleep(N)
	m.st.applied = e.Index
	var res Result
	changed := false
	cmd, err := Decode(e.Cmd)
	if err != nil {
		m.log.Warn("meta: rejecting undecodable command", "index", e.Index, "bytes", len(e.Cmd), "err", err)
		res = fail(kerr.InvalidRequest.Code, "%v", err)
	} else {
		res, changed = m.st.apply(e.Index, cmd)
		if res.Code != 0 {
			m.log.Debug("meta: command failed", "index", e.Index, "kind", cmd.Kind(), "code", res.Code, "msg", res.Message)
		}
	}
	failpoint.Inject("afterApply", func() { failpoint.Return(sm.Result{}, errFailpoint) })
	m.publish(changed)
	return res.Pack(), nil
}

// Query types served by Lookup. Results are deep copies the caller owns.
type (
	// QueryView returns *View.
	QueryView struct{}
	// QueryTopic returns *Topic, nil if absent.
	QueryTopic struct{ Name string }
	// QueryGroupOffsets returns []GroupOffset sorted by topic and
	// partition; nil if the group has none.
	QueryGroupOffsets struct{ Group string }
	// QueryOffset returns (OffsetValue, bool) packed as OffsetLookup.
	QueryOffset struct {
		Group     string
		Topic     string
		Partition int32
	}
	// QueryGroups returns []string: every group with committed offsets,
	// sorted.
	QueryGroups struct{}
	// QueryExpirableGroups returns []string: every group with an offset
	// committed before CutoffMs, sorted (the offset expiry pass).
	QueryExpirableGroups struct{ CutoffMs int64 }
)

// OffsetLookup is QueryOffset's answer.
type OffsetLookup struct {
	Value OffsetValue
	Found bool
}

// Lookup answers a query (see the Query types). An unknown query returns
// ErrUnknownQuery.
func (m *StateMachine) Lookup(q interface{}) (interface{}, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch q := q.(type) {
	case QueryView:
		return m.view.Load(), nil
	case QueryTopic:
		if t, ok := m.st.topics[q.Name]; ok {
			return t.clone(), nil
		}
		return (*Topic)(nil), nil
	case QueryGroupOffsets:
		return m.st.groupOffsets(q.Group), nil
	case QueryOffset:
		v, ok := m.st.offsets[q.Group][q.Topic][q.Partition]
		return OffsetLookup{Value: v, Found: ok}, nil
	case QueryGroups:
		return sortedKeys(m.st.offsets), nil
	case QueryExpirableGroups:
		return m.st.expirableGroups(q.CutoffMs), nil
	case QueryGroupStates:
		return m.st.groupStatesCopy(), nil
	default:
		if v, ok := m.st.lookupTxn(q); ok {
			return v, nil
		}
		return nil, fmt.Errorf("%w: %T", ErrUnknownQuery, q)
	}
}

func (s *state) expirableGroups(cutoffMs int64) []string {
	var out []string
	for _, g := range sortedKeys(s.offsets) {
	group:
		for _, parts := range s.offsets[g] { // order-free: any old offset will do
			for _, v := range parts {
				if v.CommitTimestampMs < cutoffMs {
					out = append(out, g)
					break group
				}
			}
		}
	}
	return out
}

func (s *state) groupOffsets(group string) []GroupOffset {
	var out []GroupOffset
	byTopic := s.offsets[group]
	for _, tn := range sortedKeys(byTopic) {
		parts := byTopic[tn]
		for _, p := range sortedKeys(parts) {
			out = append(out, GroupOffset{Topic: tn, Partition: p, OffsetValue: parts[p]})
		}
	}
	return slices.Clip(out)
}

// SaveSnapshot writes the deterministic snapshot (see snapshot.go).
func (m *StateMachine) SaveSnapshot(w io.Writer, _ sm.ISnapshotFileCollection, _ <-chan struct{}) error {
	m.mu.RLock()
	b := m.st.encodeSnapshot()
	m.mu.RUnlock()
	_, err := w.Write(b)
	return err
}

// RecoverFromSnapshot replaces the state with the snapshot's, after checking
// its CRC, version and invariants (errors wrap ErrBadSnapshot).
func (m *StateMachine) RecoverFromSnapshot(r io.Reader, _ []sm.SnapshotFile, _ <-chan struct{}) error {
	b, err := readSnapshot(r)
	if err != nil {
		return err
	}
	st, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st = st
	m.publish(true)
	return nil
}

// CheckInvariants checks the state's invariants (see doc.go) and returns
// the first broken one. It walks the whole state: for tests, fuzzing and
// the simulator, not for every Update.
func (m *StateMachine) CheckInvariants() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.st.checkInvariants()
}

// Close releases nothing; the state machine holds no resources.
func (m *StateMachine) Close() error { return nil }
