//go:build failpoint

package node

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pingcap/failpoint"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

const fpPkg = "github.com/chronik-go/chronik/core/node/"

func enableFailpoint(t *testing.T, name, term string) {
	t.Helper()
	if err := failpoint.Enable(fpPkg+name, term); err != nil {
		t.Fatalf("enable %s: %v", name, err)
	}
	t.Cleanup(func() { _ = failpoint.Disable(fpPkg + name) })
}

// seqsOf lists the base sequences of pid's batches in the partition.
func seqsOf(t *testing.T, n *Node, topic string, pid int64) ([]int32, []int64) {
	t.Helper()
	data, _ := fetchAll(t, n, topic, 0)
	var seqs []int32
	var offs []int64
	for _, b := range splitBatches(t, data) {
		if b.pid == pid {
			seqs, offs = append(seqs, b.seq), append(offs, b.baseOffset)
		}
	}
	return seqs, offs
}

// TestFailpointProduceResultLost: a produce whose answer is lost after it
// was applied reports REQUEST_TIMED_OUT; the idempotent retry answers the
// original offsets and the batch is in the log once. A delayed answer is
// still the right one.
func TestFailpointProduceResultLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 31, 1)
		defer c.closeAll()
		c.createTopic("t", 1, -1)
		if r := c.produce("t", 0, batch(1, 0, 2, 10, 0), 20*time.Second); r.BaseOffset != 0 {
			t.Fatalf("first produce: %+v", r)
		}
		n := c.leaderOf("t", 0)
		enableFailpoint(t, "beforeProduceResult", "1*return")
		if r := n.Produce(context.Background(), "t", 0, batch(1, 2, 2, 10, 0)); r.ErrorCode != kerr.RequestTimedOut.Code {
			t.Fatalf("produce with a lost answer: %+v, want REQUEST_TIMED_OUT", r)
		}
		r := c.produce("t", 0, batch(1, 2, 2, 10, 0), 20*time.Second)
		if !r.Duplicate || r.BaseOffset != 2 || r.LastOffset != 3 {
			t.Fatalf("retry: %+v, want the original offsets 2-3 as a duplicate", r)
		}

		enableFailpoint(t, "beforeProduceResult", "1*sleep(1500)")
		start := time.Now()
		r = n.Produce(context.Background(), "t", 0, batch(1, 4, 1, 10, 0))
		if r.ErrorCode != 0 || r.BaseOffset != 4 || time.Since(start) < 1500*time.Millisecond {
			t.Fatalf("delayed produce: %+v after %v", r, time.Since(start))
		}
		seqs, offs := seqsOf(t, n, "t", 1)
		if len(seqs) != 3 || seqs[0] != 0 || seqs[1] != 2 || seqs[2] != 4 || offs[1] != 2 {
			t.Fatalf("producer's batches in the log: seqs %v at %v", seqs, offs)
		}
	})
}

// TestFailpointReconcilerRetries: while starting a partition shard fails,
// the partition is not served; once it succeeds again the reconciler's
// retry starts it without any other trigger.
func TestFailpointReconcilerRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 32, 1)
		defer c.closeAll()
		enableFailpoint(t, "startPartitionError", "return")
		c.createTopic("t", 1, -1)
		n := c.node(1)
		pt, ok := partitionOf(n.view(), "t", 0)
		if !ok {
			t.Fatal("topic not in the view")
		}
		time.Sleep(3 * reconcileRetryEvery)
		if n.isHosted(pt.ShardID) {
			t.Fatal("shard hosted while starting it fails")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r := n.Produce(ctx, "t", 0, batch(-1, 0, 1, 10, 0))
		cancel()
		if r.ErrorCode == 0 {
			t.Fatalf("produce acknowledged on an unstarted shard: %+v", r)
		}
		if err := failpoint.Disable(fpPkg + "startPartitionError"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*reconcileRetryEvery+5*time.Second, "shard started by a retry", func() bool { return n.isHosted(pt.ShardID) })
		c.produce("t", 0, batch(-1, 0, 1, 10, 0), 20*time.Second)
	})
}

// TestFailpointCommitOffsets: a commit that fails before its proposal
// reports a retriable code and commits nothing; one whose proposal errs
// after it applied reports the same code; the retries succeed, and the
// committed offset never falls below the last acknowledged one.
func TestFailpointCommitOffsets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 33, 1)
		defer c.closeAll()
		c.createTopic("t", 2, -1)
		n := c.node(1)
		acked := int64(-1)
		commit := func(off int64) int16 {
			t.Helper()
			codes := n.CommitOffsets(context.Background(), meta.CommitOffsets{Group: "g",
				Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: off}, {Topic: "t", Partition: 1, Offset: off}}})
			if len(codes) != 2 || codes[0].Code != codes[1].Code {
				t.Fatalf("commit %d: codes %+v", off, codes)
			}
			if codes[0].Code == 0 {
				acked = off
			}
			return codes[0].Code
		}
		committed := func() int64 {
			t.Helper()
			got, err := n.FetchOffsets("g")
			if err != nil || len(got) != 2 || got[0].Offset != got[1].Offset {
				t.Fatalf("offsets %+v %v", got, err)
			}
			if got[0].Offset < acked {
				t.Fatalf("committed offset %d below the acknowledged %d", got[0].Offset, acked)
			}
			return got[0].Offset
		}
		if code := commit(5); code != 0 {
			t.Fatalf("commit 5: code %d", code)
		}
		for _, fp := range []struct {
			name string
			off  int64
			want int64 // committed after the failed attempt
		}{{"commitOffsetsBeforePropose", 10, 5}, {"commitOffsetsAfterPropose", 12, 12}} {
			enableFailpoint(t, fp.name, "1*return")
			if code := commit(fp.off); code != kerr.RequestTimedOut.Code {
				t.Fatalf("%s: code %d, want REQUEST_TIMED_OUT", fp.name, code)
			}
			if got := committed(); got != fp.want {
				t.Fatalf("%s: committed %d after the failed attempt, want %d", fp.name, got, fp.want)
			}
			if code := commit(fp.off); code != 0 {
				t.Fatalf("%s: retry code %d", fp.name, code)
			}
			if got := committed(); got != fp.off {
				t.Fatalf("%s: committed %d after the retry, want %d", fp.name, got, fp.off)
			}
		}
	})
}
