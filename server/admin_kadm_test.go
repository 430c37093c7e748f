package server

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

func strp(s string) *string { return &s }

// adminCtx is a bounded context for one test step group.
func adminCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	t.Cleanup(cancel)
	return ctx
}

// TestAdminOneNode: the kadm admin flows against one broker, then every
// advertised version of every admin API byte for byte (rawRoundTrip).
func TestAdminOneNode(t *testing.T) {
	c := startCluster(t, 1, nil)
	adminKadmScenario(t, c, 1)
	adminRawVersions(t, c)
}

// TestAdminThreeNodes: the kadm admin flows against three brokers,
// Metadata from every broker, and a leader change under a consuming kgo
// client (KIP-320 validation through OffsetForLeaderEpoch).
func TestAdminThreeNodes(t *testing.T) {
	c := startCluster(t, 3, nil)
	adminKadmScenario(t, c, 3)
	adminLeaderChange(t, c)
}

func wantErr(t testing.TB, what string, got error, want *kerr.Error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Fatalf("%s: %v", what, got)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Fatalf("%s: error %v, want %v", what, got, want)
	}
}

// metadataEverywhere asks every running broker for Metadata v12 (all
// topics) until they agree, and checks brokers, addresses, cluster id,
// controller and leaders. It returns the agreed answer.
func metadataEverywhere(t testing.TB, c *testCluster, nBrokers int, topics ...string) *kmsg.MetadataResponse {
	t.Helper()
	var last *kmsg.MetadataResponse
	var why string
	eventually(t, 3*testWait, func() bool {
		last, why = nil, ""
		var leaders []string
		for id, addr := range c.addrs {
			if c.broker(id) == nil {
				continue
			}
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(12)
			resp := rawRoundTrip(t, addr, req).(*kmsg.MetadataResponse)
			if len(resp.Brokers) != nBrokers {
				why = "broker count"
				return false
			}
			ids := map[int32]bool{}
			for _, b := range resp.Brokers {
				if b.Host != "127.0.0.1" || c.addrs[uint64(b.NodeID)] != b.Host+":"+strconv.Itoa(int(b.Port)) {
					t.Fatalf("broker %d advertised %s:%d", b.NodeID, b.Host, b.Port)
				}
				ids[b.NodeID] = true
			}
			if resp.ClusterID == nil || *resp.ClusterID == "" || (last != nil && *last.ClusterID != *resp.ClusterID) {
				t.Fatalf("cluster id %v", resp.ClusterID)
			}
			if !ids[resp.ControllerID] {
				why = "controller"
				return false
			}
			var l []string
			seen := map[string]bool{}
			for _, tp := range resp.Topics {
				seen[*tp.Topic] = true
				if *tp.Topic == offsetsTopic {
					// internal, a partition per group shard, each led by
					// a broker (internal_topic.go)
					if !tp.IsInternal || tp.ErrorCode != 0 || len(tp.Partitions) != meta.DefaultGroupShards {
						t.Fatalf("internal topic %+v (controller %d)", tp, resp.ControllerID)
					}
					for _, p := range tp.Partitions {
						if !ids[p.Leader] {
							why = "group shard leader"
							return false
						}
					}
					continue
				}
				if tp.ErrorCode != 0 || tp.TopicID == [16]byte{} || tp.IsInternal {
					t.Fatalf("topic %+v", tp)
				}
				for _, p := range tp.Partitions {
					if p.ErrorCode != 0 || !ids[p.Leader] || len(p.Replicas) == 0 || p.LeaderEpoch < 1 {
						why = "leader of " + *tp.Topic
						return false
					}
					l = append(l, *tp.Topic+"/"+strconv.Itoa(int(p.Partition))+"@"+strconv.Itoa(int(p.Leader))+"."+strconv.Itoa(int(p.LeaderEpoch)))
				}
			}
			for _, want := range topics {
				if !seen[want] {
					why = "topic " + want
					return false
				}
			}
			slices.Sort(l)
			if leaders != nil && !slices.Equal(l, leaders) {
				why = "leaders differ"
				return false
			}
			leaders, last = l, resp
		}
		return last != nil
	}, "metadata agrees on every broker (%s)", &why)
	return last
}

func adminKadmScenario(t *testing.T, c *testCluster, n int) {
	ctx := adminCtx(t)
	adm := c.admin()

	// CreateTopics, with configs; the answer carries id, counts, configs.
	cr, err := adm.CreateTopics(ctx, 2, -1, map[string]*string{"retention.ms": strp("60000")}, "a")
	if err != nil {
		t.Fatal(err)
	}
	a := cr["a"]
	if a.Err != nil || a.NumPartitions != 2 || a.ReplicationFactor != int16(min(n, 3)) || a.ID == (kadm.TopicID{}) {
		t.Fatalf("create a: %+v", a)
	}
	if v := a.Configs["retention.ms"]; v.Value == nil || *v.Value != "60000" || v.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("create a: retention.ms %+v", v)
	}
	if v := a.Configs["segment.bytes"]; v.Value == nil || v.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("create a: segment.bytes %+v", v)
	}

	// Validate-only creates nothing; errors.
	vr, err := adm.ValidateCreateTopics(ctx, 3, -1, nil, "v")
	if err != nil || vr["v"].Err != nil || vr["v"].NumPartitions != 3 {
		t.Fatalf("validate v: %+v %v", vr, err)
	}
	td, err := adm.ListTopics(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "validate-only topic listed", td["v"].Err, kerr.UnknownTopicOrPartition)
	for _, tc := range []struct {
		name     string
		parts    int32
		rf       int16
		validate bool
		want     *kerr.Error
	}{
		{"a", 1, -1, false, kerr.TopicAlreadyExists},
		{"a", 1, -1, true, kerr.TopicAlreadyExists},
		{"bad name!", 1, -1, false, kerr.InvalidTopicException},
		{"p0", 0, -1, false, kerr.InvalidPartitions},
		{"p0", -2, -1, true, kerr.InvalidPartitions},
		{"rf", 1, int16(n + 1), false, kerr.InvalidReplicationFactor},
		{"rf", 1, int16(n + 1), true, kerr.InvalidReplicationFactor},
		{"rf", 1, 0, false, kerr.InvalidReplicationFactor},
	} {
		f := adm.CreateTopics
		if tc.validate {
			f = adm.ValidateCreateTopics
		}
		r, err := f(ctx, tc.parts, tc.rf, nil, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, "create "+tc.name, r[tc.name].Err, tc.want)
		if r[tc.name].ErrMessage == "" {
			t.Fatalf("create %s: no error message", tc.name)
		}
	}
	r, err := adm.CreateTopics(ctx, 1, -1, map[string]*string{"bogus.key": strp("1")}, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "create with bad config", r["cfg"].Err, kerr.InvalidConfig)

	// Metadata from every broker.
	metadataEverywhere(t, c, n, "a")

	// DescribeConfigs / IncrementalAlterConfigs round trip.
	describe := func(key string) kadm.Config {
		t.Helper()
		rc, err := adm.DescribeTopicConfigs(ctx, "a")
		if err != nil || len(rc) != 1 || rc[0].Err != nil {
			t.Fatalf("describe: %+v %v", rc, err)
		}
		if len(rc[0].Configs) != 10 {
			t.Fatalf("describe: %d configs: %+v", len(rc[0].Configs), rc[0].Configs)
		}
		for _, cf := range rc[0].Configs {
			if cf.Key == key {
				return cf
			}
		}
		t.Fatalf("describe: no %s", key)
		return kadm.Config{}
	}
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("12345")}, {Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("2000000")}}, "a")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter: %+v %v", ar, err)
	}
	if cf := describe("retention.ms"); *cf.Value != "12345" || cf.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Fatalf("retention.ms after set: %+v", cf)
	}
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, "a")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("alter delete: %+v %v", ar, err)
	}
	if cf := describe("retention.ms"); *cf.Value != "604800000" || cf.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("retention.ms after delete: %+v", cf)
	}
	if cf := describe("max.message.bytes"); *cf.Value != "2000000" {
		t.Fatalf("max.message.bytes: %+v", cf)
	}
	for _, tc := range []struct {
		op   kadm.AlterConfig
		want *kerr.Error
	}{
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "segment.bytes", Value: strp("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.SetConfig, Name: "no.such.key", Value: strp("1")}, kerr.InvalidConfig},
		{kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: strp("delete")}, kerr.InvalidRequest},
		{kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: strp("delete")}, kerr.InvalidRequest},
	} {
		ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{tc.op}, "a")
		if err != nil {
			t.Fatal(err)
		}
		wantErr(t, "alter "+tc.op.Name, ar[0].Err, tc.want)
	}
	ar, err = adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.ms", Value: strp("1000")}}, "a")
	if err != nil || ar[0].Err != nil {
		t.Fatalf("validate alter: %+v %v", ar, err)
	}
	if cf := describe("segment.ms"); cf.Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("validate-only alter applied: %+v", cf)
	}
	bc, err := adm.DescribeBrokerConfigs(ctx)
	if err != nil || len(bc) != 1 || bc[0].Err != nil {
		t.Fatalf("describe broker configs: %+v %v", bc, err)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "missing")
	if err == nil {
		wantErr(t, "describe missing", rc[0].Err, kerr.UnknownTopicOrPartition)
	}

	// CreatePartitions.
	pr, err := adm.CreatePartitions(ctx, 1, "a")
	if err != nil || pr["a"].Err != nil {
		t.Fatalf("create partitions: %+v %v", pr, err)
	}
	pr, err = adm.UpdatePartitions(ctx, 2, "a")
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "shrink partitions", pr["a"].Err, kerr.InvalidPartitions)
	md := metadataEverywhere(t, c, n, "a")
	for _, tp := range md.Topics {
		if *tp.Topic == "a" && len(tp.Partitions) != 3 {
			t.Fatalf("a has %d partitions", len(tp.Partitions))
		}
	}

	// Produce (acks=all) three batches with distinct timestamps to a/0.
	prod := c.client(kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := 0; i < 3; i++ {
		rec := &kgo.Record{Topic: "a", Partition: 0, Value: []byte("v" + strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	listed := func(what string, lo kadm.ListedOffsets, err error) kadm.ListedOffset {
		t.Helper()
		if err != nil || lo.Error() != nil {
			t.Fatalf("%s: %v %v", what, err, lo.Error())
		}
		o, ok := lo.Lookup("a", 0)
		if !ok {
			t.Fatalf("%s: no a/0", what)
		}
		return o
	}
	lo, err := adm.ListEndOffsets(ctx, "a")
	end := listed("end", lo, err)
	if end.Offset != 3 || end.LeaderEpoch < 1 {
		t.Fatalf("end offset %+v", end)
	}
	lo, err = adm.ListStartOffsets(ctx, "a")
	if o := listed("start", lo, err); o.Offset != 0 {
		t.Fatalf("start offset %+v", o)
	}
	lo, err = adm.ListOffsetsAfterMilli(ctx, base.Add(30*time.Second).UnixMilli(), "a")
	if o := listed("after", lo, err); o.Offset != 1 {
		t.Fatalf("offset after milli %+v", o)
	}
	ep, err := adm.OffsetForLeaderEpoch(ctx, kadm.OffsetForLeaderEpochRequest{"a": {0: end.LeaderEpoch}})
	if err != nil {
		t.Fatal(err)
	}
	if e := ep["a"][0]; e.Err != nil || e.EndOffset != 3 {
		t.Fatalf("offset for leader epoch: %+v", e)
	}

	// DeleteRecords, then the start offset moved.
	var os kadm.Offsets
	os.AddOffset("a", 0, 2, -1)
	dr, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := dr.Lookup("a", 0); d.Err != nil || d.LowWatermark != 2 {
		t.Fatalf("delete records: %+v", d)
	}
	lo, err = adm.ListStartOffsets(ctx, "a")
	if o := listed("start after delete", lo, err); o.Offset != 2 {
		t.Fatalf("start offset after delete %+v", o)
	}
	os = nil
	os.AddOffset("a", 0, 100, -1)
	dr, err = adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := dr.Lookup("a", 0)
	wantErr(t, "delete records beyond hw", d.Err, kerr.OffsetOutOfRange)

	// DeleteTopics; then every broker says unknown.
	del, err := adm.DeleteTopics(ctx, "a")
	if err != nil || del["a"].Err != nil {
		t.Fatalf("delete topic: %+v %v", del, err)
	}
	del, err = adm.DeleteTopics(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete again", del["a"].Err, kerr.UnknownTopicOrPartition)
	for id, addr := range c.addrs {
		eventually(t, testWait, func() bool {
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(12)
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = strp("a")
			req.Topics = append(req.Topics, rt)
			resp := rawRoundTrip(t, addr, req).(*kmsg.MetadataResponse)
			return resp.Topics[0].ErrorCode == kerr.UnknownTopicOrPartition.Code
		}, "node %d: deleted topic unknown", id)
	}
}

// adminLeaderChange stops the leader of a partition a kgo consumer is
// reading; the consumer must continue from where it was (no reset, no
// duplicates), validating its position with OffsetForLeaderEpoch.
func adminLeaderChange(t *testing.T, c *testCluster) {
	ctx := adminCtx(t)
	adm := c.admin()
	if r, err := adm.CreateTopics(ctx, 1, 3, nil, "lc"); err != nil || r["lc"].Err != nil {
		t.Fatalf("create lc: %+v %v", r, err)
	}
	prod := c.client(kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("lc"))
	produce := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := prod.ProduceSync(ctx, kgo.StringRecord("r"+strconv.Itoa(i))).FirstErr(); err != nil {
				t.Fatalf("produce %d: %v", i, err)
			}
		}
	}
	produce(0, 5)
	epochReqs := &keyCounter{key: offsetForLeaderEpochKey}
	cons := c.client(kgo.ConsumeTopics("lc"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond), kgo.WithHooks(epochReqs))
	var got []*kgo.Record
	consumeUntil := func(n int) {
		t.Helper()
		for len(got) < n {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d records", len(got), n)
			}
			fs.EachError(func(topic string, p int32, err error) {
				var dl *kgo.ErrDataLoss
				if errors.As(err, &dl) {
					t.Fatalf("data loss reported: %v", err)
				}
			})
			got = append(got, fs.Records()...)
		}
	}
	consumeUntil(5)

	md := metadataEverywhere(t, c, 3, "lc")
	var leader, epoch int32
	for _, tp := range md.Topics {
		if *tp.Topic == "lc" {
			leader, epoch = tp.Partitions[0].Leader, tp.Partitions[0].LeaderEpoch
		}
	}
	recEpoch := got[4].LeaderEpoch
	c.stop(uint64(leader))

	// A new leader in a newer epoch, seen by the remaining brokers.
	md = metadataEverywhere(t, c, 3, "lc")
	for _, tp := range md.Topics {
		if *tp.Topic == "lc" {
			p := tp.Partitions[0]
			if p.Leader == leader || p.LeaderEpoch <= epoch {
				t.Fatalf("after stopping %d: leader %d epoch %d (was %d)", leader, p.Leader, p.LeaderEpoch, epoch)
			}
			if !slices.Equal(p.OfflineReplicas, []int32{}) && len(p.OfflineReplicas) != 0 {
				t.Logf("offline replicas %v", p.OfflineReplicas)
			}
		}
	}
	produce(5, 10)
	consumeUntil(10)
	for i, r := range got {
		if r.Offset != int64(i) || string(r.Value) != "r"+strconv.Itoa(i) {
			t.Fatalf("record %d: offset %d value %q (reset or duplicate)", i, r.Offset, r.Value)
		}
	}
	if epochReqs.n.Load() == 0 {
		t.Fatal("the consumer never validated its position with OffsetForLeaderEpoch")
	}
	if got[9].LeaderEpoch <= recEpoch {
		t.Fatalf("records after the change carry epoch %d, before %d", got[9].LeaderEpoch, recEpoch)
	}

	// The old epoch ends where the new leader's first batch starts.
	ep, err := adm.OffsetForLeaderEpoch(ctx, kadm.OffsetForLeaderEpochRequest{"lc": {0: recEpoch}})
	if err != nil {
		t.Fatal(err)
	}
	if e := ep["lc"][0]; e.Err != nil || e.EndOffset != 5 || e.LeaderEpoch != recEpoch {
		t.Fatalf("offset for old epoch %d: %+v", recEpoch, e)
	}
	end, err := adm.ListEndOffsets(ctx, "lc")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("lc", 0); o.Err != nil || o.Offset != 10 {
		t.Fatalf("end offset after change: %+v", o)
	}
}

// keyCounter is a kgo hook counting successful writes of one API key.
type keyCounter struct {
	key int16
	n   atomic.Int64
}

func (k *keyCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key == k.key && err == nil {
		k.n.Add(1)
	}
}
