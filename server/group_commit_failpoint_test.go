//go:build failpoint

package server

import (
	"context"
	"errors"
	"testing"

	"github.com/pingcap/failpoint"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	fpValidateCommit = "github.com/chronik-go/chronik/core/group/validateCommit"
	fpCommitAfter    = "github.com/chronik-go/chronik/core/node/commitOffsetsAfterPropose"
)

func enableFailpoint(t *testing.T, name, term string) {
	t.Helper()
	if err := failpoint.Enable(name, term); err != nil {
		t.Fatalf("enable %s: %v", name, err)
	}
	t.Cleanup(func() { _ = failpoint.Disable(name) })
}

// TestFailpointOffsetCommitRetried: an OffsetCommit refused by the
// coordinator (NOT_COORDINATOR, as when it moves) or whose proposal errs
// after applying (REQUEST_TIMED_OUT) reports the code on the wire; kgo
// retries both on its own; the committed offset is the last acknowledged
// one and never goes back.
func TestFailpointOffsetCommitRetried(t *testing.T) {
	c := startCluster(t, 1, nil)
	adm := c.admin()
	ctx := context.Background()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	commitRaw := func(off int64) int16 {
		t.Helper()
		conn := dial(t, c.addrs[1])
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 8, "g", -1
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = 0, off, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.Partitions = "t", []kmsg.OffsetCommitRequestTopicPartition{p}
		req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
		send(t, conn, frameRequest(req, 1, nil))
		_, body := readFrame(t, conn)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		if err := resp.ReadFrom(body[1:]); err != nil { // body[0]: the header's empty tag buffer
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	committed := func() int64 {
		t.Helper()
		r, err := adm.FetchOffsets(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := r.Lookup("t", 0)
		return o.At
	}
	// Retried by the coordinator: one commit on the wire.
	if code := commitRaw(3); code != 0 {
		t.Fatalf("commit 3: code %d", code)
	}
	for _, tc := range []struct {
		fp, term string
		code     int16
		off      int64
		after    int64 // committed after the failed attempt
	}{
		{fpValidateCommit, "1*return(16)", kerr.NotCoordinator.Code, 5, 3},
		{fpCommitAfter, "1*return", kerr.RequestTimedOut.Code, 7, 7},
	} {
		enableFailpoint(t, tc.fp, tc.term)
		if code := commitRaw(tc.off); code != tc.code {
			t.Fatalf("%s: code %d, want %d", tc.fp, code, tc.code)
		}
		if got := committed(); got != tc.after {
			t.Fatalf("%s: committed %d after the failed attempt, want %d", tc.fp, got, tc.after)
		}
		if code := commitRaw(tc.off); code != 0 {
			t.Fatalf("%s: retry code %d", tc.fp, code)
		}
		if got := committed(); got != tc.off {
			t.Fatalf("%s: committed %d after the retry, want %d", tc.fp, got, tc.off)
		}
	}
	// kgo retries NOT_COORDINATOR by itself; REQUEST_TIMED_OUT of a commit
	// reaches the application (whose retry then succeeds), with the offset
	// possibly committed already.
	enableFailpoint(t, fpValidateCommit, "2*return(16)")
	if r, err := adm.CommitOffsets(ctx, "g", offsetsAt(9)); err != nil || r.Error() != nil {
		t.Fatalf("kadm commit through NOT_COORDINATOR: %v %v", err, r.Error())
	}
	if got := committed(); got != 9 {
		t.Fatalf("committed %d, want 9", got)
	}
	enableFailpoint(t, fpCommitAfter, "1*return")
	if r, err := adm.CommitOffsets(ctx, "g", offsetsAt(11)); err != nil || !errors.Is(r.Error(), kerr.RequestTimedOut) {
		t.Fatalf("kadm commit with a lost answer: %v %v, want REQUEST_TIMED_OUT", err, r.Error())
	}
	if got := committed(); got != 11 {
		t.Fatalf("committed %d after an applied commit whose answer was lost, want 11", got)
	}
	if r, err := adm.CommitOffsets(ctx, "g", offsetsAt(11)); err != nil || r.Error() != nil {
		t.Fatalf("kadm retry: %v %v", err, r.Error())
	}
}

func offsetsAt(at int64) kadm.Offsets {
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: "t", Partition: 0, At: at, LeaderEpoch: -1})
	return o
}
