//go:build failpoint

package server

import (
	"context"
	"slices"
	"testing"

	"github.com/chronik-go/chronik/core/group"
	"github.com/twmb/franz-go/pkg/kgo"
)

const fpGroupRecordWrite = "github.com/chronik-go/chronik/server/groupRecordWrite"

// TestFailpointDeleteGroupsAwaitsTombstone: DeleteGroups answers only
// once the deleted group's tombstone record is written, so the group is
// gone from the group shard when the client hears it is (a crash after
// the answer cannot bring it back): with every group record write
// delayed, the record is gone the moment kadm returns. A tombstone whose
// write fails answers COORDINATOR_NOT_AVAILABLE; kgo retries, the retry
// writes it again and succeeds.
func TestFailpointDeleteGroupsAwaitsTombstone(t *testing.T) {
	c := startCluster(t, 1, nil)
	c.waitGroupShards()
	c.createTopic("dt", 1)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	p := c.client()
	defer p.Close()
	if err := p.ProduceSync(ctx, &kgo.Record{Topic: "dt", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// joinCommitLeave leaves grp Empty with a membership record and a
	// committed offset.
	joinCommitLeave := func(grp string) {
		t.Helper()
		cl := c.client(kgo.ConsumerGroup(grp), kgo.ConsumeTopics("dt"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if fs := cl.PollFetches(ctx); fs.NumRecords() != 1 {
			t.Fatalf("%s: fetched %d records, errors %v", grp, fs.NumRecords(), fs.Errors())
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		cl.Close() // leaves the group
		eventually(t, testWait, func() bool { st, ok := groupRecordState(t, c, grp); return ok && st == group.Empty }, "%s's Empty record", grp)
	}
	adm := c.admin()
	for _, tc := range []struct{ grp, term string }{
		{"slow-tombstone", "sleep(300)"},
		{"failed-tombstone", `1*return("injected")`},
	} {
		joinCommitLeave(tc.grp)
		enableFailpoint(t, fpGroupRecordWrite, tc.term)
		r, err := adm.DeleteGroup(ctx, tc.grp)
		if err != nil || r.Err != nil {
			t.Fatalf("%s: delete: %v %v", tc.grp, err, r.Err)
		}
		if st, ok := groupRecordState(t, c, tc.grp); ok {
			t.Fatalf("%s: answered deleted while its record (%v) is kept", tc.grp, st)
		}
		if gs, err := c.broker(1).Node.OffsetGroups(); err != nil || slices.Contains(gs, tc.grp) {
			t.Fatalf("%s: offset groups after the delete: %v %v", tc.grp, gs, err)
		}
	}
}

// groupRecordState is the state in grp's membership record on broker 1
// (false: no record).
func groupRecordState(t *testing.T, c *testCluster, grp string) (group.State, bool) {
	t.Helper()
	st, err := c.broker(1).Node.GroupStates()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st.Groups {
		if r.Group == grp && len(r.Data) > 1 {
			return group.State(r.Data[1]), true
		}
	}
	return 0, false
}
