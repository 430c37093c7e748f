package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestServeBrokerFlags runs the binary with broker flags and checks what
// clients see: --num-partitions 3 makes an auto-created topic have 3
// partitions, --broker-rack r1 is the rack in Metadata and
// DescribeCluster, DescribeLogDirs names the data dir with the real
// filesystem's figures; a second broker started with
// CHRONIK_AUTO_CREATE_TOPICS_ENABLE=false refuses a produce to a missing
// topic with UNKNOWN_TOPIC_OR_PARTITION and creates nothing.
func TestServeBrokerFlags(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "data")
	p := startProcess(t, dir, "--num-partitions", "3", "--broker-rack", "r1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("produce to an auto-created topic: %v", err)
	}
	md, err := adm.Metadata(ctx, "auto")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(md.Topics["auto"].Partitions); got != 3 {
		t.Fatalf("auto-created topic has %d partitions, want 3 (--num-partitions)", got)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Rack == nil || *md.Brokers[0].Rack != "r1" {
		t.Fatalf("Metadata brokers %+v, want rack r1", md.Brokers)
	}
	kresp, err := cl.Request(ctx, kmsg.NewPtrDescribeClusterRequest())
	if err != nil {
		t.Fatal(err)
	}
	if cluster := kresp.(*kmsg.DescribeClusterResponse); len(cluster.Brokers) != 1 || cluster.Brokers[0].Rack == nil || *cluster.Brokers[0].Rack != "r1" {
		t.Fatalf("DescribeCluster %+v, want one broker in rack r1", cluster)
	}
	// DescribeConfigs names each flag's value as STATIC_BROKER_CONFIG.
	bc, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(bc) != 1 || bc[0].Err != nil {
		t.Fatalf("DescribeBrokerConfigs: %+v %v", bc, err)
	}
	static := map[string]string{}
	for _, c := range bc[0].Configs {
		if c.Source == kmsg.ConfigSourceStaticBrokerConfig && c.Value != nil {
			static[c.Key] = *c.Value
		}
	}
	if static["num.partitions"] != "3" || static["broker.rack"] != "r1" || len(static) != 2 {
		t.Fatalf("static broker configs %v, want num.partitions=3 and broker.rack=r1", static)
	}
	dirs, err := adm.DescribeBrokerLogDirs(ctx, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := dirs[dir]
	if len(dirs) != 1 || !ok || d.TotalBytes <= 0 || d.UsableBytes < 0 || d.UsableBytes > d.TotalBytes || len(d.Topics["auto"]) != 3 {
		t.Fatalf("DescribeLogDirs %+v, want %s with statfs figures and auto's 3 partitions", dirs, dir)
	}

	q := startProcessEnv(t, filepath.Join(t.TempDir(), "data"), []string{"CHRONIK_AUTO_CREATE_TOPICS_ENABLE=false"})
	cl2, err := kgo.NewClient(kgo.SeedBrokers(q.kafka), kgo.AllowAutoTopicCreation(), kgo.UnknownTopicRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	err = cl2.ProduceSync(ctx, &kgo.Record{Topic: "missing", Value: bytes.Repeat([]byte("x"), 10)}).FirstErr()
	if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("produce to a missing topic with auto-create off: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	topics, err := kadm.NewClient(cl2).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("missing") {
		t.Fatalf("topic created with auto-create off: %v", topics.Names())
	}
}

// startProcessEnv is startProcess with extra environment variables.
func startProcessEnv(t testing.TB, dataDir string, env []string, extra ...string) *process {
	t.Helper()
	p := launchProcessEnv(t, dataDir, env, extra...)
	p.waitReady(t)
	return p
}
