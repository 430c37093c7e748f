package meta

import (
	"bytes"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Replicated group membership (Kafka's group metadata records in
// __consumer_offsets).
//
// The group coordinator (core/group, on the controller leader) writes one
// record per group when a classic group's generation completes, when it
// becomes Empty, when it is deleted, and at every change of a KIP-848
// consumer group; a coordinator starting a tenure loads them, so a
// coordinator move keeps every group's generation or epochs, members and
// assignments (no rebalance). The record's Data is opaque here: core/group
// encodes and decodes it. Each record replaces the group's previous one.
//
// Tenures: a coordinator's tenure is named by the controller Raft term in
// which it began (Term). A new coordinator first proposes
// FenceGroupStates{Term}, then reads the records: a write of an earlier
// tenure (the previous coordinator's timers still run until it learns it
// lost the leadership, and dragonboat forwards its proposals to the new
// leader) applied before the fence is in what the new coordinator loads,
// and one applied after it is refused (NOT_COORDINATOR). Within a tenure
// writes carry a sequence number (Seq) and a group's record only moves
// forward in (Term, Seq).

// GroupStatesMax bounds the groups with a replicated membership record;
// GroupStateBytesMax one record's Data.
const (
	GroupStatesMax     = 100_000
	GroupStateBytesMax = CommandBytesMax - 1<<16
)

// PutGroupState replaces Group's membership record with Data, or deletes
// it when Data is empty. Term is the writing coordinator's tenure, Seq
// orders its writes. Refused (NOT_COORDINATOR, nothing changes) when Term
// is below the fence or (Term, Seq) is not after the group's record.
type PutGroupState struct {
	Group string
	Term  uint64
	Seq   uint64
	Data  []byte
}

// FenceGroupStates raises the fence to Term: from then on a PutGroupState
// of an earlier tenure is refused. Refused when Term is below the fence.
type FenceGroupStates struct {
	Term uint64
}

func (PutGroupState) Kind() Kind    { return KindPutGroupState }
func (FenceGroupStates) Kind() Kind { return KindFenceGroupStates }

func (c PutGroupState) encode(e *enc) {
	e.str(c.Group)
	e.uvar(c.Term)
	e.uvar(c.Seq)
	e.str(string(c.Data))
}

func (c FenceGroupStates) encode(e *enc) { e.uvar(c.Term) }

func decodeGroupStateBody(d *dec, k Kind) Command {
	if k == KindFenceGroupStates {
		return FenceGroupStates{Term: d.uvar()}
	}
	c := PutGroupState{Group: d.str(GroupIDLenMax), Term: d.uvar(), Seq: d.uvar()}
	if data := d.str(GroupStateBytesMax); data != "" {
		c.Data = []byte(data)
	}
	return c
}

// GroupState is one group's membership record (QueryGroupStates).
type GroupState struct {
	Group string
	Term  uint64
	Seq   uint64
	Data  []byte
}

// GroupStates is QueryGroupStates' answer: the fence and every record,
// sorted by group.
type GroupStates struct {
	Fence  uint64
	Groups []GroupState
}

// QueryGroupStates returns GroupStates (copies the caller owns).
type QueryGroupStates struct{}

func (s *state) putGroupState(c PutGroupState) (Result, bool) {
	if c.Group == "" {
		return fail(kerr.InvalidGroupID.Code, "empty group id"), false
	}
	if c.Term < s.groupFence {
		return fail(kerr.NotCoordinator.Code, "group %q: tenure %d is fenced by %d", c.Group, c.Term, s.groupFence), false
	}
	old, had := s.groupStates[c.Group]
	if had && (c.Term < old.Term || c.Term == old.Term && c.Seq <= old.Seq) {
		return fail(kerr.NotCoordinator.Code, "group %q: write (%d, %d) is not after (%d, %d)", c.Group, c.Term, c.Seq, old.Term, old.Seq), false
	}
	if !had && len(c.Data) > 0 && len(s.groupStates) >= GroupStatesMax {
		return fail(kerr.CoordinatorNotAvailable.Code, "group %q: %d group records at limit", c.Group, len(s.groupStates)), false
	}
	changed := c.Term != s.groupFence
	s.groupFence = c.Term
	if len(c.Data) == 0 {
		if had {
			delete(s.groupStates, c.Group)
			changed = true
		}
		return Result{}, changed
	}
	s.groupStates[c.Group] = GroupState{Group: c.Group, Term: c.Term, Seq: c.Seq, Data: bytes.Clone(c.Data)}
	return Result{}, true
}

func (s *state) fenceGroupStates(c FenceGroupStates) (Result, bool) {
	if c.Term < s.groupFence {
		return fail(kerr.NotCoordinator.Code, "tenure %d is fenced by %d", c.Term, s.groupFence), false
	}
	changed := c.Term != s.groupFence
	s.groupFence = c.Term
	return Result{}, changed
}

func (s *state) groupStatesCopy() GroupStates {
	out := GroupStates{Fence: s.groupFence}
	for _, g := range sortedKeys(s.groupStates) {
		r := s.groupStates[g]
		r.Data = bytes.Clone(r.Data)
		out.Groups = append(out.Groups, r)
	}
	return out
}

// encodeSnapshotGroupStates writes the v10 section: fence, then the records
// sorted by group.
func (s *state) encodeSnapshotGroupStates(e *enc) {
	e.uvar(s.groupFence)
	e.uvar(uint64(len(s.groupStates)))
	for _, g := range sortedKeys(s.groupStates) {
		PutGroupState(s.groupStates[g]).encode(e)
	}
}

func decodeSnapshotGroupStates(d *dec, s *state) {
	s.groupFence = d.uvar()
	n := d.count(GroupStatesMax)
	for i := 0; i < n && d.err == nil; i++ {
		c := decodeGroupStateBody(d, KindPutGroupState).(PutGroupState)
		if _, dup := s.groupStates[c.Group]; dup {
			d.fail("duplicate group state %q", c.Group)
		}
		s.groupStates[c.Group] = GroupState(c)
	}
}

// checkGroupStates: every record has a group id, data, and a term at or
// below the fence.
func (s *state) checkGroupStates() error {
	for _, g := range sortedKeys(s.groupStates) {
		r := s.groupStates[g]
		if r.Group != g || g == "" || len(r.Data) == 0 || r.Term > s.groupFence {
			return fmt.Errorf("group state %q: group %q term %d (fence %d), %d bytes", g, r.Group, r.Term, s.groupFence, len(r.Data))
		}
	}
	return nil
}
