package diskio

import "errors"

// FailStop wraps fsys so that a failed write-side operation stops the node
// instead of being handled: File.WriteAt, File.Append, File.Sync,
// File.Truncate and FS.SyncDir that return an error call stop with it, and
// so do FS.Remove and FS.RemoveAll failing for any reason but a missing
// name (a segment that retention could not delete: Kafka takes its log dir
// offline; the state that moved the log start is already durable, and a
// restart removes what is left below it).
//
// Why fail-stop: after a failed fsync the kernel may already have dropped
// the dirty pages while later reads still return them (the PostgreSQL
// "fsyncgate" lesson), and after a failed or short write the file's tail is
// unknown. No caller can know what is durable, so no caller may go on: the
// node stops and recovers on restart from what its disk really holds (the
// Raft log and the state machines replay from their durable indexes).
// dragonboat takes the same view (a storage error panics its worker); stop
// lets the operator see one clear log line first, in chronik serve it logs
// and exits the process.
//
// stop must end the process or fence the node: cut it off the network and
// freeze its disk so that nothing it does afterwards is seen (the
// simulator's crash, sim/cluster_test.go). If stop returns, the failed call
// is made once more and its result returned, so that the fenced node winds
// down without taking the process with it (dragonboat would panic on the
// error); its effects are invisible by then.
//
// Read-side errors (open, read, stat, list), the other namespace
// operations (create, rename) and a remove of a missing name are returned
// to the caller unchanged: callers handle them (a missing file is often
// expected, and a corrupt read is detected by checksums and reported as
// such).
func FailStop(fsys FS, stop func(error)) FS {
	return &failStopFS{FS: fsys, stop: stop}
}

type failStopFS struct {
	FS
	stop func(error)
}

// Unwrap returns the wrapped FS (NewVFS looks through wrappers for the
// operating system's file lock and a Sim's capacity).
func (f *failStopFS) Unwrap() FS { return f.FS }

// failed reports err (nil: nothing) and, if stop returned, retries.
func (f *failStopFS) failed(err error, retry func() error) error {
	if err == nil {
		return nil
	}
	f.stop(err)
	return retry()
}

func (f *failStopFS) SyncDir(dir string) error {
	return f.failed(f.FS.SyncDir(dir), func() error { return f.FS.SyncDir(dir) })
}

func (f *failStopFS) Remove(name string) error {
	return f.removed(f.FS.Remove(name), func() error { return f.FS.Remove(name) })
}

func (f *failStopFS) RemoveAll(name string) error {
	return f.removed(f.FS.RemoveAll(name), func() error { return f.FS.RemoveAll(name) })
}

// removed is failed for a remove: a missing name is the caller's to judge.
func (f *failStopFS) removed(err error, retry func() error) error {
	if errors.Is(err, ErrNotExist) {
		return err
	}
	return f.failed(err, retry)
}

func (f *failStopFS) wrap(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &failStopFile{File: file, fs: f}, nil
}

func (f *failStopFS) Create(name string) (File, error) { return f.wrap(f.FS.Create(name)) }
func (f *failStopFS) CreateExclusive(name string) (File, error) {
	return f.wrap(f.FS.CreateExclusive(name))
}
func (f *failStopFS) Open(name string) (File, error)   { return f.wrap(f.FS.Open(name)) }
func (f *failStopFS) OpenRW(name string) (File, error) { return f.wrap(f.FS.OpenRW(name)) }

type failStopFile struct {
	File
	fs *failStopFS
}

func (f *failStopFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	if err == nil {
		return n, nil
	}
	err = f.fs.failed(err, func() error {
		n, err = f.File.WriteAt(p, off)
		return err
	})
	return n, err
}

func (f *failStopFile) Append(p []byte) (int, error) {
	n, err := f.File.Append(p)
	if err == nil {
		return n, nil
	}
	// A retry appends only what the failed call did not (a Sim fault fails
	// before any effect; an OS short write keeps its prefix).
	done := n
	err = f.fs.failed(err, func() error {
		m, err := f.File.Append(p[done:])
		n = done + m
		return err
	})
	return n, err
}

func (f *failStopFile) Sync() error {
	return f.fs.failed(f.File.Sync(), f.File.Sync)
}

func (f *failStopFile) Truncate(size int64) error {
	return f.fs.failed(f.File.Truncate(size), func() error { return f.File.Truncate(size) })
}
