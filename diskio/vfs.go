package diskio

import (
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lni/vfs"
)

// NewVFS adapts fsys to the lni/vfs interface dragonboat takes in
// config.NodeHostConfig.Expert.FS. Differences from vfs.Default:
//   - Link copies the content (and Syncs the copy) instead of hard-linking;
//     it fails with ErrExist if newname exists.
//   - Lock: over OS, the operating system's advisory file lock (as
//     vfs.Default), so a second process on the same directory is refused;
//     over any other FS, an in-process exclusive lock per path, held per
//     adapter: a second Lock of a held path fails with ErrLocked. It creates
//     the lock file if missing.
//   - MkdirAll ignores perm; OpenDir (and Open of a directory, where fsys
//     refuses it) returns a File whose Sync is fsys.SyncDir and whose
//     Read/Write fail.
//   - GetDiskUsage reports the Sim's capacity when it has one, otherwise a
//     fixed 1 TiB device that is half free.
//   - OpenOptions are applied but have no effect (no file descriptor).
//
// Errors are fsys's *PathErrors, which oserror.IsNotExist, oserror.IsExist
// and vfs.IsNoSpaceError recognise.
func NewVFS(fsys FS) vfs.FS { return &vfsFS{fs: fsys, locks: make(map[string]struct{})} }

type vfsFS struct {
	fs    FS
	mu    sync.Mutex
	locks map[string]struct{} // held Lock paths (cleaned)
}

var _ vfs.FS = NewVFS(nil)

func (v *vfsFS) Create(name string) (vfs.File, error) {
	f, err := v.fs.Create(name)
	if err != nil {
		return nil, err
	}
	return &vfsFile{f: f}, nil
}

func (v *vfsFS) Link(oldname, newname string) error {
	src, err := v.fs.Open(oldname)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := v.fs.CreateExclusive(newname)
	if err != nil {
		return err
	}
	if _, err := io.Copy(&vfsFile{f: dst}, &vfsFile{f: src}); err != nil {
		_ = dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		return err
	}
	return dst.Close()
}

// Open opens a file, or a directory (dragonboat's tan LogDB opens its
// directories with Open and Syncs them), read-only.
func (v *vfsFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := v.fs.Open(name)
	if err != nil {
		if fi, serr := v.fs.Stat(name); serr == nil && fi.IsDir {
			return &vfsDir{fs: v.fs, name: name}, nil
		}
		return nil, err
	}
	vf := &vfsFile{f: f}
	for _, o := range opts {
		o.Apply(vf)
	}
	return vf, nil
}

func (v *vfsFS) OpenDir(name string) (vfs.File, error) {
	fi, err := v.fs.Stat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir {
		return nil, newPathError("opendir", name, errInvalid, nil)
	}
	return &vfsDir{fs: v.fs, name: name}, nil
}

func (v *vfsFS) OpenForAppend(name string) (vfs.File, error) {
	f, err := v.fs.OpenRW(name)
	if err != nil {
		return nil, err
	}
	return &vfsFile{f: f, appendOnly: true}, nil
}

func (v *vfsFS) Remove(name string) error    { return v.fs.Remove(name) }
func (v *vfsFS) RemoveAll(name string) error { return v.fs.RemoveAll(name) }

func (v *vfsFS) Rename(oldname, newname string) error { return v.fs.Rename(oldname, newname) }

func (v *vfsFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	if err := v.fs.Rename(oldname, newname); err != nil {
		return nil, err
	}
	f, err := v.fs.OpenRW(newname)
	if err != nil {
		return nil, err
	}
	return &vfsFile{f: f}, nil
}

func (v *vfsFS) MkdirAll(dir string, _ os.FileMode) error { return v.fs.MkdirAll(dir) }

func (v *vfsFS) Lock(name string) (io.Closer, error) {
	key := filepath.Clean(name)
	v.mu.Lock()
	if _, held := v.locks[key]; held {
		v.mu.Unlock()
		return nil, newPathError("lock", name, ErrLocked, nil)
	}
	v.locks[key] = struct{}{}
	v.mu.Unlock()
	if _, ok := unwrapFS(v.fs).(*OS); ok {
		// On a real disk the lock must exclude other processes too (two
		// brokers on one data directory would corrupt it): take the OS's
		// advisory file lock as well. POSIX locks do not conflict within a
		// process, hence the in-process check above.
		osLock, err := vfs.Default.Lock(name)
		if err != nil {
			v.unlock(key)
			return nil, newPathError("lock", name, ErrLocked, err)
		}
		return &vfsLock{v: v, key: key, os: osLock}, nil
	}
	f, err := v.fs.OpenRW(name)
	if err != nil {
		f, err = v.fs.Create(name)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		v.unlock(key)
		return nil, err
	}
	return &vfsLock{v: v, key: key}, nil
}

func (v *vfsFS) unlock(key string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.locks, key)
}

type vfsLock struct {
	v    *vfsFS
	key  string
	os   io.Closer // the OS file lock, for an OS-backed adapter
	once sync.Once
}

func (l *vfsLock) Close() error {
	var err error
	l.once.Do(func() {
		if l.os != nil {
			err = l.os.Close()
		}
		l.v.unlock(l.key)
	})
	return err
}

func (v *vfsFS) List(dir string) ([]string, error) { return v.fs.List(dir) }

func (v *vfsFS) Stat(name string) (os.FileInfo, error) {
	fi, err := v.fs.Stat(name)
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}

func (v *vfsFS) PathBase(p string) string       { return filepath.Base(p) }
func (v *vfsFS) PathJoin(elem ...string) string { return filepath.Join(elem...) }
func (v *vfsFS) PathDir(p string) string        { return filepath.Dir(p) }

// Fixed disk usage reported for FSs without a capacity.
const (
	vfsDiskTotalBytes = 1 << 40
	vfsDiskAvailBytes = 1 << 39
)

func (v *vfsFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	if s, ok := unwrapFS(v.fs).(*Sim); ok {
		s.mu.Lock()
		capacity, used := s.faults.CapacityBytes, s.usedBytes
		s.mu.Unlock()
		if capacity > 0 {
			avail := max(capacity-used, 0)
			return vfs.DiskUsage{AvailBytes: uint64(avail), TotalBytes: uint64(capacity), UsedBytes: uint64(capacity - avail)}, nil
		}
	}
	return vfs.DiskUsage{AvailBytes: vfsDiskAvailBytes, TotalBytes: vfsDiskTotalBytes, UsedBytes: vfsDiskTotalBytes - vfsDiskAvailBytes}, nil
}

// vfsFile adds the cursor vfs.File needs. Like *os.File, Read/Write/Seek must
// not be called concurrently on one vfsFile.
type vfsFile struct {
	f          File
	offset     int64 // cursor for Read, Write and Seek
	appendOnly bool  // OpenForAppend: Write appends
}

func (v *vfsFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := v.f.ReadAt(p, v.offset)
	v.offset += int64(n)
	if n > 0 && err == io.EOF {
		err = nil
	}
	return n, err
}

func (v *vfsFile) ReadAt(p []byte, off int64) (int, error) { return v.f.ReadAt(p, off) }

func (v *vfsFile) Write(p []byte) (int, error) {
	if v.appendOnly {
		return v.f.Append(p)
	}
	n, err := v.f.WriteAt(p, v.offset)
	v.offset += int64(n)
	return n, err
}

func (v *vfsFile) WriteAt(p []byte, off int64) (int, error) { return v.f.WriteAt(p, off) }

func (v *vfsFile) Seek(offset int64, whence int) (int64, error) {
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = v.offset
	case io.SeekEnd:
		size, err := v.f.Size()
		if err != nil {
			return 0, err
		}
		base = size
	default:
		return 0, newPathError("seek", v.f.Name(), errInvalid, nil)
	}
	if base+offset < 0 {
		return 0, newPathError("seek", v.f.Name(), errInvalid, nil)
	}
	v.offset = base + offset
	return v.offset, nil
}

func (v *vfsFile) Stat() (os.FileInfo, error) {
	size, err := v.f.Size()
	if err != nil {
		return nil, err
	}
	return fileInfo{FileInfo{Name: filepath.Base(v.f.Name()), Size: size}}, nil
}

func (v *vfsFile) Sync() error  { return v.f.Sync() }
func (v *vfsFile) Close() error { return v.f.Close() }

// vfsDir is what OpenDir returns: only Sync, Stat and Close do anything.
type vfsDir struct {
	fs   FS
	name string
}

func (d *vfsDir) notFile(op string) error            { return newPathError(op, d.name, errInvalid, nil) }
func (d *vfsDir) Read([]byte) (int, error)           { return 0, d.notFile("read") }
func (d *vfsDir) ReadAt([]byte, int64) (int, error)  { return 0, d.notFile("read") }
func (d *vfsDir) Write([]byte) (int, error)          { return 0, d.notFile("write") }
func (d *vfsDir) WriteAt([]byte, int64) (int, error) { return 0, d.notFile("write") }
func (d *vfsDir) Seek(int64, int) (int64, error)     { return 0, d.notFile("seek") }
func (d *vfsDir) Sync() error                        { return d.fs.SyncDir(d.name) }
func (d *vfsDir) Close() error                       { return nil }
func (d *vfsDir) Stat() (os.FileInfo, error) {
	fi, err := d.fs.Stat(d.name)
	if err != nil {
		return nil, err
	}
	return fileInfo{fi}, nil
}

// fileInfo is FileInfo as an os.FileInfo (mode 0644 or dir 0755, no mtime).
type fileInfo struct{ info FileInfo }

func (fi fileInfo) Name() string       { return fi.info.Name }
func (fi fileInfo) Size() int64        { return fi.info.Size }
func (fi fileInfo) IsDir() bool        { return fi.info.IsDir }
func (fi fileInfo) ModTime() time.Time { return time.Time{} }
func (fi fileInfo) Sys() any           { return nil }
func (fi fileInfo) Mode() os.FileMode {
	if fi.info.IsDir {
		return os.ModeDir | 0o755
	}
	return 0o644
}

// unwrapFS returns the FS under any wrappers (FailStop) that have an
// Unwrap method.
func unwrapFS(fsys FS) FS {
	for {
		w, ok := fsys.(interface{ Unwrap() FS })
		if !ok {
			return fsys
		}
		fsys = w.Unwrap()
	}
}
