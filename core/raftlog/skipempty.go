package raftlog

import (
	"sync"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// SkipEmptyUpdates wraps a LogDB factory so that SaveRaftState never
// passes on an update with nothing to persist: no State, no EntriesToSave,
// no Snapshot (the only fields an update persists, pb.Update.MarshalTo).
// dragonboat hands the LogDB every update of a step, including those that
// carry only committed entries or messages; tan compares such an update's
// empty State with the shard's saved one, finds the term changed (0 is not
// the current term), writes a record holding nothing and fsyncs, then
// fsyncs again on the next real update (the term changed back). On a
// single node that was one needless fsync per produce, on the step worker
// that the next proposal waits for (DESIGN.md, "Where a produce's time
// goes"). Skipping them writes nothing less that could be read back: such
// a record updates no index (entries, snapshot, state) in tan.
func SkipEmptyUpdates(f config.LogDBFactory) config.LogDBFactory { return skipFactory{f: f} }

type skipFactory struct{ f config.LogDBFactory }

func (s skipFactory) Create(cfg config.NodeHostConfig, cb config.LogDBCallback, dirs, lldirs []string) (raftio.ILogDB, error) {
	db, err := s.f.Create(cfg, cb, dirs, lldirs)
	if err != nil {
		return nil, err
	}
	return &skipLogDB{ILogDB: db}, nil
}

func (s skipFactory) Name() string { return s.f.Name() }

type skipLogDB struct {
	raftio.ILogDB
	bufs sync.Pool // *[]pb.Update: the kept updates of a call with some skipped
}

func persistsNothing(u *pb.Update) bool {
	return pb.IsEmptyState(u.State) && len(u.EntriesToSave) == 0 && pb.IsEmptySnapshot(u.Snapshot)
}

func (d *skipLogDB) SaveRaftState(updates []pb.Update, shardID uint64) error {
	empty := 0
	for i := range updates {
		if persistsNothing(&updates[i]) {
			empty++
		}
	}
	switch empty {
	case 0:
		return d.ILogDB.SaveRaftState(updates, shardID)
	case len(updates):
		return nil
	}
	// The caller reuses updates after the call: keep its slice intact.
	bp, _ := d.bufs.Get().(*[]pb.Update)
	if bp == nil {
		bp = new([]pb.Update)
	}
	kept := (*bp)[:0]
	for i := range updates {
		if !persistsNothing(&updates[i]) {
			kept = append(kept, updates[i])
		}
	}
	err := d.ILogDB.SaveRaftState(kept, shardID)
	clear(kept) // drop references to entries
	*bp = kept[:0]
	d.bufs.Put(bp)
	return err
}
