package server

import (
	"context"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPartitionReassignmentKadm: kadm AlterPartitionAssignments and
// ListPartitionReassignments against four brokers; a partition moves off
// one of its replicas onto the fourth node while records keep flowing.
func TestPartitionReassignmentKadm(t *testing.T) {
	c := startCluster(t, 4, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()
	// Node 4 is already a peer here; AddNode is idempotent all the same.
	if err := c.broker(1).Node.AddNode(ctx, 4, c.cfgs[4].Node.RaftAddr); err != nil {
		t.Fatalf("AddNode: %v", err)
	}
	adm := c.admin()
	if r, err := adm.CreateTopics(ctx, 1, 3, nil, "mv"); err != nil || r["mv"].Err != nil {
		t.Fatalf("create: %+v %v", r, err)
	}
	prod := c.client(kgo.DefaultProduceTopic("mv"))
	for i := 0; i < 20; i++ {
		if err := prod.ProduceSync(ctx, kgo.StringRecord("before")).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var replicas []int32
	eventually(t, testWait, func() bool {
		td, err := adm.ListTopics(ctx, "mv")
		if err != nil || td["mv"].Err != nil {
			return false
		}
		replicas = td["mv"].Partitions[0].Replicas
		return len(replicas) == 3
	}, "topic mv described")
	var out int32 = 1
	for id := int32(1); id <= 4; id++ {
		if !slices.Contains(replicas, id) {
			out = id
		}
	}
	target := slices.Clone(replicas)
	target[0] = out // replace the preferred leader

	// Invalid targets are answered per partition.
	bad, err := adm.AlterPartitionAssignments(ctx, kadm.AlterPartitionAssignmentsReq{"mv": {0: {1, 1, 2}}, "nope": {0: {1}}})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "duplicate replica", bad["mv"][0].Err, kerr.InvalidReplicaAssignment)
	wantErr(t, "unknown topic", bad["nope"][0].Err, kerr.UnknownTopicOrPartition)

	res, err := adm.AlterPartitionAssignments(ctx, kadm.AlterPartitionAssignmentsReq{"mv": {0: target}})
	if err != nil || res["mv"][0].Err != nil {
		t.Fatalf("alter: %+v %v", res, err)
	}
	for i := 0; i < 20; i++ { // records keep flowing during the move
		if err := prod.ProduceSync(ctx, kgo.StringRecord("during")).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 2*testWait, func() bool {
		l, err := adm.ListPartitionReassignments(ctx, nil)
		if err != nil || len(l) != 0 {
			return false
		}
		td, err := adm.ListTopics(ctx, "mv")
		return err == nil && td["mv"].Err == nil && slices.Equal(td["mv"].Partitions[0].Replicas, target)
	}, "move to %v completed", target)
	if err := prod.ProduceSync(ctx, kgo.StringRecord("after")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cons := c.client(kgo.ConsumeTopics("mv"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < 41 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 41 records: %v", got, err)
		}
		got += fs.NumRecords()
	}
	if got != 41 {
		t.Fatalf("consumed %d records, want 41", got)
	}
	// Cancelling without a move in progress.
	res, err = adm.AlterPartitionAssignments(ctx, kadm.AlterPartitionAssignmentsReq{"mv": {0: nil}})
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "cancel without move", res["mv"][0].Err, kerr.NoReassignmentInProgress)
}
