package wal

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	pb "github.com/lni/dragonboat/v4/raftpb"
)

// run is a range of live entries [first, last] of one replica, all inside
// one entries (or relocated) record: the record at offset off of segment
// seg, recBytes long (header included). A record may back several runs
// (after truncation or relocation split it) and hold entries no run covers.
type run struct {
	first, last uint64
	seg         uint64
	off         int64
	recBytes    int64
}

// node is what the WAL knows about one (shard, replica).
//
// Invariants: runs are sorted by first and do not overlap; every index in
// a run is > compactedTo. Between the records of one replay they may have
// gaps (a relocated range not yet seen); after a full replay, and in the
// live state, dragonboat's own writes keep them contiguous.
type node struct {
	hasState    bool
	state       pb.State
	boot        *pb.Bootstrap
	snap        pb.Snapshot // Index 0: none
	compactedTo uint64
	runs        []run
}

// memState is the in-memory image of the log: every node's state and its
// entry index. Mutated only by apply (the committer, or recovery).
type memState struct {
	nodes map[nodeKey]*node
}

func newMemState() *memState { return &memState{nodes: map[nodeKey]*node{}} }

func (m *memState) get(k nodeKey) *node {
	n := m.nodes[k]
	if n == nil {
		n = &node{}
		m.nodes[k] = n
	}
	return n
}

// apply applies one verified record found at (seg, off), recBytes long.
func (m *memState) apply(t recType, p []byte, seg uint64, off, recBytes int64) error {
	switch t {
	case recEntries, recRelocated:
		v, err := viewEntries(p)
		if err != nil {
			return err
		}
		r := run{first: v.first, last: v.last(), seg: seg, off: off, recBytes: recBytes}
		n := m.get(v.key)
		if t == recEntries {
			n.truncateFrom(r.first)
			n.runs = append(n.runs, r)
		} else {
			n.overlay(r)
		}
	case recState:
		k, st, err := decodeState(p)
		if err != nil {
			return err
		}
		n := m.get(k)
		n.hasState, n.state = true, st
	case recBootstrap:
		k, err := getKey(p)
		if err != nil {
			return err
		}
		bs, err := decodeBootstrap(p[nodeKeyBytes:])
		if err != nil {
			return err
		}
		m.get(k).boot = &bs
	case recSnapshot, recImport:
		return m.applySnapshot(t, p)
	case recCompact:
		k, idx, err := decodeIndexRec(p)
		if err != nil {
			return err
		}
		m.get(k).compact(idx)
	case recRemove:
		k, err := getKey(p)
		if err != nil {
			return err
		}
		delete(m.nodes, k)
	case recCheckpoint:
		return m.applyCheckpoint(p)
	default:
		return fmt.Errorf("%w: record type %d", errBadRecord, t)
	}
	return nil
}

func (m *memState) applySnapshot(t recType, p []byte) error {
	k, err := getKey(p)
	if err != nil {
		return err
	}
	ss, err := decodeSnapshot(p[nodeKeyBytes:])
	if err != nil {
		return err
	}
	if t == recImport {
		// tan's ImportSnapshot: a joining bootstrap, everything else
		// replaced by the snapshot and a state at its index.
		m.nodes[k] = &node{boot: &pb.Bootstrap{Join: true, Type: ss.Type}, snap: ss,
			hasState: true, state: pb.State{Term: ss.Term, Commit: ss.Index}}
		return nil
	}
	n := m.get(k)
	if ss.Index > n.snap.Index {
		n.snap = ss
	}
	return nil
}

// truncateFrom drops every entry with index >= i (Raft log truncation).
func (n *node) truncateFrom(i uint64) {
	j := sort.Search(len(n.runs), func(j int) bool { return n.runs[j].last >= i })
	if j < len(n.runs) && n.runs[j].first < i {
		n.runs[j].last = i - 1
		j++
	}
	n.runs = n.runs[:j]
}

// compact drops the entries with index <= i and raises compactedTo.
func (n *node) compact(i uint64) {
	n.compactedTo = max(n.compactedTo, i)
	n.dropThrough(n.compactedTo)
}

// dropThrough drops the entries with index <= i from the runs, in place:
// a compaction removes a prefix, in O(log n) and without a copy.
func (n *node) dropThrough(i uint64) {
	j := sort.Search(len(n.runs), func(j int) bool { return n.runs[j].last > i })
	n.runs = n.runs[j:]
	if len(n.runs) == 0 {
		n.runs = nil
	} else if n.runs[0].first <= i {
		n.runs[0].first = i + 1
	}
}

// overlay installs r over whatever covers [r.first, r.last], keeping the
// entries below and above it (a relocation moves entries, it does not
// truncate the log). In place: the runs r overlaps are found by binary
// search and replaced by r and what is left of the first and last of
// them, so a relocation (which rewrites exactly one run's range) costs
// O(log n), not a copy of the node's runs.
func (n *node) overlay(r run) {
	// Runs are sorted by first and disjoint, so sorted by last too:
	// runs[i:j] are exactly those that overlap [r.first, r.last].
	i := sort.Search(len(n.runs), func(j int) bool { return n.runs[j].last >= r.first })
	j := i + sort.Search(len(n.runs)-i, func(j int) bool { return n.runs[i+j].first > r.last })
	if j == i+1 && n.runs[i].first == r.first && n.runs[i].last == r.last {
		n.runs[i] = r
		return
	}
	var pieces [3]run
	ps := pieces[:0]
	if i < j && n.runs[i].first < r.first {
		left := n.runs[i]
		left.last = r.first - 1
		ps = append(ps, left)
	}
	ps = append(ps, r)
	if i < j && n.runs[j-1].last > r.last {
		right := n.runs[j-1]
		right.first = r.last + 1
		ps = append(ps, right)
	}
	n.runs = slices.Replace(n.runs, i, j, ps...)
}

// query returns the runs covering a contiguous range from low on, while
// they start below high; nil if low itself is not covered (tan's
// index.query).
func (n *node) query(low, high uint64) []run {
	j := sort.Search(len(n.runs), func(j int) bool { return n.runs[j].last >= low })
	if j == len(n.runs) || n.runs[j].first > low {
		return nil
	}
	out := []run{n.runs[j]}
	for j++; j < len(n.runs) && n.runs[j].first < high && n.runs[j].first == out[len(out)-1].last+1; j++ {
		out = append(out, n.runs[j])
	}
	return out
}

// Checkpoint: the state of every node, at the start of each segment, so
// that no older segment is needed for it.
//
//	checkpoint := count:u32 node*
//	node := shard:u64 replica:u64 flags:u8 term vote commit compactedTo:u64
//	        bootLen:u32 boot snapLen:u32 snap
//	flags: 1 state saved, 2 bootstrap saved
const (
	ckptHasState = 1
	ckptHasBoot  = 2
	ckptFixed    = nodeKeyBytes + 1 + 32 + 4 + 4
)

func (m *memState) sortedKeys() []nodeKey {
	keys := make([]nodeKey, 0, len(m.nodes))
	for k := range m.nodes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b nodeKey) int {
		return cmp.Or(cmp.Compare(a.shard, b.shard), cmp.Compare(a.replica, b.replica))
	})
	return keys
}

func appendCheckpoint(dst []byte, m *memState) []byte {
	keys := m.sortedKeys()
	size := 4
	for _, k := range keys {
		n := m.nodes[k]
		size += ckptFixed
		if n.snap.Index != 0 {
			size += n.snap.Size()
		}
		if n.boot != nil {
			size += n.boot.Size()
		}
	}
	return appendRecord(dst, recCheckpoint, size, func(p []byte) {
		binary.LittleEndian.PutUint32(p, uint32(len(keys)))
		pos := 4
		for _, k := range keys {
			pos += putCheckpointNode(p[pos:], k, m.nodes[k])
		}
	})
}

func putCheckpointNode(p []byte, k nodeKey, n *node) int {
	putKey(p, k)
	flags := byte(0)
	if n.hasState {
		flags |= ckptHasState
	}
	if n.boot != nil {
		flags |= ckptHasBoot
	}
	p[16] = flags
	binary.LittleEndian.PutUint64(p[17:], n.state.Term)
	binary.LittleEndian.PutUint64(p[25:], n.state.Vote)
	binary.LittleEndian.PutUint64(p[33:], n.state.Commit)
	binary.LittleEndian.PutUint64(p[41:], n.compactedTo)
	pos := 49
	bl := 0
	if n.boot != nil {
		bl, _ = n.boot.MarshalTo(p[pos+4:])
	}
	binary.LittleEndian.PutUint32(p[pos:], uint32(bl))
	pos += 4 + bl
	sl := 0
	if n.snap.Index != 0 {
		sl, _ = n.snap.MarshalTo(p[pos+4:])
	}
	binary.LittleEndian.PutUint32(p[pos:], uint32(sl))
	return pos + 4 + sl
}

func (m *memState) applyCheckpoint(p []byte) error {
	if len(p) < 4 {
		return fmt.Errorf("%w: checkpoint of %d bytes", errBadRecord, len(p))
	}
	count := binary.LittleEndian.Uint32(p)
	p = p[4:]
	for i := uint32(0); i < count; i++ {
		used, err := m.applyCheckpointNode(p)
		if err != nil {
			return fmt.Errorf("checkpoint node %d of %d: %w", i, count, err)
		}
		p = p[used:]
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: checkpoint: %d trailing bytes", errBadRecord, len(p))
	}
	return nil
}

func (m *memState) applyCheckpointNode(p []byte) (int, error) {
	if len(p) < ckptFixed {
		return 0, fmt.Errorf("%w: %d bytes", errBadRecord, len(p))
	}
	k, _ := getKey(p)
	flags := p[16]
	st := pb.State{Term: binary.LittleEndian.Uint64(p[17:]), Vote: binary.LittleEndian.Uint64(p[25:]),
		Commit: binary.LittleEndian.Uint64(p[33:])}
	compactedTo := binary.LittleEndian.Uint64(p[41:])
	pos := 49
	var boot *pb.Bootstrap
	bl := int(binary.LittleEndian.Uint32(p[pos:]))
	if bl > len(p)-pos-8 {
		return 0, fmt.Errorf("%w: bootstrap of %d bytes, %d left", errBadRecord, bl, len(p)-pos-8)
	}
	if flags&ckptHasBoot != 0 {
		bs, err := decodeBootstrap(p[pos+4 : pos+4+bl])
		if err != nil {
			return 0, err
		}
		boot = &bs
	}
	pos += 4 + bl
	sl := int(binary.LittleEndian.Uint32(p[pos:]))
	if sl > len(p)-pos-4 {
		return 0, fmt.Errorf("%w: snapshot of %d bytes, %d left", errBadRecord, sl, len(p)-pos-4)
	}
	var ss pb.Snapshot
	if sl > 0 {
		var err error
		if ss, err = decodeSnapshot(p[pos+4 : pos+4+sl]); err != nil {
			return 0, err
		}
	}
	n := m.get(k)
	n.hasState, n.state, n.boot, n.snap = flags&ckptHasState != 0, st, boot, ss
	n.compactedTo = compactedTo
	n.dropThrough(compactedTo)
	return pos + 4 + sl, nil
}
