package diskio

import (
	"errors"
	"io"
)

// Sentinel errors. Implementations wrap them (with the operation and path, see
// *PathError) so that callers test with errors.Is.
var (
	// ErrNotExist: the named file or directory does not exist.
	ErrNotExist = errors.New("diskio: file does not exist")
	// ErrExist: the file already exists (CreateExclusive).
	ErrExist = errors.New("diskio: file already exists")
	// ErrNoSpace: the device is full (ENOSPC). Nothing of the failed write
	// is guaranteed to have reached the file.
	ErrNoSpace = errors.New("diskio: no space left on device")
	// ErrInjected: a fault injected by Sim.
	ErrInjected = errors.New("diskio: injected fault")
	// ErrClosed: the file was already closed.
	ErrClosed = errors.New("diskio: file already closed")
	// ErrReadOnly: a write to a file opened read-only.
	ErrReadOnly = errors.New("diskio: file opened read-only")
)

// PathError records the operation and path of a failed I/O call. Every error
// returned by an FS or File implementation in this package is a *PathError
// whose Err wraps one of the sentinels above or the operating system's error,
// except the bare io.EOF of ReadAt. For Rename, Path is "oldname -> newname".
type PathError struct {
	Op   string // "open", "create", "read", "write", "sync", "truncate", ...
	Path string
	Err  error
}

func (e *PathError) Error() string { return "diskio: " + e.Op + " " + e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

// FileInfo is what Stat reports.
type FileInfo struct {
	Name  string // base name
	Size  int64  // bytes; 0 for directories
	IsDir bool
}

// FS is a tree of files and directories. Paths use '/' separators and are
// interpreted by the implementation (OS: relative to the process's working
// directory or absolute; Sim: a clean namespace of its own).
//
// Durability contract (the crash model):
//   - File data is durable only once File.Sync has returned nil after the
//     write. A crash may keep any prefix of the writes made since the last
//     successful Sync, and the last kept write may be torn (partly garbage).
//   - Create, CreateExclusive, Rename, Remove and MkdirAll are durable when
//     they return nil: the implementation syncs the parent directory itself.
//     (A created file's existence is durable; its contents are not until
//     Sync.)
//   - A failed Sync means the data it covered may be lost, even though later
//     reads may still return it: the caller must not acknowledge it, and must
//     not retry Sync and carry on.
//
// Concurrency: FS methods are safe for concurrent use. A File is safe for
// concurrent ReadAt calls; writes, Sync, Truncate and Close on one File must
// not race with each other (the caller serialises them), but may run
// concurrently with ReadAt of already-written ranges.
type FS interface {
	// Create creates the named file for reading and writing, truncating it
	// if it exists. Its parent directory must exist.
	Create(name string) (File, error)
	// CreateExclusive creates the named file for reading and writing, and
	// fails with ErrExist if it already exists.
	CreateExclusive(name string) (File, error)
	// Open opens an existing file for reading only.
	Open(name string) (File, error)
	// OpenRW opens an existing file for reading and writing, without
	// truncating it.
	OpenRW(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes name and everything under it; a missing name is not
	// an error.
	RemoveAll(name string) error
	// Rename atomically replaces newname (if it exists) with oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and any missing parents.
	MkdirAll(dir string) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat describes the named file or directory.
	Stat(name string) (FileInfo, error)
	// SyncDir makes the directory's entries (creations, renames, removals
	// under it) durable.
	SyncDir(dir string) error
}

// File is an open file. Offsets are absolute; there is no shared cursor
// except for Append, which writes at the current end of the file.
type File interface {
	io.ReaderAt // may return fewer bytes and io.EOF at the end of the file
	io.WriterAt // writing past the end extends the file (the gap reads as zeros)
	// Append writes p at the current end of the file.
	Append(p []byte) (int, error)
	// Size is the current (not necessarily durable) length of the file.
	Size() (int64, error)
	// Sync makes every write and truncate made through any handle of this
	// file durable (OS: fdatasync on Linux, so the data and size, not the
	// timestamps). See the FS durability contract for what failure means.
	Sync() error
	// Truncate sets the file's length; a shrink drops the bytes after size,
	// a growth adds zeros. Durable only after Sync.
	Truncate(size int64) error
	// StartWriteback asks that the n bytes written at off start going to
	// the device now, without waiting: a hint that spreads the write-out
	// of a file synced rarely, so that its Sync does not flush a burst
	// (and stall the other files' Syncs behind it). It makes nothing
	// durable and reports nothing; a no-op where unsupported.
	StartWriteback(off, n int64)
	// Close releases the handle. It does not Sync.
	Close() error
	// Name is the path the file was opened with.
	Name() string
}
