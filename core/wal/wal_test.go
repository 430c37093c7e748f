package wal

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lni/dragonboat/v4/config"
	dblogger "github.com/lni/dragonboat/v4/logger"
	"github.com/lni/dragonboat/v4/plugin/tan"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/chronik-go/chronik/diskio"
)

func TestMain(m *testing.M) {
	dblogger.GetLogger("tan").SetLevel(dblogger.ERROR)
	goleak.VerifyTestMain(m)
}

func mustOpen(t testing.TB, fs diskio.FS, opts Options) *WAL {
	t.Helper()
	w, err := Open(fs, "data", opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return w
}

func ents(first, last, term uint64) []pb.Entry {
	var out []pb.Entry
	for i := first; i <= last; i++ {
		out = append(out, pb.Entry{Index: i, Term: term, Cmd: []byte(fmt.Sprintf("cmd-%d-%d", i, term))})
	}
	return out
}

func iterate(t testing.TB, w raftio.ILogDB, shard, low, high, maxSize uint64) []pb.Entry {
	t.Helper()
	out, _, err := w.IterateEntries(nil, 0, shard, 1, low, high, maxSize)
	if err != nil {
		t.Fatalf("IterateEntries(%d, [%d, %d)): %v", shard, low, high, err)
	}
	return out
}

func indexes(es []pb.Entry) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("%d/%d ", e.Index, e.Term)
	}
	return s
}

// TestBasics: the ILogDB semantics of one replica, across a reopen.
func TestBasics(t *testing.T) {
	fs := diskio.NewSim(1)
	w := mustOpen(t, fs, Options{})
	if _, err := w.ReadRaftState(1, 1, 0); !errors.Is(err, raftio.ErrNoSavedLog) {
		t.Fatalf("ReadRaftState on nothing: %v, want ErrNoSavedLog", err)
	}
	if _, err := w.GetBootstrapInfo(1, 1); !errors.Is(err, raftio.ErrNoBootstrapInfo) {
		t.Fatalf("GetBootstrapInfo on nothing: %v", err)
	}
	if ss, err := w.GetSnapshot(1, 1); err != nil || !pb.IsEmptySnapshot(ss) {
		t.Fatalf("GetSnapshot on nothing: %v %v", ss, err)
	}
	bs := pb.Bootstrap{Addresses: map[uint64]string{1: "a:1"}, Type: pb.OnDiskStateMachine}
	if err := w.SaveBootstrapInfo(1, 1, bs); err != nil {
		t.Fatal(err)
	}
	st := pb.State{Term: 2, Vote: 1, Commit: 5}
	if err := w.SaveRaftState([]pb.Update{{ShardID: 1, ReplicaID: 1, State: st, EntriesToSave: ents(1, 10, 1)}}, 1); err != nil {
		t.Fatal(err)
	}
	// Truncation: 6.. replaced by term 2.
	if err := w.SaveRaftState([]pb.Update{{ShardID: 1, ReplicaID: 1, EntriesToSave: ents(6, 8, 2)}}, 1); err != nil {
		t.Fatal(err)
	}
	check := func(w *WAL) {
		t.Helper()
		got := iterate(t, w, 1, 1, 100, 0)
		want := append(ents(1, 5, 1), ents(6, 8, 2)...)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("entries %s, want %s", indexes(got), indexes(want))
		}
		rs, err := w.ReadRaftState(1, 1, 3)
		if err != nil || rs.State != st || rs.FirstIndex != 4 || rs.EntryCount != 5 {
			t.Fatalf("ReadRaftState: %+v %v", rs, err)
		}
		b, err := w.GetBootstrapInfo(1, 1)
		if err != nil || !reflect.DeepEqual(b, bs) {
			t.Fatalf("bootstrap %+v %v", b, err)
		}
		ni, _ := w.ListNodeInfo()
		if !reflect.DeepEqual(ni, []raftio.NodeInfo{{ShardID: 1, ReplicaID: 1}}) {
			t.Fatalf("ListNodeInfo %v", ni)
		}
	}
	check(w)
	if got := iterate(t, w, 1, 2, 100, 1); len(got) != 1 || got[0].Index != 2 {
		t.Fatalf("maxSize 1: %s, want one entry", indexes(got))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, fs, Options{})
	defer w.Close()
	check(w)
	if err := w.RemoveEntriesTo(1, 1, 4); err != nil {
		t.Fatal(err)
	}
	if got := iterate(t, w, 1, 4, 100, 0); len(got) != 0 {
		t.Fatalf("compacted low: %s, want nothing", indexes(got))
	}
	if got := iterate(t, w, 1, 5, 100, 0); len(got) != 4 {
		t.Fatalf("after compaction: %s", indexes(got))
	}
	if err := w.RemoveNodeData(1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadRaftState(1, 1, 0); !errors.Is(err, raftio.ErrNoSavedLog) {
		t.Fatalf("after RemoveNodeData: %v", err)
	}
}

// TestSegmentsRollAndDelete: with small segments, compaction deletes old
// segments, a quiet shard's entries are relocated instead of pinning, and
// everything survives reopening.
func TestSegmentsRollAndDelete(t *testing.T) {
	fs := diskio.NewSim(2)
	opts := Options{SegmentBytes: SegmentBytesMin}
	w := mustOpen(t, fs, opts)
	// Shard 2 writes once and never again.
	if err := w.SaveRaftState([]pb.Update{{ShardID: 2, ReplicaID: 1, State: pb.State{Term: 1, Commit: 3}, EntriesToSave: ents(1, 3, 1)}}, 1); err != nil {
		t.Fatal(err)
	}
	next := reuseWorkload(t, w, 1, func(round int) bool { return round == 200 })
	// Dead segments are renamed at once, removed in the background.
	all, _ := fs.List("data/wal")
	names := slices.DeleteFunc(slices.Clone(all), func(n string) bool { return strings.HasSuffix(n, ".dead"+tmpSuffix) })
	if len(names) > 12 {
		t.Fatalf("%d files in the WAL after compaction: %v", len(names), all)
	}
	if names[0] == segmentName(1) {
		t.Fatalf("segment 1 (the quiet shard's entries) still there: %v", names)
	}
	check := func(w *WAL) {
		t.Helper()
		if got := iterate(t, w, 2, 1, 10, 0); !reflect.DeepEqual(got, ents(1, 3, 1)) {
			t.Fatalf("quiet shard: %s", indexes(got))
		}
		if got := iterate(t, w, 1, next-19, next, 0); len(got) != 19 || got[18].Index != next-1 {
			t.Fatalf("busy shard: %d entries, %s", len(got), indexes(got))
		}
	}
	check(w)
	w.Close()
	if after, _ := fs.List("data/wal"); len(after) != len(names) {
		t.Fatalf("after Close: %v, want the dead segments removed: %v", after, names)
	}
	w = mustOpen(t, fs, opts)
	defer w.Close()
	check(w)
}

// TestTornTailAndCorruption: garbage after the last batch of the newest
// segment is cut; a bad byte inside a batch followed by a valid one, or in
// an older segment, refuses to open naming the file.
func TestTornTailAndCorruption(t *testing.T) {
	setup := func() (*diskio.Sim, []string) {
		fs := diskio.NewSim(3)
		w := mustOpen(t, fs, Options{})
		for i := uint64(1); i <= 3; i++ {
			if err := w.SaveRaftState([]pb.Update{{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Commit: i}, EntriesToSave: ents(i, i, 1)}}, 1); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		names, _ := fs.List("data/wal")
		return fs, names
	}
	fs, names := setup()
	newest := "data/wal/" + names[len(names)-2] // names end with FORMAT
	f, _ := fs.OpenRW(newest)
	size, _ := f.Size()
	f.WriteAt([]byte{0x43, 0x4b, 0x42, 0x31, 9, 9, 9, 9, 0xff}, size) // a torn batch header
	f.Sync()
	f.Close()
	w := mustOpen(t, fs, Options{})
	if got := iterate(t, w, 1, 1, 10, 0); len(got) != 3 {
		t.Fatalf("after a torn tail: %s", indexes(got))
	}
	w.Close()

	fs, names = setup()
	newest = "data/wal/" + names[len(names)-2]
	data, _ := readFile(fs, newest)
	// Flip a byte inside the second batch (the first is the checkpoint).
	_, _, n, _ := parseBatch(data)
	f, _ = fs.OpenRW(newest)
	f.WriteAt([]byte{data[n+30] ^ 0xff}, int64(n+30))
	f.Sync()
	f.Close()
	if _, err := Open(fs, "data", Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open with a bad batch followed by valid ones: %v, want ErrCorrupt", err)
	} else {
		t.Logf("refused: %v", err)
	}
}

// TestFormatMarker: another format refuses to open.
func TestFormatMarker(t *testing.T) {
	fs := diskio.NewSim(4)
	w := mustOpen(t, fs, Options{})
	w.Close()
	f, _ := fs.Create("data/wal/FORMAT")
	f.WriteAt([]byte("chronik-wal 99\n"), 0)
	f.Sync()
	f.Close()
	if _, err := Open(fs, "data", Options{}); !errors.Is(err, ErrFormat) {
		t.Fatalf("open: %v, want ErrFormat", err)
	}
}

// TestDifferentialTan applies the same random operations to tan (on a
// simulated disk) and to the WAL and compares every read.
func TestDifferentialTan(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		d := newDiff(rt)
		defer d.close()
		rt.Repeat(map[string]func(*rapid.T){
			"save":      d.save,
			"compact":   d.compact,
			"snapshots": d.saveSnapshots,
			"bootstrap": d.bootstrap,
			"remove":    d.remove,
			"import":    d.importSnapshot,
			"reopen":    d.reopen,
			"":          d.check,
		})
	})
}

type diffNode struct {
	last        uint64 // highest index saved
	compactedTo uint64
	removed     bool
}

type diff struct {
	t                *rapid.T
	tanFS, walFS     diskio.FS
	tanDB            raftio.ILogDB
	walDB            *WAL
	nodes            map[uint64]*diffNode
	term             uint64
	segmentBytes     int64
	removedSinceOpen bool
}

const diffShards = 3

func newDiff(t *rapid.T) *diff {
	d := &diff{t: t, tanFS: diskio.NewSim(1), walFS: diskio.NewSim(2), nodes: map[uint64]*diffNode{}, term: 1,
		segmentBytes: rapid.SampledFrom([]int64{SegmentBytesMin, 64 << 10}).Draw(t, "segmentBytes")}
	for s := uint64(1); s <= diffShards; s++ {
		d.nodes[s] = &diffNode{}
	}
	d.open()
	return d
}

func (d *diff) open() {
	cfg := config.NodeHostConfig{Expert: config.ExpertConfig{FS: diskio.NewVFS(d.tanFS), LogDB: config.GetTinyMemLogDBConfig()}}
	tdb, err := tan.Factory.Create(cfg, nil, []string{"tan"}, []string{"tan"})
	if err != nil {
		d.t.Fatalf("open tan: %v", err)
	}
	d.tanDB = tdb
	d.walDB, err = Open(d.walFS, "data", Options{SegmentBytes: d.segmentBytes})
	if err != nil {
		d.t.Fatalf("open wal: %v", err)
	}
}

func (d *diff) close() {
	d.tanDB.Close()
	d.walDB.Close()
}

func (d *diff) pick(t *rapid.T) (uint64, *diffNode) {
	var live []uint64
	for s := uint64(1); s <= diffShards; s++ {
		if !d.nodes[s].removed {
			live = append(live, s)
		}
	}
	if len(live) == 0 {
		t.Skip("every node removed")
	}
	s := rapid.SampledFrom(live).Draw(t, "shard")
	return s, d.nodes[s]
}

func both(t *rapid.T, what string, f func(db raftio.ILogDB) error, tdb, wdb raftio.ILogDB) {
	e1, e2 := f(tdb), f(wdb)
	if (e1 == nil) != (e2 == nil) {
		t.Fatalf("%s: tan %v, wal %v", what, e1, e2)
	}
	if e1 != nil {
		t.Fatalf("%s: %v", what, e1)
	}
}

func (d *diff) save(t *rapid.T) {
	var updates []pb.Update
	used := map[uint64]bool{}
	for i := rapid.IntRange(1, 3).Draw(t, "updates"); i > 0; i-- {
		s, n := d.pick(t)
		if used[s] {
			continue
		}
		used[s] = true
		u := pb.Update{ShardID: s, ReplicaID: 1}
		if rapid.Bool().Draw(t, "entries") {
			lo := max(n.compactedTo+1, 1)
			first := rapid.Uint64Range(lo, n.last+2).Draw(t, "first")
			count := rapid.Uint64Range(1, 6).Draw(t, "count")
			if rapid.Bool().Draw(t, "newTerm") {
				d.term++
			}
			for j := uint64(0); j < count; j++ {
				u.EntriesToSave = append(u.EntriesToSave, pb.Entry{Index: first + j, Term: d.term,
					Type: pb.EntryType(rapid.IntRange(0, 1).Draw(t, "type")), Key: rapid.Uint64().Draw(t, "key"),
					Cmd: []byte(rapid.StringN(0, 300, -1).Draw(t, "cmd"))})
			}
			n.last = first + count - 1
		}
		if rapid.Bool().Draw(t, "state") {
			u.State = pb.State{Term: d.term, Vote: rapid.Uint64Range(0, 3).Draw(t, "vote"), Commit: rapid.Uint64Range(0, n.last).Draw(t, "commit")}
		}
		if rapid.IntRange(0, 4).Draw(t, "snap") == 0 && n.last > 0 {
			u.Snapshot = d.snapshot(t, s, n)
		}
		updates = append(updates, u)
	}
	both(t, "SaveRaftState", func(db raftio.ILogDB) error { return db.SaveRaftState(updates, 1) }, d.tanDB, d.walDB)
}

func (d *diff) snapshot(t *rapid.T, s uint64, n *diffNode) pb.Snapshot {
	return pb.Snapshot{ShardID: s, Index: rapid.Uint64Range(1, n.last).Draw(t, "ssIndex"), Term: d.term,
		Filepath: "snap", FileSize: rapid.Uint64().Draw(t, "fileSize"), Type: pb.OnDiskStateMachine,
		Membership: pb.Membership{Addresses: map[uint64]string{1: "a:1", 2: "b:2"}}}
}

func (d *diff) compact(t *rapid.T) {
	s, n := d.pick(t)
	if n.last == 0 {
		t.Skip("nothing saved")
	}
	idx := rapid.Uint64Range(1, n.last).Draw(t, "to")
	n.compactedTo = max(n.compactedTo, idx)
	both(t, "RemoveEntriesTo", func(db raftio.ILogDB) error { return db.RemoveEntriesTo(s, 1, idx) }, d.tanDB, d.walDB)
}

func (d *diff) saveSnapshots(t *rapid.T) {
	s, n := d.pick(t)
	if n.last == 0 {
		t.Skip("nothing saved")
	}
	u := []pb.Update{{ShardID: s, ReplicaID: 1, Snapshot: d.snapshot(t, s, n)}}
	both(t, "SaveSnapshots", func(db raftio.ILogDB) error { return db.SaveSnapshots(u) }, d.tanDB, d.walDB)
}

func (d *diff) bootstrap(t *rapid.T) {
	s, _ := d.pick(t)
	bs := pb.Bootstrap{Addresses: map[uint64]string{1: rapid.StringN(1, 10, -1).Draw(t, "addr")}, Join: rapid.Bool().Draw(t, "join"), Type: pb.OnDiskStateMachine}
	both(t, "SaveBootstrapInfo", func(db raftio.ILogDB) error { return db.SaveBootstrapInfo(s, 1, bs) }, d.tanDB, d.walDB)
}

func (d *diff) remove(t *rapid.T) {
	s, n := d.pick(t)
	// tan's RemoveNodeData writes no record: a reopen replays the node's
	// records of its current log file back. The node is not used again.
	n.removed = true
	d.removedSinceOpen = true
	both(t, "RemoveNodeData", func(db raftio.ILogDB) error { return db.RemoveNodeData(s, 1) }, d.tanDB, d.walDB)
	d.checkNode(t, s)
}

func (d *diff) importSnapshot(t *rapid.T) {
	s, n := d.pick(t)
	ss := pb.Snapshot{ShardID: s, Index: rapid.Uint64Range(1, 50).Draw(t, "importIndex"), Term: d.term, Filepath: "imported", Type: pb.OnDiskStateMachine}
	n.last, n.compactedTo = ss.Index, 0
	both(t, "ImportSnapshot", func(db raftio.ILogDB) error { return db.ImportSnapshot(ss, 1) }, d.tanDB, d.walDB)
}

func (d *diff) reopen(t *rapid.T) {
	d.close()
	d.open()
	d.removedSinceOpen = false
}

func (d *diff) check(t *rapid.T) {
	for s := uint64(1); s <= diffShards; s++ {
		if !d.nodes[s].removed {
			d.checkNode(t, s)
		}
	}
	if !d.removedSinceOpen && !d.anyRemoved() {
		l1, _ := d.tanDB.ListNodeInfo()
		l2, _ := d.walDB.ListNodeInfo()
		if len(l1) != len(l2) {
			t.Fatalf("ListNodeInfo: tan %v, wal %v", l1, l2)
		}
	}
}

func (d *diff) anyRemoved() bool {
	for _, n := range d.nodes {
		if n.removed {
			return true
		}
	}
	return false
}

func (d *diff) checkNode(t *rapid.T, s uint64) {
	n := d.nodes[s]
	lastIndex := rapid.Uint64Range(n.compactedTo, n.last+1).Draw(t, "lastIndex")
	r1, e1 := d.tanDB.ReadRaftState(s, 1, lastIndex)
	r2, e2 := d.walDB.ReadRaftState(s, 1, lastIndex)
	if !errors.Is(e2, e1) && !errors.Is(e1, e2) || !reflect.DeepEqual(r1, r2) {
		t.Fatalf("ReadRaftState(%d, %d): tan %+v %v, wal %+v %v", s, lastIndex, r1, e1, r2, e2)
	}
	low := rapid.Uint64Range(1, n.last+2).Draw(t, "low")
	high := rapid.Uint64Range(low, n.last+3).Draw(t, "high")
	maxSize := rapid.SampledFrom([]uint64{0, 1, 200, 1000, 1 << 20}).Draw(t, "maxSize")
	g1, z1, e1 := d.tanDB.IterateEntries(nil, 0, s, 1, low, high, maxSize)
	g2, z2, e2 := d.walDB.IterateEntries(nil, 0, s, 1, low, high, maxSize)
	if e1 != nil || e2 != nil || z1 != z2 || len(g1) != len(g2) || (len(g1) > 0 && !reflect.DeepEqual(g1, g2)) {
		t.Fatalf("IterateEntries(%d, [%d, %d), %d): tan %s (%d) %v, wal %s (%d) %v", s, low, high, maxSize,
			indexes(g1), z1, e1, indexes(g2), z2, e2)
	}
	ss1, e1 := d.tanDB.GetSnapshot(s, 1)
	ss2, e2 := d.walDB.GetSnapshot(s, 1)
	if e1 != nil || e2 != nil || ss1.Index != ss2.Index || ss1.Term != ss2.Term || ss1.Filepath != ss2.Filepath || ss1.FileSize != ss2.FileSize {
		t.Fatalf("GetSnapshot(%d): tan %+v %v, wal %+v %v", s, ss1, e1, ss2, e2)
	}
	b1, e1 := d.tanDB.GetBootstrapInfo(s, 1)
	b2, e2 := d.walDB.GetBootstrapInfo(s, 1)
	if !errors.Is(e2, e1) && !errors.Is(e1, e2) || !reflect.DeepEqual(b1, b2) {
		t.Fatalf("GetBootstrapInfo(%d): tan %+v %v, wal %+v %v", s, b1, e1, b2, e2)
	}
}

// TestGroupCommit: concurrent writers of different shards share fsyncs
// (one Write and at most one fsync per group), and each returns only with
// its entries readable.
func TestGroupCommit(t *testing.T) {
	fs := diskio.NewSim(5)
	fs.SetFaults(diskio.Faults{Latency: map[diskio.Op]time.Duration{diskio.OpSync: time.Millisecond}})
	w := mustOpen(t, fs, Options{})
	defer w.Close()
	const writers, rounds = 8, 20
	before := fs.Stats().Syncs
	var wg sync.WaitGroup
	for s := uint64(1); s <= writers; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); i <= rounds; i++ {
				u := pb.Update{ShardID: s, ReplicaID: 1, State: pb.State{Term: 1, Commit: i}, EntriesToSave: ents(i, i, 1)}
				if err := w.SaveRaftState([]pb.Update{u}, s); err != nil {
					t.Error(err)
					return
				}
				if got := iterate(t, w, s, i, i+1, 0); len(got) != 1 {
					t.Errorf("shard %d: entry %d not readable after SaveRaftState", s, i)
				}
			}
		}()
	}
	wg.Wait()
	syncs := fs.Stats().Syncs - before
	t.Logf("%d SaveRaftState calls, %d fsyncs", writers*rounds, syncs)
	if syncs >= writers*rounds {
		t.Fatalf("%d fsyncs for %d calls: no group commit", syncs, writers*rounds)
	}
}

// TestPooledBuffersNotReusedEarly: SaveRaftState encodes into pooled
// buffers and the committer writes a lone request from that buffer in
// place; a buffer handed back to the pool while the committer still held
// it would be overwritten by another writer's entries. Many writers of
// distinct, varying-size entries (some groups of one, some copied, some
// crossing segment rolls), then every entry read back, before and after a
// reopen, must be byte-identical to what was saved.
func TestPooledBuffersNotReusedEarly(t *testing.T) {
	fs := diskio.NewSim(7)
	w := mustOpen(t, fs, Options{SegmentBytes: 64 << 10})
	const writers, rounds = 6, 150
	cmdOf := func(s, i uint64) []byte {
		b := make([]byte, 16+int((s*131+i*17)%3000))
		for j := range b {
			b[j] = byte(s*31 + i*7 + uint64(j))
		}
		return b
	}
	var wg sync.WaitGroup
	for s := uint64(1); s <= writers; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); i <= rounds; i++ {
				u := pb.Update{ShardID: s, ReplicaID: 1, State: pb.State{Term: 1, Commit: i},
					EntriesToSave: []pb.Entry{{Index: i, Term: 1, Cmd: cmdOf(s, i)}}}
				if err := w.SaveRaftState([]pb.Update{u}, s); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	check := func(w *WAL, when string) {
		for s := uint64(1); s <= writers; s++ {
			got := iterate(t, w, s, 1, rounds+1, 0)
			if len(got) != rounds {
				t.Fatalf("%s: shard %d: %d entries, want %d", when, s, len(got), rounds)
			}
			for _, e := range got {
				if want := cmdOf(s, e.Index); !bytes.Equal(e.Cmd, want) {
					t.Fatalf("%s: shard %d entry %d: %d bytes differ from the %d saved", when, s, e.Index, len(e.Cmd), len(want))
				}
			}
		}
	}
	check(w, "before reopen")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = mustOpen(t, fs, Options{SegmentBytes: 64 << 10})
	defer w.Close()
	check(w, "after reopen")
}

// TestSyncFailureFailStops: a failed fsync fails its callers and every
// later write (never retried); a reopen recovers what is durable.
func TestSyncFailureFailStops(t *testing.T) {
	fs := diskio.NewSim(6)
	w := mustOpen(t, fs, Options{})
	if err := w.SaveRaftState([]pb.Update{{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1}, EntriesToSave: ents(1, 2, 1)}}, 1); err != nil {
		t.Fatal(err)
	}
	fs.SetFaults(diskio.Faults{Rules: []diskio.FaultRule{{Op: diskio.OpSync, PathPattern: "data/wal/*.wal", Probability: 1}}})
	err := w.SaveRaftState([]pb.Update{{ShardID: 1, ReplicaID: 1, EntriesToSave: ents(3, 3, 1)}}, 1)
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("SaveRaftState with a failing fsync: %v, want ErrFailed", err)
	}
	fs.SetFaults(diskio.Faults{})
	if err := w.SaveBootstrapInfo(1, 1, pb.Bootstrap{}); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after a failed fsync: %v, want ErrFailed", err)
	}
	w.Close()
	w = mustOpen(t, fs, Options{})
	defer w.Close()
	if got := iterate(t, w, 1, 1, 10, 0); len(got) < 2 {
		t.Fatalf("after reopen: %s, want at least 1 and 2", indexes(got))
	}
}

// TestCrashKeepsAcknowledged: writers append (with truncations and
// compactions, over small segments so that rolls, relocations and
// deletions happen) until a crash at an arbitrary instant; the restarted
// WAL, in every crash mode, holds every acknowledged entry and state.
func TestCrashKeepsAcknowledged(t *testing.T) {
	for seed := int64(1); seed <= 12; seed++ {
		for _, mode := range []diskio.CrashMode{diskio.CrashSyncedOnly, diskio.CrashRandomPrefix, diskio.CrashTornPrefix} {
			crashOnce(t, seed, mode)
		}
	}
}

type acked struct{ last, term, compactedTo uint64 }

type ackedShard struct {
	mu sync.Mutex
	acked
}

func crashOnce(t *testing.T, seed int64, mode diskio.CrashMode) {
	fs := diskio.NewSim(seed)
	opts := Options{SegmentBytes: SegmentBytesMin}
	w := mustOpen(t, fs, opts)
	const shards = 3
	ackedBy := make([]*ackedShard, shards+1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for s := uint64(1); s <= shards; s++ {
		ackedBy[s] = &ackedShard{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := ackedBy[s]
			next, term := uint64(1), uint64(1)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				count := uint64(i % 3)
				if i%7 == 6 && next > 3 {
					// A truncation by a new term, rewriting past the old
					// end (so that a durable but unacknowledged write
					// never shortens what was acknowledged).
					next -= 2
					term++
					count += 2
				}
				es := ents(next, next+count, term)
				err := w.SaveRaftState([]pb.Update{{ShardID: s, ReplicaID: 1, State: pb.State{Term: term, Vote: 1}, EntriesToSave: es}}, s)
				if err != nil {
					return
				}
				next += uint64(len(es))
				a.mu.Lock()
				a.last, a.term = next-1, term
				a.mu.Unlock()
				if i%5 == 4 && next > 10 && s != 3 { // shard 3 never compacts
					if w.RemoveEntriesTo(s, 1, next-10) != nil {
						return
					}
					a.mu.Lock()
					a.compactedTo = next - 10
					a.mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Duration(seed) * time.Millisecond)
	snap := make([]acked, shards+1)
	for s := 1; s <= shards; s++ {
		ackedBy[s].mu.Lock()
		snap[s] = ackedBy[s].acked
		ackedBy[s].mu.Unlock()
	}
	img := fs.CrashImage(mode)
	close(stop)
	wg.Wait()
	w.Close()
	r, err := Open(img, "data", opts)
	if err != nil {
		t.Fatalf("seed %d %v: reopen after crash: %v", seed, mode, err)
	}
	defer r.Close()
	for s := uint64(1); s <= shards; s++ {
		a := snap[s]
		if a.last == 0 {
			continue
		}
		rs, err := r.ReadRaftState(s, 1, a.compactedTo)
		if err != nil || rs.State.Term < a.term {
			t.Fatalf("seed %d %v shard %d: state %+v %v, acknowledged term %d", seed, mode, s, rs, err, a.term)
		}
		// Every acknowledged index above the compaction point is there,
		// contiguous (a durable but unacknowledged compaction may have
		// moved that point up; later writes may have replaced a suffix
		// with a newer term).
		low := a.compactedTo + 1
		var got []pb.Entry
		for ; low <= a.last; low++ {
			if got = iterate(t, r, s, low, a.last+1, 0); len(got) > 0 {
				break
			}
		}
		if low <= a.last && uint64(len(got)) != a.last-low+1 {
			t.Fatalf("seed %d %v shard %d: %d entries in [%d, %d], want all: %s", seed, mode, s, len(got), low, a.last, indexes(got))
		}
		if low > a.last && s == 3 {
			t.Fatalf("seed %d %v: shard 3 (never compacted) lost its entries up to %d", seed, mode, a.last)
		}
	}
}

// TestTransientReadFlips: bits flipped on the way from the disk (the
// stored bytes intact) are re-read, never served and never taken for a
// torn tail at open: with a quarter of all reads of the WAL's files flipped,
// every entry reads back exact and a reopen keeps all of them. A record
// that fails every read is ErrCorrupt, reported to OnFailure.
func TestTransientReadFlips(t *testing.T) {
	fs := diskio.NewSim(7)
	const last = 200
	saveEach(t, fs, last)
	want := ents(1, last, 1)
	check := func(w *WAL, what string) {
		t.Helper()
		got := iterate(t, w, 1, 1, last+1, 0)
		if len(got) != last {
			t.Fatalf("%s: %d entries: %s", what, len(got), indexes(got))
		}
		for i := range got {
			if got[i].Index != want[i].Index || got[i].Term != want[i].Term || !bytes.Equal(got[i].Cmd, want[i].Cmd) {
				t.Fatalf("%s: entry %d read back as %+v", what, want[i].Index, got[i])
			}
		}
	}
	fs.SetFaults(diskio.Faults{ReadBitFlipProbability: 0.25, ReadBitFlipPattern: "data/wal/*.wal"})
	for round := range 5 {
		w := mustOpen(t, fs, Options{SegmentBytes: 4 << 10})
		check(w, fmt.Sprintf("reopen %d", round))
		w.Close()
	}
	if fs.Stats().FaultsInjected == 0 {
		t.Fatal("no flip injected: the test tests nothing")
	}

	// Every read flipped: corruption, reported, never served.
	fs.SetFaults(diskio.Faults{})
	var reported []error
	w := mustOpen(t, fs, Options{SegmentBytes: 4 << 10, OnFailure: func(err error) { reported = append(reported, err) }})
	defer w.Close()
	fs.SetFaults(diskio.Faults{ReadBitFlipProbability: 1, ReadBitFlipPattern: "data/wal/*.wal"})
	if got, _, err := w.IterateEntries(nil, 0, 1, 1, 1, last+1, 0); !errors.Is(err, ErrCorrupt) || len(got) != 0 || len(reported) != 1 {
		t.Fatalf("every read flipped: %d entries, err %v, reported %v", len(got), err, reported)
	}
}

// TestReadAfterFailStop: a record that fails every read (a sticky flip, as
// a bad sector gives) is reported to OnFailure; when that hook returns
// having cleared the fault (the simulator's fail-stop), the read is tried
// once more and, verifying, served exact, so that dragonboat (which panics
// on a LogDB error) winds the dead node down quietly. (A hook that clears
// nothing still gets ErrCorrupt: TestTransientReadFlips.)
func TestReadAfterFailStop(t *testing.T) {
	fs := diskio.NewSim(11)
	const last = 50
	saveEach(t, fs, last)
	var reported []error
	w := mustOpen(t, fs, Options{SegmentBytes: 4 << 10, OnFailure: func(err error) {
		reported = append(reported, err)
		fs.SetFaults(diskio.Faults{}) // the fail-stop: the disk's faults cleared
	}})
	defer w.Close()
	// Sticky flips (a new one on each read too): every re-read fails.
	fs.SetFaults(diskio.Faults{ReadBitFlipProbability: 1, ReadBitFlipSticky: true, ReadBitFlipPattern: "data/wal/*.wal"})
	got, _, err := w.IterateEntries(nil, 0, 1, 1, 1, 2, 0)
	if err != nil || len(reported) != 1 || !errors.Is(reported[0], ErrCorrupt) {
		t.Fatalf("sticky flip, fail-stop clearing it: err %v, reported %v", err, reported)
	}
	if want := ents(1, 1, 1); len(got) != 1 || got[0].Index != 1 || !bytes.Equal(got[0].Cmd, want[0].Cmd) {
		t.Fatalf("served %+v after the fail-stop, want entry 1 exact", got)
	}
}

// saveEach writes entries 1..last of shard 1, one SaveRaftState each, into
// a WAL of 4 KiB segments on fs, and closes it.
func saveEach(t *testing.T, fs diskio.FS, last uint64) {
	t.Helper()
	w := mustOpen(t, fs, Options{SegmentBytes: 4 << 10})
	for i := uint64(1); i <= last; i++ {
		if err := w.SaveRaftState([]pb.Update{{ShardID: 1, ReplicaID: 1, State: pb.State{Term: 1, Commit: i}, EntriesToSave: ents(i, i, 1)}}, 1); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
}
