package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/diskio"
)

// Sentinel errors.
var (
	// ErrClosed: the WAL was closed.
	ErrClosed = errors.New("wal: closed")
	// ErrFailed: a write or fsync failed; the WAL accepts nothing more
	// until it is closed and reopened (recovery decides what survived).
	// Wraps the cause.
	ErrFailed = errors.New("wal: failed")
	// ErrCorrupt: stored bytes failed verification in a way a crash cannot
	// explain (a bad record followed by valid data, a bad record in an
	// older segment, a bad record read back). Names the file and offset.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrFormat: the directory holds a WAL of another format version, or
	// segments without a format marker.
	ErrFormat = errors.New("wal: unknown format")
)

const (
	// Name is the LogDB type name dragonboat records in its flag file.
	Name = "chronik-wal"
	// FormatVersion is BinaryFormat(): "CW" and the format's version.
	FormatVersion uint32 = 0x43570001

	// DefaultSegmentBytes is Options.SegmentBytes when zero.
	DefaultSegmentBytes = 64 << 20
	// SegmentBytesMin is the smallest segment size accepted.
	SegmentBytesMin = 4 << 10
	// DefaultRecycleSegments is Options.RecycleSegments when zero.
	DefaultRecycleSegments = 1
	// DefaultGroupBytesMax is Options.GroupBytesMax when zero.
	DefaultGroupBytesMax = 16 << 20
	// queueLen bounds the requests waiting for the committer; a full queue
	// blocks the caller (dragonboat's step workers), which is the
	// backpressure.
	queueLen = 1024
	// RelocateChunkBytes bounds the live entries one relocation step
	// copies between two group commits (a run larger than it moves alone).
	RelocateChunkBytes = 1 << 20
	// relocStarveGroups: a relocation step runs after this many group
	// commits even if requests are waiting.
	relocStarveGroups = 8
	// recBufKeepBytesMax: a request's record buffer (pooled between
	// SaveRaftState calls) and the committer's batch buffer are kept for
	// reuse only up to this capacity; a larger one goes to the GC.
	recBufKeepBytesMax = 8 << 20
)

// Options configure a WAL.
type Options struct {
	// SegmentBytes: a segment is sealed (a new one started) once it
	// reaches this size. Zero: DefaultSegmentBytes.
	SegmentBytes int64
	// RecycleSegments: up to this many dead segments are kept (renamed
	// NNNN.free) and reused as the next segments, written over from the
	// start, instead of deleted and created anew: a write then overwrites
	// allocated blocks whose pages are cached (no block allocation for
	// the fsync to journal, no fresh page-cache memory), at the cost of
	// this many segments of disk space. Zero: DefaultRecycleSegments;
	// negative: none.
	RecycleSegments int
	// GroupBytesMax bounds the bytes of the requests one group commit
	// gathers (a single larger request is written alone). Zero:
	// DefaultGroupBytesMax.
	GroupBytesMax int
	// Logger: nil discards.
	Logger *slog.Logger
	// OnFailure, if set, is told of a record that fails verification when
	// read back (ErrCorrupt) before the error is returned; if it returns,
	// the record is read once more and served if it verifies then (a
	// simulated node's fail-stop clears its disk's faults; see
	// readEntriesInto). Write and fsync failures reach the node's
	// fail-stop through the FS it passes (diskio.FailStop).
	OnFailure func(error)
	// ObserveSync, if set, is told how long each fsync of a segment took,
	// timed on Clock (required with it): the node's fsync stage metric.
	ObserveSync func(time.Duration)
	// Clock times fsyncs and paces the removal of dead segments. Nil:
	// clock.Real() (not allowed with ObserveSync).
	Clock clock.Clock
}

func (o Options) withDefaults() (Options, error) {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes < SegmentBytesMin {
		return o, fmt.Errorf("wal: SegmentBytes %d below the minimum %d", o.SegmentBytes, SegmentBytesMin)
	}
	if o.GroupBytesMax == 0 {
		o.GroupBytesMax = DefaultGroupBytesMax
	}
	switch {
	case o.RecycleSegments == 0:
		o.RecycleSegments = DefaultRecycleSegments
	case o.RecycleSegments < 0:
		o.RecycleSegments = 0
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ObserveSync != nil && o.Clock == nil {
		return o, fmt.Errorf("wal: ObserveSync without a Clock")
	}
	if o.Clock == nil {
		o.Clock = clock.Real()
	}
	return o, nil
}

// Factory is a config.LogDBFactory for NodeHostConfig.Expert.LogDBFactory.
// dragonboat's directories are ignored: the WAL lives in dir/wal.
type Factory struct {
	fs   diskio.FS
	dir  string
	opts Options
}

var _ config.LogDBFactory = (*Factory)(nil)

// NewFactory returns a factory opening the WAL in dir/wal on fs.
func NewFactory(fs diskio.FS, dir string, opts Options) *Factory {
	return &Factory{fs: fs, dir: dir, opts: opts}
}

// Create opens the WAL (dragonboat calls it once per NodeHost).
func (f *Factory) Create(config.NodeHostConfig, config.LogDBCallback, []string, []string) (raftio.ILogDB, error) {
	return Open(f.fs, f.dir, f.opts)
}

// Name is the LogDB type name.
func (f *Factory) Name() string { return Name }

// segment is one open segment file.
type segment struct {
	num  uint64
	f    diskio.File
	name string
	// readers counts reads in progress; the committer deletes a segment
	// only when it is zero (checked under WAL.mu, raised under it too).
	readers atomic.Int64
}

// request is one write waiting for a group commit.
type request struct {
	// recs is batchHeaderBytes of room for the batch header (so that a
	// group of one request is framed and written in place, not copied),
	// then the encoded records. Owned by the committer from the send
	// until done is answered; the caller may reuse it only after that.
	recs  []byte
	sync  bool // needs an fsync before done
	frees bool // may leave segments dead (compaction, removal, import)
	done  chan error
}

// WAL is the node-wide write-ahead log, a raftio.ILogDB. See doc.go.
type WAL struct {
	fs   diskio.FS
	dir  string // the wal directory
	opts Options
	log  *slog.Logger

	reqs chan *request
	stop chan struct{}
	done chan struct{}
	once sync.Once
	// unlinkQ carries the dead segments (renamed deadName) for unlinker
	// to remove off the committer's path; closed when the committer
	// ends; unlinked is closed when unlinker has removed them all.
	unlinkQ  chan string
	unlinked chan struct{}

	// mu guards st and segs. Held for map and index operations only,
	// never across I/O or a wait.
	mu     sync.RWMutex
	st     *memState
	segs   map[uint64]*segment
	closed bool // set by Close: reads find nothing

	// Committer-owned (and Open's before the committer starts).
	active     *segment
	activeSize int64
	// activeFileSize is the active segment's file size when it became
	// active: a reused segment's old bytes lie past activeSize until
	// overwritten; they are cut when it is sealed or closed.
	activeFileSize int64
	// free holds the numbers of the dead segments kept for reuse
	// (freeName), oldest first, at most Options.RecycleSegments.
	free []uint64
	// relocSeg is the segment whose live entries relocateStep is moving
	// forward (0: none); relocWait counts the groups since its last step.
	relocSeg  uint64
	relocWait int
	reused    int  // segments started on a reused file (read by tests after Close)
	dirty     bool // active has writes not yet fsynced
	seq       uint64
	failed    error
	batchBuf  []byte // reused for groups that must be copied into one batch
	relocRead []byte // reused by relocateStep to read the records it moves
	openBuf   []byte // Open's: reused to read each batch (readBatch)
}

// recPool holds record buffers of SaveRaftState (as *[]byte), returned
// only after the committer answered the request that held them.
var recPool sync.Pool

// newRecs returns an empty record buffer: batchHeaderBytes of room for
// the batch header (see request.recs), no records.
func newRecs() []byte { return make([]byte, batchHeaderBytes, 256) }

// getRecs is newRecs from recPool. Its bytes past the header room are
// stale: record encoders overwrite every byte they append.
func getRecs() []byte {
	if b, ok := recPool.Get().(*[]byte); ok {
		return (*b)[:batchHeaderBytes]
	}
	return newRecs()
}

// putRecs returns a buffer to recPool. The caller must hold the only
// reference (its request was answered by the committer).
func putRecs(b []byte) {
	if cap(b) > recBufKeepBytesMax {
		return
	}
	b = b[:0]
	recPool.Put(&b)
}

var _ raftio.ILogDB = (*WAL)(nil)

// Name returns the LogDB type name.
func (w *WAL) Name() string { return Name }

// BinaryFormat returns FormatVersion.
func (w *WAL) BinaryFormat() uint32 { return FormatVersion }

// Close stops the committer (requests still queued get ErrClosed) and
// closes the segment files. It does not fsync: everything acknowledged
// already is.
func (w *WAL) Close() error {
	var err error
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		<-w.unlinked
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, s := range w.segs {
			err = errors.Join(err, s.f.Close())
		}
		w.segs, w.closed = map[uint64]*segment{}, true
	})
	return err
}

// submit queues recs (header room and records, see request.recs) for the
// next group commit and waits for it.
func (w *WAL) submit(recs []byte, sync bool) error {
	_, err := w.submitReq(&request{recs: recs, sync: sync, done: make(chan error, 1)})
	return err
}

// submitFreeing is submit for a record that may leave segments dead.
func (w *WAL) submitFreeing(recs []byte) error {
	_, err := w.submitReq(&request{recs: recs, sync: true, frees: true, done: make(chan error, 1)})
	return err
}

// submitReq queues r and waits for its answer. released reports that the
// committer no longer references r.recs (it answered r, or r was never
// queued); otherwise (Close raced with the send) r may still sit in the
// dead queue and r.recs must not be reused.
func (w *WAL) submitReq(r *request) (released bool, err error) {
	select {
	case w.reqs <- r:
	case <-w.stop:
		return true, ErrClosed
	}
	select {
	case err := <-r.done:
		return true, err
	case <-w.done:
		select {
		case err := <-r.done:
			return true, err
		default:
			return false, ErrClosed
		}
	}
}

// SaveRaftState writes the entries, snapshot metadata and state of every
// update in one group commit and returns once it is durable.
func (w *WAL) SaveRaftState(updates []pb.Update, _ uint64) error {
	recs := getRecs()
	needSync := false
	for i := range updates {
		u := &updates[i]
		k := nodeKey{u.ShardID, u.ReplicaID}
		if len(u.EntriesToSave) > 0 {
			recs = appendEntries(recs, recEntries, k, u.EntriesToSave)
			needSync = true
		}
		if !pb.IsEmptySnapshot(u.Snapshot) {
			recs = appendMsg(recs, recSnapshot, k, &u.Snapshot)
			needSync = true
		}
		if !pb.IsEmptyState(u.State) {
			saved, ok := w.savedState(k)
			if !ok || !pb.IsStateEqual(saved, u.State) {
				recs = appendState(recs, k, u.State)
				// A commit index alone need not be durable (Raft
				// recovers it); term and vote must be.
				needSync = needSync || !ok || saved.Term != u.State.Term || saved.Vote != u.State.Vote
			}
		}
	}
	if len(recs) == batchHeaderBytes {
		putRecs(recs)
		return nil
	}
	r := &request{recs: recs, sync: needSync, done: make(chan error, 1)}
	released, err := w.submitReq(r)
	if released {
		r.recs = nil
		putRecs(recs)
	}
	return err
}

func (w *WAL) savedState(k nodeKey) (pb.State, bool) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if n := w.st.nodes[k]; n != nil && n.hasState {
		return n.state, true
	}
	return pb.State{}, false
}

// SaveBootstrapInfo saves the bootstrap record of a replica.
func (w *WAL) SaveBootstrapInfo(shardID, replicaID uint64, bs pb.Bootstrap) error {
	return w.submit(appendMsg(newRecs(), recBootstrap, nodeKey{shardID, replicaID}, &bs), true)
}

// GetBootstrapInfo returns the saved bootstrap record, or
// raftio.ErrNoBootstrapInfo.
func (w *WAL) GetBootstrapInfo(shardID, replicaID uint64) (pb.Bootstrap, error) {
	w.mu.RLock()
	n := w.st.nodes[nodeKey{shardID, replicaID}]
	var b []byte
	if n != nil && n.boot != nil {
		b, _ = n.boot.Marshal()
	}
	w.mu.RUnlock()
	if b == nil {
		return pb.Bootstrap{}, raftio.ErrNoBootstrapInfo
	}
	return decodeBootstrap(b) // a copy: the caller may keep or change it
}

// ListNodeInfo lists the replicas with a bootstrap record, sorted.
func (w *WAL) ListNodeInfo() ([]raftio.NodeInfo, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	out := []raftio.NodeInfo{}
	for _, k := range w.st.sortedKeys() {
		if w.st.nodes[k].boot != nil {
			out = append(out, raftio.NodeInfo{ShardID: k.shard, ReplicaID: k.replica})
		}
	}
	return out, nil
}

// SaveSnapshots saves the snapshot metadata of every update that has one.
func (w *WAL) SaveSnapshots(updates []pb.Update) error {
	recs := newRecs()
	for i := range updates {
		if !pb.IsEmptySnapshot(updates[i].Snapshot) {
			recs = appendMsg(recs, recSnapshot, nodeKey{updates[i].ShardID, updates[i].ReplicaID}, &updates[i].Snapshot)
		}
	}
	if len(recs) == batchHeaderBytes {
		return nil
	}
	return w.submit(recs, true)
}

// GetSnapshot returns the newest saved snapshot metadata (by index), or an
// empty snapshot.
func (w *WAL) GetSnapshot(shardID, replicaID uint64) (pb.Snapshot, error) {
	w.mu.RLock()
	n := w.st.nodes[nodeKey{shardID, replicaID}]
	var b []byte
	if n != nil && n.snap.Index != 0 {
		b, _ = n.snap.Marshal()
	}
	w.mu.RUnlock()
	if b == nil {
		return pb.Snapshot{}, nil
	}
	return decodeSnapshot(b)
}

// ReadRaftState returns the saved state and the range of entries after
// lastIndex: FirstIndex = lastIndex+1 and EntryCount the length of the
// contiguous run starting there (both zero if lastIndex+1 is not stored).
// raftio.ErrNoSavedLog if no state was ever saved.
func (w *WAL) ReadRaftState(shardID, replicaID, lastIndex uint64) (raftio.RaftState, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	n := w.st.nodes[nodeKey{shardID, replicaID}]
	if n == nil || !n.hasState {
		return raftio.RaftState{}, raftio.ErrNoSavedLog
	}
	rs := raftio.RaftState{State: n.state}
	if runs := n.query(lastIndex+1, math.MaxUint64); len(runs) > 0 {
		rs.FirstIndex = lastIndex + 1
		rs.EntryCount = runs[len(runs)-1].last - lastIndex
	}
	return rs, nil
}

// RemoveEntriesTo marks the entries with index <= index removed; segments
// holding nothing live any more are deleted.
func (w *WAL) RemoveEntriesTo(shardID, replicaID, index uint64) error {
	return w.submitFreeing(appendIndexRec(newRecs(), recCompact, nodeKey{shardID, replicaID}, index))
}

// CompactEntriesTo: space is reclaimed by RemoveEntriesTo already (whole
// segments); the returned channel is ready at once.
func (w *WAL) CompactEntriesTo(uint64, uint64, uint64) (<-chan struct{}, error) {
	ch := make(chan struct{}, 1)
	ch <- struct{}{}
	return ch, nil
}

// RemoveNodeData forgets everything of a replica, bootstrap included.
func (w *WAL) RemoveNodeData(shardID, replicaID uint64) error {
	return w.submitFreeing(appendKeyOnly(newRecs(), recRemove, nodeKey{shardID, replicaID}))
}

// ImportSnapshot replaces everything of replica replicaID of the
// snapshot's shard with the snapshot: a joining bootstrap record, the
// snapshot metadata, and a state at the snapshot's index and term.
func (w *WAL) ImportSnapshot(ss pb.Snapshot, replicaID uint64) error {
	if pb.IsEmptySnapshot(ss) {
		return fmt.Errorf("wal: import of an empty snapshot")
	}
	return w.submitFreeing(appendMsg(newRecs(), recImport, nodeKey{ss.ShardID, replicaID}, &ss))
}

// IterateEntries appends to ents the entries [low, high) of a replica, in
// order and contiguous, up to maxSize bytes (by Entry.SizeUpperLimit,
// counted into size; the entry that crosses maxSize is included, so at
// least one is returned if low is stored; maxSize 0: no limit). Nothing is
// appended if low is compacted or not stored.
func (w *WAL) IterateEntries(ents []pb.Entry, size uint64, shardID, replicaID, low, high, maxSize uint64) ([]pb.Entry, uint64, error) {
	if low >= high {
		return ents, size, nil
	}
	runs, segs := w.pinRuns(nodeKey{shardID, replicaID}, low, high)
	defer unpin(segs)
	if maxSize == 0 {
		maxSize = math.MaxUint64
	}
	expected := low
	done := false
	for i, r := range runs {
		v, err := w.readEntries(segs[i], r)
		if err != nil {
			return nil, 0, err
		}
		err = v.each(max(r.first, expected), min(r.last, high-1), func(e pb.Entry) bool {
			size += uint64(e.SizeUpperLimit())
			ents = append(ents, e)
			expected = e.Index + 1
			done = size > maxSize
			return !done
		})
		if err != nil {
			return nil, 0, w.corrupt(segs[i], r.off, err)
		}
		if done || expected != r.last+1 {
			break
		}
	}
	return ents, size, nil
}

// pinRuns returns the runs to read for [low, high) and their segments,
// each pinned against deletion (unpin releases them).
func (w *WAL) pinRuns(k nodeKey, low, high uint64) ([]run, []*segment) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	n := w.st.nodes[k]
	if w.closed || n == nil || low <= n.compactedTo {
		return nil, nil
	}
	runs := n.query(low, high)
	segs := make([]*segment, len(runs))
	for i, r := range runs {
		s := w.segs[r.seg]
		if s == nil {
			panic(fmt.Sprintf("wal: run [%d, %d] of shard %d replica %d in segment %d, which is not open",
				r.first, r.last, k.shard, k.replica, r.seg))
		}
		s.readers.Add(1)
		segs[i] = s
	}
	return runs, segs
}

func unpin(segs []*segment) {
	for _, s := range segs {
		s.readers.Add(-1)
	}
}

// ReadRetries is how many times a record (or, at open, a segment) that
// fails verification is read again before the failure is believed. A
// flip on the way from the disk is not the data on the disk: a re-read
// that verifies is served (and logged); only a record that fails every
// read is corruption (fail-stop).
const ReadRetries = 8

// readEntries reads and verifies the record behind r (re-reading it up
// to ReadRetries times while it fails verification).
func (w *WAL) readEntries(s *segment, r run) (entriesView, error) {
	return w.readEntriesInto(s, r, make([]byte, r.recBytes))
}

// readEntriesInto is readEntries into buf (r.recBytes long); the view
// points into it.
func (w *WAL) readEntriesInto(s *segment, r run, buf []byte) (entriesView, error) {
	var err error
	for attempt := 0; attempt <= ReadRetries; attempt++ {
		if n, rerr := s.f.ReadAt(buf, r.off); rerr != nil && !(errors.Is(rerr, io.EOF) && n == len(buf)) {
			return entriesView{}, fmt.Errorf("wal: read %s at offset %d: %w", s.name, r.off, rerr)
		}
		var v entriesView
		if v, err = verifyEntries(buf); err == nil {
			if attempt > 0 {
				w.log.Warn("WAL: a record read failed verification and a re-read passed (transient read corruption)",
					"segment", s.name, "offset", r.off, "reads", attempt+1)
			}
			return v, nil
		}
	}
	err = w.corrupt(s, r.off, err)
	if w.opts.OnFailure != nil {
		// The fail-stop hook returned: the simulator's does (the node is
		// crashed by then: network cut, disk frozen and its faults
		// cleared); chronik serve's exits the process. The dying node's
		// caller, dragonboat, panics on a LogDB error, which would end
		// every simulated node at once, so a read that verifies now is
		// served: it is the data on the disk, and nothing that node does
		// from here reaches a client, a peer or a crash image.
		if n, rerr := s.f.ReadAt(buf, r.off); rerr == nil || (errors.Is(rerr, io.EOF) && n == len(buf)) {
			if v, verr := verifyEntries(buf); verr == nil {
				return v, nil
			}
		}
	}
	return entriesView{}, err
}

// verifyEntries parses and verifies an entries record.
func verifyEntries(buf []byte) (entriesView, error) {
	t, p, _, err := parseRecord(buf)
	if err == nil && t != recEntries && t != recRelocated {
		err = fmt.Errorf("%w: record type %d where entries are indexed", errBadRecord, t)
	}
	if err != nil {
		return entriesView{}, err
	}
	return viewEntries(p)
}

// corrupt reports a record that failed verification on read.
func (w *WAL) corrupt(s *segment, off int64, err error) error {
	err = fmt.Errorf("%w: %s at offset %d: %v", ErrCorrupt, s.name, off, err)
	w.log.Error("WAL record failed verification on read", "err", err)
	if w.opts.OnFailure != nil {
		w.opts.OnFailure(err)
	}
	return err
}

func segmentName(num uint64) string { return fmt.Sprintf("%016x.wal", num) }

// freeName is the name of dead segment num kept for reuse: not a segment
// (recovery reads no file of this name, and a version that knows nothing
// of reuse ignores it).
func freeName(num uint64) string { return fmt.Sprintf("%016x%s", num, freeSuffix) }

// deadName is the name a dead segment is renamed to before unlinker
// removes it: a temporary file's (Open removes any left by a crash).
func deadName(num uint64) string { return fmt.Sprintf("%016x.dead%s", num, tmpSuffix) }

func (w *WAL) segPath(num uint64) string { return path.Join(w.dir, segmentName(num)) }

// sortedSegs returns the open segment numbers, oldest first.
func (w *WAL) sortedSegs() []uint64 {
	w.mu.RLock()
	defer w.mu.RUnlock()
	nums := make([]uint64, 0, len(w.segs))
	for n := range w.segs {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	return nums
}
