package diskio

import (
	"io"
	"math/rand/v2"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Sim is an in-memory FS for the simulator. See the package doc for its data
// structure and invariants. All state is guarded by mu; no method sleeps or
// blocks while holding it (latency is slept before taking it), so Sim is
// usable inside testing/synctest bubbles.
type Sim struct {
	seed int64

	mu sync.Mutex
	// files maps a clean path to the inode linked there; dirs is the set of
	// directories. Invariant: the parent of every key of files and dirs is
	// in dirs, and rootDir is always in dirs.
	files map[string]*inode
	dirs  map[string]struct{}
	// usedBytes is the sum of len(data) over the linked inodes (those in
	// files). Invariant: usedBytes <= faults.CapacityBytes when that is > 0,
	// except after SetFaults lowered the capacity.
	usedBytes int64
	faultRng  *rand.Rand // fault decisions and bit flips
	crashRng  *rand.Rand // crash-image choices and derived seeds
	faults    Faults
	stats     SimStats
	frozen    *simImage // the crash instant; nil until Freeze
	// badInodes are the inodes with sticky bit flips (Faults.ReadBitFlipSticky),
	// in the order they got their first, so SetFaults can forget them.
	badInodes []*inode
}

// rootDir is the Sim's root; "/a" and "a" name the same file.
const rootDir = "."

// inode is a file's content. Handles point at it, so they keep working after
// Rename and Remove.
type inode struct {
	data []byte // current content
	// journal holds the writes and truncates since the last successful Sync,
	// oldest first, with what each overwrote. Invariant: undoing the journal
	// from data in reverse order yields the durable content.
	journal []journalOp
	linked  bool // reachable from Sim.files (counts in usedBytes)
	// badBits are sticky read flips (bit offsets in the file), applied to
	// every read covering them; a write over one removes it.
	badBits []int64
}

// journalOp is one unsynced write or truncate with its undo information.
type journalOp struct {
	truncate bool
	off      int64  // write: offset; truncate: the new size
	length   int64  // write: bytes written; truncate: 0
	sizeOld  int64  // file size before the op
	undo     []byte // bytes the op overwrote or cut below sizeOld; immutable
}

// SimStats counts what a Sim has done.
type SimStats struct {
	Syncs          int64 // successful File.Sync and SyncDir calls
	BytesWritten   int64 // bytes accepted by WriteAt and Append
	FaultsInjected int64 // errors from rules, ENOSPC, and bit flips
}

// NewSim returns an empty Sim whose faults and crash choices all derive from
// seed.
func NewSim(seed int64) *Sim {
	s := &Sim{
		seed:  seed,
		files: make(map[string]*inode),
		dirs:  map[string]struct{}{rootDir: {}},
	}
	u := uint64(seed)
	s.faultRng = rand.New(rand.NewPCG(u, 0x6661756c74)) // "fault"
	s.crashRng = rand.New(rand.NewPCG(u, 0x6372617368)) // "crash"
	return s
}

// Seed is the seed the Sim was made with (print it when a test fails).
func (s *Sim) Seed() int64 { return s.seed }

func cleanPath(name string) string {
	p := path.Clean("/" + name)
	if p == "/" {
		return rootDir
	}
	return p[1:]
}

func parentOf(p string) string { return path.Dir(p) }

// Stats returns the counters so far.
func (s *Sim) Stats() SimStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// UsedBytes returns the total size of the linked files (what
// Faults.CapacityBytes limits).
func (s *Sim) UsedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usedBytes
}

// ReadFile returns the named file's current content (what reads see).
func (s *Sim) ReadFile(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ino, ok := s.files[cleanPath(name)]
	if !ok {
		return nil, newPathError("readfile", name, ErrNotExist, nil)
	}
	return append([]byte(nil), ino.data...), nil
}

// DurableFile returns the named file's synced content: what a crash now would
// keep at least.
func (s *Sim) DurableFile(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ino, ok := s.files[cleanPath(name)]
	if !ok {
		return nil, newPathError("durablefile", name, ErrNotExist, nil)
	}
	return stateAfter(ino.data, ino.journal, 0), nil
}

// resize sets ino's length to size, zeroing any bytes it grows into, and keeps
// usedBytes. The caller holds mu and has checked capacity.
func (s *Sim) resize(ino *inode, size int64) {
	old := int64(len(ino.data))
	ino.data = resizeBytes(ino.data, size)
	if ino.linked {
		s.usedBytes += size - old
	}
}

func resizeBytes(b []byte, size int64) []byte {
	old := int64(len(b))
	switch {
	case size <= old:
		return b[:size]
	case size <= int64(cap(b)):
		b = b[:size]
		clear(b[old:])
		return b
	default:
		return append(b, make([]byte, size-old)...)
	}
}

// checkSpace returns ErrNoSpace if growing ino to size would exceed capacity.
func (s *Sim) checkSpace(op, name string, ino *inode, size int64) error {
	growth := size - int64(len(ino.data))
	if s.faults.CapacityBytes <= 0 || growth <= 0 || !ino.linked {
		return nil
	}
	if s.usedBytes+growth > s.faults.CapacityBytes {
		s.stats.FaultsInjected++
		return newPathError(op, name, ErrNoSpace, nil)
	}
	return nil
}

// unlink removes p's inode from the tree. Caller holds mu.
func (s *Sim) unlink(p string) {
	if ino, ok := s.files[p]; ok {
		s.usedBytes -= int64(len(ino.data))
		ino.linked = false
		delete(s.files, p)
	}
}

func (s *Sim) create(op, name string, exclusive bool) (File, error) {
	if err := s.before(OpCreate, op, name); err != nil {
		return nil, err
	}
	p := cleanPath(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dirs[parentOf(p)]; !ok {
		return nil, newPathError(op, name, ErrNotExist, nil)
	}
	if _, ok := s.dirs[p]; ok {
		return nil, newPathError(op, name, ErrExist, nil)
	}
	ino, ok := s.files[p]
	switch {
	case ok && exclusive:
		return nil, newPathError(op, name, ErrExist, nil)
	case ok:
		// Truncation by Create is a metadata op here: durable at once, so
		// the journal (which could resurrect old bytes) is dropped.
		s.resize(ino, 0)
		ino.journal = nil
	default:
		ino = &inode{linked: true}
		s.files[p] = ino
	}
	return &simFile{s: s, ino: ino, name: name}, nil
}

func (s *Sim) Create(name string) (File, error) { return s.create("create", name, false) }

func (s *Sim) CreateExclusive(name string) (File, error) { return s.create("create", name, true) }

func (s *Sim) open(name string, readOnly bool) (File, error) {
	if err := s.before(OpOpen, "open", name); err != nil {
		return nil, err
	}
	p := cleanPath(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	ino, ok := s.files[p]
	if !ok {
		if _, isDir := s.dirs[p]; isDir {
			return nil, newPathError("open", name, errInvalid, nil)
		}
		return nil, newPathError("open", name, ErrNotExist, nil)
	}
	return &simFile{s: s, ino: ino, name: name, readOnly: readOnly}, nil
}

func (s *Sim) Open(name string) (File, error) { return s.open(name, true) }

func (s *Sim) OpenRW(name string) (File, error) { return s.open(name, false) }

// hasChildren reports whether dir has entries. O(entries); caller holds mu.
func (s *Sim) hasChildren(dir string) bool {
	for p := range s.files {
		if parentOf(p) == dir {
			return true
		}
	}
	for p := range s.dirs {
		if p != rootDir && parentOf(p) == dir {
			return true
		}
	}
	return false
}

func (s *Sim) Remove(name string) error {
	if err := s.before(OpRemove, "remove", name); err != nil {
		return err
	}
	p := cleanPath(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[p]; ok {
		s.unlink(p)
		return nil
	}
	if _, ok := s.dirs[p]; !ok || p == rootDir {
		return newPathError("remove", name, ErrNotExist, nil)
	}
	if s.hasChildren(p) {
		return newPathError("remove", name, ErrExist, nil) // ENOTEMPTY
	}
	delete(s.dirs, p)
	return nil
}

func isUnder(p, dir string) bool {
	return p == dir || dir == rootDir || strings.HasPrefix(p, dir+"/")
}

func (s *Sim) RemoveAll(name string) error {
	if err := s.before(OpRemove, "removeall", name); err != nil {
		return err
	}
	p := cleanPath(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	for f := range s.files {
		if isUnder(f, p) {
			s.unlink(f)
		}
	}
	for d := range s.dirs {
		if d != rootDir && isUnder(d, p) {
			delete(s.dirs, d)
		}
	}
	return nil
}

func (s *Sim) Rename(oldname, newname string) error {
	opPath := oldname + " -> " + newname
	if err := s.before(OpRename, "rename", opPath); err != nil {
		return err
	}
	po, pn := cleanPath(oldname), cleanPath(newname)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dirs[parentOf(pn)]; !ok {
		return newPathError("rename", opPath, ErrNotExist, nil)
	}
	if ino, ok := s.files[po]; ok {
		if _, isDir := s.dirs[pn]; isDir {
			return newPathError("rename", opPath, ErrExist, nil)
		}
		if po == pn {
			return nil
		}
		s.unlink(pn)
		delete(s.files, po)
		s.files[pn] = ino
		return nil
	}
	if _, ok := s.dirs[po]; !ok || po == rootDir {
		return newPathError("rename", opPath, ErrNotExist, nil)
	}
	return s.renameDir(opPath, po, pn)
}

// renameDir moves directory po and everything under it to pn, which must not
// exist or be an empty directory. Caller holds mu.
func (s *Sim) renameDir(opPath, po, pn string) error {
	if po == pn {
		return nil
	}
	if _, isFile := s.files[pn]; isFile || isUnder(pn, po) {
		return newPathError("rename", opPath, errInvalid, nil)
	}
	if _, ok := s.dirs[pn]; ok && s.hasChildren(pn) {
		return newPathError("rename", opPath, ErrExist, nil)
	}
	moved := make(map[string]*inode)
	for f, ino := range s.files {
		if isUnder(f, po) {
			moved[pn+f[len(po):]] = ino
			delete(s.files, f)
		}
	}
	for f, ino := range moved {
		s.files[f] = ino
	}
	var dirs []string
	for d := range s.dirs {
		if isUnder(d, po) {
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		delete(s.dirs, d)
	}
	for _, d := range dirs {
		s.dirs[pn+d[len(po):]] = struct{}{}
	}
	return nil
}

func (s *Sim) MkdirAll(dir string) error {
	if err := s.before(OpCreate, "mkdir", dir); err != nil {
		return err
	}
	p := cleanPath(dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	// Check every level first so that a failure creates nothing.
	var missing []string
	for d := p; d != rootDir; d = parentOf(d) {
		if _, isFile := s.files[d]; isFile {
			return newPathError("mkdir", dir, ErrExist, nil)
		}
		if _, ok := s.dirs[d]; ok {
			break
		}
		missing = append(missing, d)
	}
	for _, d := range missing {
		s.dirs[d] = struct{}{}
	}
	return nil
}

func (s *Sim) List(dir string) ([]string, error) {
	p := cleanPath(dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dirs[p]; !ok {
		return nil, newPathError("list", dir, ErrNotExist, nil)
	}
	var names []string
	for f := range s.files {
		if parentOf(f) == p {
			names = append(names, path.Base(f))
		}
	}
	for d := range s.dirs {
		if d != rootDir && parentOf(d) == p {
			names = append(names, path.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (s *Sim) Stat(name string) (FileInfo, error) {
	p := cleanPath(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ino, ok := s.files[p]; ok {
		return FileInfo{Name: path.Base(p), Size: int64(len(ino.data))}, nil
	}
	if _, ok := s.dirs[p]; ok {
		return FileInfo{Name: path.Base(p), IsDir: true}, nil
	}
	return FileInfo{}, newPathError("stat", name, ErrNotExist, nil)
}

// SyncDir is a no-op that can fail: Sim's metadata ops are durable at once.
func (s *Sim) SyncDir(dir string) error {
	if err := s.before(OpSync, "syncdir", dir); err != nil {
		return err
	}
	p := cleanPath(dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dirs[p]; !ok {
		return newPathError("syncdir", dir, ErrNotExist, nil)
	}
	s.stats.Syncs++
	return nil
}

// simFile is a handle on an inode. Its fields other than closed are
// immutable; closed is guarded by s.mu.
type simFile struct {
	s        *Sim
	ino      *inode
	name     string
	readOnly bool
	closed   bool
}

var _ FS = (*Sim)(nil)

// check returns the error for an op on a closed or (for writes) read-only
// handle. Caller holds s.mu.
func (f *simFile) check(op string, write bool) error {
	if f.closed {
		return newPathError(op, f.name, ErrClosed, nil)
	}
	if write && f.readOnly {
		return newPathError(op, f.name, ErrReadOnly, nil)
	}
	return nil
}

func (f *simFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.s.before(OpRead, "read", f.name); err != nil {
		return 0, err
	}
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f.check("read", false); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, newPathError("read", f.name, errInvalid, nil)
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	for _, b := range f.ino.badBits {
		if i := b/8 - off; i >= 0 && i < int64(n) {
			p[i] ^= 1 << (b % 8)
		}
	}
	if n > 0 && s.faults.ReadBitFlipProbability > 0 && flips(s.faults.ReadBitFlipPattern, f.name) && s.faultRng.Float64() < s.faults.ReadBitFlipProbability {
		bit := s.faultRng.IntN(n * 8)
		p[bit/8] ^= 1 << (bit % 8)
		s.stats.FaultsInjected++
		if s.faults.ReadBitFlipSticky {
			if f.ino.badBits == nil {
				s.badInodes = append(s.badInodes, f.ino)
			}
			f.ino.badBits = append(f.ino.badBits, off*8+int64(bit))
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *simFile) WriteAt(p []byte, off int64) (int, error) {
	return f.write("write", p, off, false)
}

func (f *simFile) Append(p []byte) (int, error) { return f.write("append", p, 0, true) }

func (f *simFile) write(op string, p []byte, off int64, atEnd bool) (int, error) {
	if err := f.s.before(OpWrite, op, f.name); err != nil {
		return 0, err
	}
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f.check(op, true); err != nil {
		return 0, err
	}
	ino := f.ino
	sizeOld := int64(len(ino.data))
	if atEnd {
		off = sizeOld
	}
	if off < 0 {
		return 0, newPathError(op, f.name, errInvalid, nil)
	}
	end := off + int64(len(p))
	if err := s.checkSpace(op, f.name, ino, end); err != nil {
		return 0, err
	}
	jop := journalOp{off: off, length: int64(len(p)), sizeOld: sizeOld}
	if off < sizeOld {
		jop.undo = append([]byte(nil), ino.data[off:min(end, sizeOld)]...)
	}
	ino.journal = append(ino.journal, jop)
	if end > sizeOld {
		s.resize(ino, end)
	}
	copy(ino.data[off:], p)
	if len(ino.badBits) > 0 {
		ino.badBits = slices.DeleteFunc(ino.badBits, func(b int64) bool { return b/8 >= off && b/8 < end })
	}
	s.stats.BytesWritten += int64(len(p))
	return len(p), nil
}

func (f *simFile) Size() (int64, error) {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f.check("size", false); err != nil {
		return 0, err
	}
	return int64(len(f.ino.data)), nil
}

// Sync drops the journal: O(1) in the file's size.
func (f *simFile) Sync() error {
	if err := f.s.before(OpSync, "sync", f.name); err != nil {
		return err // the journal stays: nothing became durable
	}
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f.check("sync", false); err != nil {
		return err
	}
	if s.faults.LyingSync && lies(s.faults.LyingSyncPattern, f.name) {
		return nil // the broken variant: report success, keep the journal
	}
	f.ino.journal = nil
	s.stats.Syncs++
	return nil
}

// StartWriteback is a no-op: in the crash model a write is durable only
// after Sync, however early it reached the device.
func (f *simFile) StartWriteback(int64, int64) {}

func (f *simFile) Truncate(size int64) error {
	if err := f.s.before(OpTruncate, "truncate", f.name); err != nil {
		return err
	}
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f.check("truncate", true); err != nil {
		return err
	}
	if size < 0 {
		return newPathError("truncate", f.name, errInvalid, nil)
	}
	ino := f.ino
	if err := s.checkSpace("truncate", f.name, ino, size); err != nil {
		return err
	}
	sizeOld := int64(len(ino.data))
	jop := journalOp{truncate: true, off: size, sizeOld: sizeOld}
	if size < sizeOld {
		jop.undo = append([]byte(nil), ino.data[size:]...)
	}
	ino.journal = append(ino.journal, jop)
	s.resize(ino, size)
	return nil
}

func (f *simFile) Close() error {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := f.check("close", false); err != nil {
		return err
	}
	f.closed = true
	return nil
}

func (f *simFile) Name() string { return f.name }

// sleep is time.Sleep, called only without mu held (synctest-friendly).
func sleep(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

// lies reports whether a LyingSync with pattern covers the file name.
// flips reports whether ReadBitFlipPattern selects name.
func flips(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	name = strings.TrimPrefix(name, "/")
	for _, p := range strings.Split(pattern, "|") {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func lies(pattern, name string) bool {
	if pattern == "" {
		return true
	}
	ok, _ := path.Match(pattern, path.Base(name))
	return ok
}
