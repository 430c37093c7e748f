package diskio

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"syscall"
)

// OS is the FS over the operating system's files. Durability is real: Sync
// is fsync, and every metadata change (Create, CreateExclusive, Rename,
// Remove, RemoveAll, MkdirAll) fsyncs the parent directory (each of them for
// Rename and for every level MkdirAll created) before returning.
type OS struct{}

// NewOS returns the operating-system FS.
func NewOS() *OS { return &OS{} }

var _ FS = (*OS)(nil)

// wrapOSError turns an error from package os into a *PathError for op and
// path. Errors that correspond to a sentinel wrap it (and still unwrap to the
// OS error); others wrap the OS error itself.
func wrapOSError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var pe *PathError
	if errors.As(err, &pe) {
		return err
	}
	cause := err
	var ope *fs.PathError
	if errors.As(err, &ope) {
		cause = ope.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		cause = le.Err
	}
	switch {
	case errors.Is(cause, fs.ErrNotExist):
		return newPathError(op, path, ErrNotExist, cause)
	case errors.Is(cause, fs.ErrExist):
		return newPathError(op, path, ErrExist, cause)
	case errors.Is(cause, syscall.ENOSPC):
		return newPathError(op, path, ErrNoSpace, cause)
	case errors.Is(cause, fs.ErrClosed):
		return newPathError(op, path, ErrClosed, cause)
	}
	return &PathError{Op: op, Path: path, Err: cause}
}

func syncDirOS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return wrapOSError("syncdir", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return wrapOSError("syncdir", dir, err)
}

func (o *OS) open(op, name string, flag int, readOnly bool) (File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, wrapOSError(op, name, err)
	}
	if flag&os.O_CREATE != 0 {
		if err := syncDirOS(filepath.Dir(name)); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return &osFile{f: f, name: name, readOnly: readOnly}, nil
}

func (o *OS) Create(name string) (File, error) {
	return o.open("create", name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, false)
}

func (o *OS) CreateExclusive(name string) (File, error) {
	return o.open("create", name, os.O_RDWR|os.O_CREATE|os.O_EXCL, false)
}

func (o *OS) Open(name string) (File, error) { return o.open("open", name, os.O_RDONLY, true) }

func (o *OS) OpenRW(name string) (File, error) { return o.open("open", name, os.O_RDWR, false) }

func (o *OS) Remove(name string) error {
	if err := os.Remove(name); err != nil {
		return wrapOSError("remove", name, err)
	}
	return syncDirOS(filepath.Dir(name))
}

func (o *OS) RemoveAll(name string) error {
	if err := os.RemoveAll(name); err != nil {
		return wrapOSError("removeall", name, err)
	}
	if _, err := os.Stat(filepath.Dir(name)); err != nil {
		return nil // the parent is gone too: nothing to make durable
	}
	return syncDirOS(filepath.Dir(name))
}

func (o *OS) Rename(oldname, newname string) error {
	if err := os.Rename(oldname, newname); err != nil {
		return wrapOSError("rename", oldname+" -> "+newname, err)
	}
	oldDir, newDir := filepath.Dir(oldname), filepath.Dir(newname)
	if err := syncDirOS(newDir); err != nil {
		return err
	}
	if oldDir != newDir {
		return syncDirOS(oldDir)
	}
	return nil
}

func (o *OS) MkdirAll(dir string) error {
	// Find the levels that do not exist yet, so that each can be made
	// durable in its parent. Bounded by the path's depth.
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return wrapOSError("mkdir", dir, err)
	}
	for i := len(created) - 1; i >= 0; i-- {
		if err := syncDirOS(filepath.Dir(created[i])); err != nil {
			return err
		}
	}
	return nil
}

func (o *OS) List(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, wrapOSError("list", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, wrapOSError("list", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

func (o *OS) Stat(name string) (FileInfo, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return FileInfo{}, wrapOSError("stat", name, err)
	}
	info := FileInfo{Name: fi.Name(), IsDir: fi.IsDir()}
	if !fi.IsDir() {
		info.Size = fi.Size()
	}
	return info, nil
}

func (o *OS) SyncDir(dir string) error { return syncDirOS(dir) }

// osFile is a File over an *os.File: ReadAt/WriteAt are pread/pwrite, Append
// writes at the size fstat reports (writes are serialised by the caller).
type osFile struct {
	f        *os.File
	name     string
	readOnly bool
	closed   atomic.Bool
}

func (f *osFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.f.ReadAt(p, off)
	if err == io.EOF {
		return n, io.EOF // io.ReaderAt convention: bare io.EOF
	}
	return n, wrapOSError("read", f.name, err)
}

func (f *osFile) writable(op string) error {
	if f.closed.Load() {
		return newPathError(op, f.name, ErrClosed, nil)
	}
	if f.readOnly {
		return newPathError(op, f.name, ErrReadOnly, nil)
	}
	return nil
}

func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.writable("write"); err != nil {
		return 0, err
	}
	n, err := f.f.WriteAt(p, off)
	return n, wrapOSError("write", f.name, err)
}

func (f *osFile) Append(p []byte) (int, error) {
	if err := f.writable("append"); err != nil {
		return 0, err
	}
	fi, err := f.f.Stat()
	if err != nil {
		return 0, wrapOSError("append", f.name, err)
	}
	n, err := f.f.WriteAt(p, fi.Size())
	return n, wrapOSError("append", f.name, err)
}

func (f *osFile) Size() (int64, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return 0, wrapOSError("size", f.name, err)
	}
	return fi.Size(), nil
}

func (f *osFile) Sync() error { return wrapOSError("sync", f.name, datasync(f.f)) }

func (f *osFile) StartWriteback(off, n int64) {
	if f.closed.Load() || f.readOnly || n <= 0 {
		return
	}
	startWriteback(f.f, off, n)
}

func (f *osFile) Truncate(size int64) error {
	if err := f.writable("truncate"); err != nil {
		return err
	}
	return wrapOSError("truncate", f.name, f.f.Truncate(size))
}

func (f *osFile) Close() error {
	if f.closed.Swap(true) {
		return newPathError("close", f.name, ErrClosed, nil)
	}
	return wrapOSError("close", f.name, f.f.Close())
}

func (f *osFile) Name() string { return f.name }
