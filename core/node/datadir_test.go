package node

import (
	"bytes"
	"context"
	"errors"
	"path"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/diskio"
)

// stoppedNodeWithData runs a one-node cluster, writes 15 records to
// partition t/0 (shard 1000), stops the node cleanly and returns the
// cluster and the partition's bytes.
func stoppedNodeWithData(t *testing.T, seed int64) (*cluster, []byte) {
	t.Helper()
	c := newCluster(t, seed, 1)
	c.createTopic("t", 1, 1)
	for i := range 5 {
		c.produce("t", 0, batch(-1, 0, 3, 100, int64(i)), 20*time.Second)
	}
	before, _ := fetchAll(t, c.node(1), "t", 0)
	c.stop(1)
	return c, before
}

// newestWALSegment returns the path of the newest WAL segment of disk.
func newestWALSegment(t *testing.T, disk diskio.FS) string {
	t.Helper()
	names, err := disk.List("data/wal")
	if err != nil {
		t.Fatal(err)
	}
	var newest string
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			newest = n
		}
	}
	if newest == "" {
		t.Fatalf("no WAL segment in data/wal: %v", names)
	}
	return path.Join("data/wal", newest)
}

// TestRestartAfterTornWALTail: a node whose newest WAL segment ends in a
// torn batch (a power cut mid-write) restarts and serves everything it
// had, and goes on accepting writes.
func TestRestartAfterTornWALTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, before := stoppedNodeWithData(t, 3)
		defer c.closeAll()
		f, err := c.disks[1].OpenRW(newestWALSegment(t, c.disks[1]))
		if err != nil {
			t.Fatal(err)
		}
		torn := append([]byte{0x43, 0x4b, 0x42, 0x31}, bytes.Repeat([]byte{'x'}, 200)...) // a batch magic, then garbage
		if _, err := f.Append(torn); err != nil {
			t.Fatal(err)
		}
		f.Sync()
		f.Close()
		c.start(1)
		c.produce("t", 0, batch(-1, 0, 1, 10, 9), 20*time.Second)
		after, _ := fetchAll(t, c.node(1), "t", 0)
		if !bytes.HasPrefix(after, before) || len(after) <= len(before) {
			t.Fatalf("after restart: %d bytes, before %d", len(after), len(before))
		}
	})
}

// TestStartRefusesTanLayout: a data dir whose Raft log is in tan's layout
// (an earlier Chronik) is refused with an error saying what to do, and
// nothing in it is touched.
func TestStartRefusesTanLayout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 5, 1)
		defer c.closeAll()
		c.stop(1)
		disk := c.disks[1]
		if err := disk.RemoveAll("data"); err != nil {
			t.Fatal(err)
		}
		// What tan left: NodeHostDir/<host>/<deployment>/tandb/...
		tanFile := "data/nodehost/host1/00000000000000000001/tandb/node-1-1/000001.log"
		if err := disk.MkdirAll(path.Dir(tanFile)); err != nil {
			t.Fatal(err)
		}
		f, err := disk.Create(tanFile)
		if err != nil {
			t.Fatal(err)
		}
		f.Append([]byte("tan bytes"))
		f.Sync()
		f.Close()
		_, err = Start(context.Background(), c.config(1))
		if !errors.Is(err, ErrOldRaftLogLayout) {
			t.Fatalf("start on a tan data dir: %v, want ErrOldRaftLogLayout", err)
		}
		for _, want := range []string{"tandb", "empty --data-dir", "previous release"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if st, err := disk.Stat(tanFile); err != nil || st.Size != int64(len("tan bytes")) {
			t.Fatalf("tan's file after the refusal: %+v %v", st, err)
		}
		if _, err := disk.Stat("data/wal"); !errors.Is(err, diskio.ErrNotExist) {
			t.Fatalf("a WAL was created beside the old log: %v", err)
		}
	})
}

// TestStartRefusesChangedRaftAddr: a node restarted on its data dir with
// another --raft-addr gets an error naming both addresses.
func TestStartRefusesChangedRaftAddr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 6, 1)
		defer c.closeAll()
		c.stop(1)
		cfg := c.config(1)
		old := cfg.RaftAddr
		cfg.RaftAddr = "elsewhere:7000"
		cfg.Peers = map[uint64]string{1: cfg.RaftAddr}
		_, err := Start(context.Background(), cfg)
		if !errors.Is(err, ErrRaftAddrChanged) {
			t.Fatalf("start with another raft address: %v, want ErrRaftAddrChanged", err)
		}
		if !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), "elsewhere:7000") {
			t.Fatalf("error %q does not name both addresses", err)
		}
		c.start(1) // the right address still starts
	})
}

// TestMetadataAfterRestartKnowsRecentTopics: the first Metadata a
// restarted node answers waits until its controller replica has caught up,
// so a topic created just before the restart is not answered
// UNKNOWN_TOPIC_OR_PARTITION from the view of an older snapshot (kgo would
// keep that answer for its metadata min age, 5 s).
func TestMetadataAfterRestartKnowsRecentTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 11, 1)
		defer c.closeAll()
		names := []string{"m0", "m1", "m2", "m3"}
		for _, name := range names {
			c.createTopic(name, 2, 1)
		}
		c.stop(1)
		c.start(1)
		v := c.node(1).MetadataWith(context.Background(), names, false)
		if len(v.Topics) != len(names) {
			t.Fatalf("Metadata answered %d topics, want %d", len(v.Topics), len(names))
		}
		for _, tm := range v.Topics {
			if tm.ErrorCode != 0 || len(tm.Partitions) != 2 {
				t.Errorf("topic %s after restart: error %d, %d partitions", tm.Name, tm.ErrorCode, len(tm.Partitions))
			}
		}
	})
}

// TestRestartSweepsDeletedPartitionDir: a partition directory of a deleted
// topic left on disk (a removal cut by a crash after the Raft data went)
// is removed at the next start, and nothing else is.
func TestRestartSweepsDeletedPartitionDir(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 13, 1)
		defer c.closeAll()
		c.createTopic("keep", 1, 1)
		c.createTopic("gone", 1, 1)
		n := c.node(1)
		var pt meta.Partition
		waitFor(t, 20*time.Second, "gone's shard started", func() bool {
			var ok bool
			pt, ok = partitionOf(n.view(), "gone", 0)
			return ok && n.isHosted(pt.ShardID)
		})
		if r := n.DeleteTopics(context.Background(), []string{"gone"}); r[0].ErrorCode != 0 {
			t.Fatalf("delete: %+v", r[0])
		}
		dir := n.popts.Dir + "/" + strconv.FormatUint(pt.ShardID, 10)
		c.mu.Lock()
		disk := c.disks[1]
		c.mu.Unlock()
		waitFor(t, 20*time.Second, "gone's shard removed", func() bool {
			_, err := disk.Stat(dir)
			return !n.isHosted(pt.ShardID) && err != nil
		})
		c.stop(1)
		if err := disk.MkdirAll(dir + "/log"); err != nil {
			t.Fatal(err)
		}
		f, err := disk.Create(dir + "/log/00000000000000000000.log")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		n = c.start(1)
		waitFor(t, 20*time.Second, "the deleted partition's directory swept", func() bool {
			_, err := disk.Stat(dir)
			return err != nil
		})
		var keep meta.Partition
		waitFor(t, 20*time.Second, "keep's shard started", func() bool {
			var ok bool
			keep, ok = partitionOf(n.view(), "keep", 0)
			return ok && n.isHosted(keep.ShardID)
		})
		if _, err := disk.Stat(n.popts.Dir + "/" + strconv.FormatUint(keep.ShardID, 10)); err != nil {
			t.Fatalf("keep's directory: %v", err)
		}
	})
}
