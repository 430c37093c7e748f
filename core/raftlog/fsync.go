package raftlog

import (
	"github.com/lni/vfs"

	"github.com/chronik-go/chronik/core/clock"
)

// TimedFS wraps the FS dragonboat writes its NodeHost directory through
// (Expert.FS: the Raft log, plus its small metadata and snapshot files) so
// that every File.Sync is timed into st.Fsync: within SaveRaftState, the
// "fsync" stage; the rest of the call is the "write" stage. Every call is
// passed through unchanged.
func TimedFS(fs vfs.FS, clk clock.Clock, st *LogDBStats) vfs.FS {
	return &timedFS{FS: fs, clk: clk, st: st}
}

type timedFS struct {
	vfs.FS
	clk clock.Clock
	st  *LogDBStats
}

func (t *timedFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	return &timedFile{File: f, t: t}, nil
}

func (t *timedFS) Create(name string) (vfs.File, error) { return t.wrap(t.FS.Create(name)) }
func (t *timedFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	return t.wrap(t.FS.Open(name, opts...))
}
func (t *timedFS) OpenDir(name string) (vfs.File, error) { return t.wrap(t.FS.OpenDir(name)) }
func (t *timedFS) OpenForAppend(name string) (vfs.File, error) {
	return t.wrap(t.FS.OpenForAppend(name))
}
func (t *timedFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	return t.wrap(t.FS.ReuseForWrite(oldname, newname))
}

type timedFile struct {
	vfs.File
	t *timedFS
}

func (f *timedFile) Sync() error {
	start := f.t.clk.Now()
	err := f.File.Sync()
	f.t.st.Fsync.Observe(f.t.clk.Since(start))
	return err
}
