package raftlog

import (
	"errors"
	"testing"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/chronik-go/chronik/core/clock"
)

type fakeLogDB struct {
	raftio.ILogDB
	saves int
	err   error
}

func (f *fakeLogDB) SaveRaftState([]pb.Update, uint64) error { f.saves++; return f.err }

type fakeFactory struct{ db *fakeLogDB }

func (f fakeFactory) Create(config.NodeHostConfig, config.LogDBCallback, []string, []string) (raftio.ILogDB, error) {
	return f.db, nil
}
func (fakeFactory) Name() string { return "fake" }

func TestTimedLogDBPassesThroughAndCounts(t *testing.T) {
	inner := &fakeLogDB{err: errors.New("disk")}
	var st LogDBStats
	f := TimedLogDB(fakeFactory{inner}, clock.Real(), &st)
	if f.Name() != "fake" {
		t.Fatalf("name %q", f.Name())
	}
	db, err := f.Create(config.NodeHostConfig{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ups := []pb.Update{{EntriesToSave: []pb.Entry{{Cmd: make([]byte, 10)}, {Cmd: make([]byte, 5)}}}, {}}
	if err := db.SaveRaftState(ups, 1); err == nil || err.Error() != "disk" {
		t.Fatalf("error not passed through: %v", err)
	}
	if inner.saves != 1 || st.Save.Snapshot().Count != 1 || st.Entries.Load() != 2 || st.EntryBytes.Load() != 15 || st.StateUpdates.Load() != 2 {
		t.Fatalf("saves %d count %d entries %d bytes %d updates %d", inner.saves, st.Save.Snapshot().Count, st.Entries.Load(), st.EntryBytes.Load(), st.StateUpdates.Load())
	}
}
