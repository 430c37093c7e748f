//go:build failpoint

package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pingcap/failpoint"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// Fail-stop (see DESIGN.md): dragonboat panics when a state machine's
// Update fails, which ends the process; inside one test process that cannot
// be contained (a worker that exits instead leaves NodeHost.Close waiting
// forever), so the node that fails runs in a child process of the test.

const (
	envFailStopChild = "CHRONIK_FAILSTOP_CHILD" // failpoint to enable in the child
	envFailStopDir   = "CHRONIK_FAILSTOP_DIR"
	envFailStopRaft  = "CHRONIK_FAILSTOP_RAFT"
	failStopPid      = 1
	failStopAcked    = 5 // idempotent batches acknowledged before the fault
	failStopOffset   = 7 // group offset acknowledged before the fault
)

func osNodeConfig(dir, raftAddr string, log *slog.Logger) Config {
	return Config{
		NodeID: 1, RaftAddr: raftAddr, Host: "127.0.0.1", Port: 9092, Peers: map[uint64]string{1: raftAddr},
		DataDir: dir, FS: diskio.NewOS(), Net: netio.NewOS(), Clock: clock.Real(), Logger: log,
		RTTMillisecond: 5, ElectionRTT: 10, HeartbeatRTT: 1,
	}
}

// produceUntil retries one produce until it is acknowledged.
func produceUntil(t *testing.T, n *Node, b []byte) ProduceResult {
	t.Helper()
	var r ProduceResult
	for range 200 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r = n.Produce(ctx, "t", 0, b)
		cancel()
		if r.ErrorCode == 0 {
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("produce not acknowledged: %+v", r)
	return r
}

func commitUntil(t *testing.T, n *Node, off int64) {
	t.Helper()
	for range 200 {
		codes := n.CommitOffsets(context.Background(), meta.CommitOffsets{Group: "g", Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: off}}})
		if codes[0].Code == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("commit %d not acknowledged", off)
}

// failStopChild runs the node that fails: it acknowledges failStopAcked
// batches and one commit (printing each acknowledgement), enables the
// failpoint and sends one more of what it breaks. It never returns: the
// node's panic ends the process.
func failStopChild(t *testing.T, fp string) {
	raftlog.Install(slog.New(slog.DiscardHandler), slog.LevelError)
	n, err := Start(context.Background(), osNodeConfig(os.Getenv(envFailStopDir), os.Getenv(envFailStopRaft), nil))
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		r := n.CreateTopics(context.Background(), []TopicSpec{{Name: "t", Partitions: 1, ReplicationFactor: 1}}, false)[0]
		if r.ErrorCode == 0 || r.ErrorCode == kerr.TopicAlreadyExists.Code {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range failStopAcked {
		r := produceUntil(t, n, batch(failStopPid, int32(2*i), 2, 10, 0))
		fmt.Printf("ACK %d %d\n", 2*i, r.BaseOffset)
	}
	commitUntil(t, n, failStopOffset)
	fmt.Printf("COMMIT %d\n", failStopOffset)
	if err := failpoint.Enable(fp, "return"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(fp, "/partition/") {
		n.Produce(context.Background(), "t", 0, batch(failStopPid, 2*failStopAcked, 2, 10, 0))
	} else {
		n.CommitOffsets(context.Background(), meta.CommitOffsets{Group: "g", Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: failStopOffset + 2}}})
	}
	time.Sleep(time.Minute)
	t.Fatal("the node did not stop on the failed apply")
}

// TestFailpointApplyFailStop: a node whose partition or controller state
// machine fails an Update stops (its process panics with the injected
// error); restarted on the same disk it holds every acknowledged batch at
// its offset and the acknowledged group offset, and the retry of what was
// in flight succeeds with the batch in the log exactly once.
func TestFailpointApplyFailStop(t *testing.T) {
	if fp := os.Getenv(envFailStopChild); fp != "" {
		failStopChild(t, fp)
		return
	}
	for _, fp := range []string{
		"github.com/chronik-go/chronik/core/partition/beforeApply",
		"github.com/chronik-go/chronik/core/meta/beforeApply",
	} {
		t.Run(fp[strings.LastIndex(fp[:strings.LastIndex(fp, "/")], "/")+1:], func(t *testing.T) {
			dir := t.TempDir()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			raftAddr := ln.Addr().String()
			ln.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFailpointApplyFailStop$", "-test.count=1")
			cmd.Env = append(os.Environ(), envFailStopChild+"="+fp, envFailStopDir+"="+dir, envFailStopRaft+"="+raftAddr)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err == nil || !strings.Contains(stderr.String(), "failpoint") {
				t.Fatalf("child: %v; want a panic with the injected error\nstdout:\n%s\nstderr (tail):\n%s", err, out, tail(stderr.String(), 4000))
			}
			acked := map[int32]int64{} // base sequence -> base offset
			committed := int64(-1)
			sc := bufio.NewScanner(bytes.NewReader(out))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				switch {
				case len(f) == 3 && f[0] == "ACK":
					seq, _ := strconv.Atoi(f[1])
					off, _ := strconv.ParseInt(f[2], 10, 64)
					acked[int32(seq)] = off
				case len(f) == 2 && f[0] == "COMMIT":
					committed, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
			if len(acked) != failStopAcked || committed != failStopOffset {
				t.Fatalf("child acknowledged %d batches and offset %d before the fault:\n%s", len(acked), committed, out)
			}

			n, err := Start(context.Background(), osNodeConfig(dir, raftAddr, captureRaftLog(t)))
			if err != nil {
				t.Fatalf("restart: %v", err)
			}
			defer n.Close(context.Background())
			produceUntil(t, n, batch(failStopPid, 2*failStopAcked, 2, 10, 0)) // the in-flight one, retried
			seqs, offs := seqsOf(t, n, "t", failStopPid)
			if len(seqs) != failStopAcked+1 {
				t.Fatalf("producer's batches after restart: seqs %v", seqs)
			}
			for i, s := range seqs {
				if s != int32(2*i) || (i < failStopAcked && offs[i] != acked[s]) {
					t.Fatalf("after restart seqs %v at %v; acknowledged %v", seqs, offs, acked)
				}
			}
			commitUntil(t, n, failStopOffset+2)
			got, err := n.FetchOffsets("g")
			if err != nil || len(got) != 1 || got[0].Offset != failStopOffset+2 {
				t.Fatalf("offsets after restart and retry: %+v %v", got, err)
			}
			t.Logf("child stopped with: %s", firstLine(stderr.String(), "panic"))
		})
	}
}

func firstLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
