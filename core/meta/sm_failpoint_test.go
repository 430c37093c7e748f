//go:build failpoint

package meta

import (
	"bytes"
	"errors"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/pingcap/failpoint"
)

const fpPkg = "github.com/chronik-go/chronik/core/meta/"

func enableFailpoint(t *testing.T, name, term string) {
	t.Helper()
	if err := failpoint.Enable(fpPkg+name, term); err != nil {
		t.Fatalf("enable %s: %v", name, err)
	}
	t.Cleanup(func() { _ = failpoint.Disable(fpPkg + name) })
}

func snapshotBytes(t *testing.T, m *StateMachine) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.SaveSnapshot(&b, nil, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestFailpointBeforeApply: an Update that fails changes nothing (applied
// index, committed offsets, watchers) and surfaces as an error, which
// dragonboat turns into a stop of the node. The restarted node (snapshot
// plus replay of the log after it, the failed entry included) answers every
// entry as an uninterrupted run does and ends in the same state: nothing
// acknowledged is lost and the failed entry is applied once.
func TestFailpointBeforeApply(t *testing.T) {
	cmds := [][]byte{
		Encode(RegisterBroker{NodeID: 1, Host: "h", Port: 9092, RaftAddr: "h:7000"}),
		Encode(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: -1}),
		Encode(CommitOffsets{Group: "g", CommitTimestampMs: 1, Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 5}}}),
		Encode(CommitOffsets{Group: "g", CommitTimestampMs: 2, Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 10}}}),
		Encode(CommitOffsets{Group: "g", CommitTimestampMs: 3, Offsets: []OffsetCommit{{Topic: "t", Partition: 1, Offset: 3}}}),
	}
	ref := New(nil)
	var want []sm.Result
	for i, c := range cmds {
		r, err := ref.Update(sm.Entry{Index: uint64(i + 1), Cmd: c})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}

	const failAt = 4 // the second commit of t/0
	m := New(nil)
	var snap []byte
	for i, c := range cmds[:failAt-1] {
		if r, err := m.Update(sm.Entry{Index: uint64(i + 1), Cmd: c}); err != nil || !bytes.Equal(r.Data, want[i].Data) {
			t.Fatalf("entry %d: %x %v", i+1, r.Data, err)
		}
		if i == 1 {
			snap = snapshotBytes(t, m)
		}
	}
	changed := m.Changed()
	enableFailpoint(t, "beforeApply", "1*return")
	if _, err := m.Update(sm.Entry{Index: failAt, Cmd: cmds[failAt-1]}); !errors.Is(err, errFailpoint) {
		t.Fatalf("Update under beforeApply: %v", err)
	}
	if m.Version() != failAt-1 {
		t.Fatalf("version %d after the failed apply, want %d", m.Version(), failAt-1)
	}
	if v, _ := m.Lookup(QueryOffset{Group: "g", Topic: "t", Partition: 0}); v.(OffsetLookup).Value.Offset != 5 {
		t.Fatalf("committed offset %+v after the failed apply, want 5", v)
	}
	select {
	case <-changed:
		t.Fatal("the failed apply woke the watchers")
	default:
	}

	// Restart: the snapshot, then the log after it.
	r := New(nil)
	if err := r.RecoverFromSnapshot(bytes.NewReader(snap), nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := r.Version(); i < uint64(len(cmds)); i++ {
		res, err := r.Update(sm.Entry{Index: i + 1, Cmd: cmds[i]})
		if err != nil || !bytes.Equal(res.Data, want[i].Data) {
			t.Fatalf("replayed entry %d: %x %v, want %x", i+1, res.Data, err, want[i].Data)
		}
	}
	if !bytes.Equal(snapshotBytes(t, r), snapshotBytes(t, ref)) {
		t.Fatal("the restarted state differs from an uninterrupted run")
	}
	if err := r.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

// TestFailpointAfterApply: an Update that fails after applying surfaces
// its error without waking watchers or answering; the node stops
// (dragonboat), and the restarted node (snapshot plus the log after it)
// applies the entry once and ends as an uninterrupted run.
func TestFailpointAfterApply(t *testing.T) {
	cmds := [][]byte{
		Encode(RegisterBroker{NodeID: 1, Host: "h", Port: 9092, RaftAddr: "h:7000"}),
		Encode(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1}),
		Encode(CommitOffsets{Group: "g", CommitTimestampMs: 1, Offsets: []OffsetCommit{{Topic: "t", Partition: 0, Offset: 7}}}),
	}
	ref := New(nil)
	for i, c := range cmds {
		if _, err := ref.Update(sm.Entry{Index: uint64(i + 1), Cmd: c}); err != nil {
			t.Fatal(err)
		}
	}
	m := New(nil)
	if _, err := m.Update(sm.Entry{Index: 1, Cmd: cmds[0]}); err != nil {
		t.Fatal(err)
	}
	snap := snapshotBytes(t, m)
	if _, err := m.Update(sm.Entry{Index: 2, Cmd: cmds[1]}); err != nil {
		t.Fatal(err)
	}
	changed := m.Changed()
	enableFailpoint(t, "afterApply", "1*return")
	if _, err := m.Update(sm.Entry{Index: 3, Cmd: cmds[2]}); !errors.Is(err, errFailpoint) {
		t.Fatalf("Update under afterApply: %v", err)
	}
	select {
	case <-changed:
		t.Fatal("the failed apply woke the watchers")
	default:
	}
	r := New(nil)
	if err := r.RecoverFromSnapshot(bytes.NewReader(snap), nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := r.Version(); i < uint64(len(cmds)); i++ {
		if _, err := r.Update(sm.Entry{Index: i + 1, Cmd: cmds[i]}); err != nil {
			t.Fatalf("replayed entry %d: %v", i+1, err)
		}
	}
	if !bytes.Equal(snapshotBytes(t, r), snapshotBytes(t, ref)) {
		t.Fatal("the restarted state differs from an uninterrupted run")
	}
	if v, _ := r.Lookup(QueryOffset{Group: "g", Topic: "t", Partition: 0}); v.(OffsetLookup).Value.Offset != 7 {
		t.Fatalf("committed offset after restart %+v, want 7", v)
	}
}
