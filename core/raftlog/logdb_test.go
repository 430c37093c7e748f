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

type recLogDB struct {
	raftio.ILogDB
	got [][]pb.Update
}

func (r *recLogDB) SaveRaftState(u []pb.Update, _ uint64) error {
	r.got = append(r.got, append([]pb.Update(nil), u...))
	return nil
}

type recFactory struct{ db *recLogDB }

func (f recFactory) Create(config.NodeHostConfig, config.LogDBCallback, []string, []string) (raftio.ILogDB, error) {
	return f.db, nil
}
func (recFactory) Name() string { return "rec" }

func TestSkipEmptyUpdates(t *testing.T) {
	inner := &recLogDB{}
	db, err := SkipEmptyUpdates(recFactory{inner}).Create(config.NodeHostConfig{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	state := pb.Update{ShardID: 1, State: pb.State{Term: 2, Vote: 1, Commit: 5}}
	ents := pb.Update{ShardID: 2, EntriesToSave: []pb.Entry{{Index: 1}}}
	empty := pb.Update{ShardID: 3, CommittedEntries: []pb.Entry{{Index: 1}}, Messages: []pb.Message{{}}}
	calls := [][]pb.Update{{empty}, {state, ents}, {empty, state, empty, ents}}
	for _, c := range calls {
		before := append([]pb.Update(nil), c...)
		if err := db.SaveRaftState(c, 1); err != nil {
			t.Fatal(err)
		}
		for i := range c {
			if c[i].ShardID != before[i].ShardID {
				t.Fatalf("caller's slice changed: %+v", c)
			}
		}
	}
	if len(inner.got) != 2 || len(inner.got[0]) != 2 || len(inner.got[1]) != 2 ||
		inner.got[1][0].ShardID != 1 || inner.got[1][1].ShardID != 2 {
		t.Fatalf("passed on %+v", inner.got)
	}
}
