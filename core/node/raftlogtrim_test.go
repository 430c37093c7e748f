package node

import (
	"bytes"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/diskio"
)

// walBytes is the size of every WAL segment on disk.
func walBytes(t *testing.T, disk diskio.FS) int64 {
	t.Helper()
	names, err := disk.List("data/wal")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, name := range names {
		if !strings.HasSuffix(name, ".wal") {
			continue
		}
		st, err := disk.Stat("data/wal/" + name)
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size
	}
	return total
}

// TestRaftLogTrimmedByBytes: with few, large entries (far below
// SnapshotEntries), the Raft log is still compacted once a replica has
// applied its share of RaftLogBytes since its last snapshot, and the WAL's
// segments shrink to about that much; the partition's data is whole
// after a restart. With the trigger off, the WAL keeps every entry.
func TestRaftLogTrimmedByBytes(t *testing.T) {
	const payload = 2 << 20 // 128 batches of 16 KiB, then 32 more
	for _, tc := range []struct {
		name    string
		trigger int64
		trimmed bool
	}{{"on", 256 << 10, true}, {"off", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newClusterWith(t, 21, 1, func(cfg *Config) {
					cfg.SnapshotEntries = 1 << 20
					cfg.RaftLogBytes = tc.trigger
					cfg.RaftLogSegmentBytes = 128 << 10
				})
				defer c.closeAll()
				c.createTopic("t", 1, 1)
				for i := range payload / (16 << 10) {
					c.produce("t", 0, batch(-1, 0, 1, 16<<10, int64(i)), 20*time.Second)
				}
				time.Sleep(3 * raftLogTrimEvery) // virtual: trim passes run
				// Segments are deleted oldest first once nothing live is
				// in them; the controller's few entries in the oldest are
				// moved forward at the next rolls, which need writes.
				for i := range 32 {
					c.produce("t", 0, batch(-1, 0, 1, 16<<10, int64(1000+i)), 20*time.Second)
				}
				time.Sleep(3 * raftLogTrimEvery)
				synctest.Wait()
				got := walBytes(t, c.disks[1])
				if tc.trimmed && got > payload/2 {
					t.Fatalf("WAL holds %d bytes after %d of payload with a %d-byte trigger", got, payload, tc.trigger)
				}
				if !tc.trimmed && got < payload {
					t.Fatalf("WAL holds %d bytes, below the %d of payload, with the trigger off", got, payload)
				}
				before, _ := fetchAll(t, c.node(1), "t", 0)
				c.stop(1)
				c.start(1)
				c.produce("t", 0, batch(-1, 0, 1, 100, 9), 20*time.Second) // waits for a leader
				after, _ := fetchAll(t, c.node(1), "t", 0)
				if !bytes.HasPrefix(after, before) || len(before) < payload {
					t.Fatalf("after restart: %d bytes, before %d", len(after), len(before))
				}
			})
		})
	}
}
