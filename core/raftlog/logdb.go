package raftlog

import (
	"sync/atomic"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/metric"
)

// LogDBStats is what TimedLogDB measures of a NodeHost's Raft log:
// SaveRaftState is the call in which the step worker writes and fsyncs the
// entries and state of a batch of shards (the "write" and "fsync" stages of
// a produce, together).
type LogDBStats struct {
	Save         metric.Histogram // duration of each SaveRaftState call
	Fsync        metric.Histogram // each fsync of the Raft log (core/wal Options.ObserveSync)
	Entries      atomic.Uint64    // entries saved
	EntryBytes   atomic.Uint64    // their command bytes
	StateUpdates atomic.Uint64    // shard updates saved (one per shard per call)
}

// TimedLogDB wraps any LogDB factory (tan, or a LogDB of our own) so that
// the ILogDB it creates reports into st, timed on clk. Observing changes
// nothing the LogDB does: the call is passed through unchanged and its
// error returned as is.
func TimedLogDB(f config.LogDBFactory, clk clock.Clock, st *LogDBStats) config.LogDBFactory {
	return timedFactory{f: f, clk: clk, st: st}
}

type timedFactory struct {
	f   config.LogDBFactory
	clk clock.Clock
	st  *LogDBStats
}

func (t timedFactory) Create(cfg config.NodeHostConfig, cb config.LogDBCallback, dirs, lldirs []string) (raftio.ILogDB, error) {
	db, err := t.f.Create(cfg, cb, dirs, lldirs)
	if err != nil {
		return nil, err
	}
	return &timedLogDB{ILogDB: db, clk: t.clk, st: t.st}, nil
}

func (t timedFactory) Name() string { return t.f.Name() }

type timedLogDB struct {
	raftio.ILogDB
	clk clock.Clock
	st  *LogDBStats
}

func (d *timedLogDB) SaveRaftState(updates []pb.Update, shardID uint64) error {
	start := d.clk.Now()
	err := d.ILogDB.SaveRaftState(updates, shardID)
	d.st.Save.Observe(d.clk.Since(start))
	var n, b uint64
	for i := range updates {
		for j := range updates[i].EntriesToSave {
			n++
			b += uint64(len(updates[i].EntriesToSave[j].Cmd))
		}
	}
	d.st.Entries.Add(n)
	d.st.EntryBytes.Add(b)
	d.st.StateUpdates.Add(uint64(len(updates)))
	return err
}
