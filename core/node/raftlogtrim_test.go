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

// TestCleanStopSnapshots: a clean stop snapshots a partition replica that
// applied at least restartSnapshotMin since its last snapshot, so the
// next start applies nothing again from the Raft log; a small one is left
// alone. The byte trigger is off, so only the stop can have taken it.
func TestCleanStopSnapshots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterWith(t, 22, 1, func(cfg *Config) {
			cfg.SnapshotEntries = 1 << 20
			cfg.RaftLogBytes = -1
		})
		defer c.closeAll()
		c.createTopic("big", 1, 1)
		c.createTopic("small", 1, 1)
		for i := range (2 << 20) / (16 << 10) {
			c.produce("big", 0, batch(-1, 0, 1, 16<<10, int64(i)), 20*time.Second)
		}
		c.produce("small", 0, batch(-1, 0, 1, 100, 1), 20*time.Second)
		logOf := func(topic string) (snap, last uint64) {
			t.Helper()
			n := c.node(1)
			pt, ok := partitionOf(n.view(), topic, 0)
			if !ok {
				t.Fatalf("no partition %s/0", topic)
			}
			lr, err := n.nh.GetLogReader(pt.ShardID)
			if err != nil {
				t.Fatal(err)
			}
			_, last = lr.GetRange()
			return lr.Snapshot().Index, last
		}
		snapIndex := func(topic string) uint64 { s, _ := logOf(topic); return s }
		_, last := logOf("big")
		if got := snapIndex("big"); got >= last || last < 128 {
			t.Fatalf("snapshot at %d before the stop, last entry %d: the byte trigger is not off", got, last)
		}
		c.stop(1)
		c.start(1)
		c.produce("small", 0, batch(-1, 0, 1, 100, 2), 20*time.Second) // a leader again
		if got := snapIndex("big"); got < last {
			t.Fatalf("after a clean stop the snapshot is at %d, below the last applied entry %d", got, last)
		}
		if got := snapIndex("small"); got != 0 {
			t.Fatalf("a partition with less than %d bytes applied was snapshotted at %d", restartSnapshotMin, got)
		}
	})
}

// TestRaftLogTrimIdle: a partition that applied 1 MiB or more since its
// last snapshot, below its share of RaftLogBytes, and then nothing for a
// trim pass is snapshotted (its tail no longer pins the WAL's oldest
// segment); one below 1 MiB, or still writing, is not.
func TestRaftLogTrimIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClusterWith(t, 22, 1, func(cfg *Config) {
			cfg.SnapshotEntries = 1 << 20
			cfg.RaftLogBytes = 256 << 20
		})
		defer c.closeAll()
		c.createTopic("idle", 1, 1)
		c.createTopic("small", 1, 1)
		for i := range 80 { // 1.25 MiB
			c.produce("idle", 0, batch(-1, 0, 1, 16<<10, int64(i)), 20*time.Second)
		}
		for i := range 8 { // 128 KiB
			c.produce("small", 0, batch(-1, 0, 1, 16<<10, int64(i)), 20*time.Second)
		}
		idle, _ := c.replicaOf(1, "idle")
		small, _ := c.replicaOf(1, "small")
		if _, b := idle.SinceSync(); b < raftLogShareMin {
			t.Fatalf("idle partition: %d bytes since its snapshot before the passes", b)
		}
		time.Sleep(3 * raftLogTrimEvery) // virtual: trim passes run
		synctest.Wait()
		if _, b := idle.SinceSync(); b != 0 {
			t.Fatalf("idle partition: %d bytes since its snapshot after 3 idle passes, want a snapshot", b)
		}
		if _, b := small.SinceSync(); b < 128<<10 {
			t.Fatalf("small partition: %d bytes since its snapshot, want no snapshot below 1 MiB", b)
		}
	})
}
