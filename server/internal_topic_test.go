package server

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConsumerOffsetsTopicIsInternal: on a 3-node cluster every broker's
// Metadata lists __consumer_offsets, flagged internal, with a partition per
// group shard led by the shard's leader, both among all topics and by name (never created); a kgo
// regex consumer whose pattern names it skips it and consumes the matching
// user topics (franz-go's TestConsumeRegex); kadm lists it only with
// internal topics; creating, deleting, extending and producing to it fail
// with Kafka's errors.
func TestConsumerOffsetsTopicIsInternal(t *testing.T) {
	c := startCluster(t, 3, nil)
	for _, name := range []string{"rx-include-1", "rx-include-2", "rx-exclude-1"} {
		c.createTopic(name, 1)
	}
	brokers := map[int32]bool{1: true, 2: true, 3: true}
	for id, addr := range c.addrs {
		for _, v := range []int16{1, 9, 12} {
			all := kmsg.NewPtrMetadataRequest()
			all.SetVersion(v)
			named := kmsg.NewPtrMetadataRequest()
			named.SetVersion(v)
			mt := kmsg.NewMetadataRequestTopic()
			mt.Topic = kmsg.StringPtr(offsetsTopic)
			named.Topics = []kmsg.MetadataRequestTopic{mt}
			named.AllowAutoTopicCreation = true
			for _, req := range []*kmsg.MetadataRequest{all, named} {
				resp := rawRoundTrip(t, addr, req).(*kmsg.MetadataResponse)
				i := slices.IndexFunc(resp.Topics, func(tp kmsg.MetadataResponseTopic) bool { return *tp.Topic == offsetsTopic })
				if i < 0 {
					t.Fatalf("node %d v%d (all=%v): %s missing", id, v, req.Topics == nil, offsetsTopic)
				}
				tp := resp.Topics[i]
				shards := c.broker(id).Node.GroupShardCount()
				if !tp.IsInternal || tp.ErrorCode != 0 || shards == 0 || len(tp.Partitions) != shards || (v >= 10 && tp.TopicID != offsetsTopicID) {
					t.Fatalf("node %d v%d: %+v", id, v, tp)
				}
				// A partition per group shard, led by the shard's leader.
				for i, p := range tp.Partitions {
					if p.ErrorCode != 0 || p.Partition != int32(i) || !brokers[p.Leader] || p.Leader != c.broker(id).Node.GroupShardLeader(int32(i)) || len(p.Replicas) != 3 {
						t.Fatalf("node %d v%d: partition %+v", id, v, p)
					}
				}
			}
		}
	}

	// A regex consumer (as franz-go's TestConsumeRegex).
	cl := c.client(
		kgo.ConsumeTopics("rx-.*", "__consumer_offsets"),
		kgo.ConsumeExcludeTopics("rx-exclude-.*"),
		kgo.ConsumeRegex(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	prod := c.client()
	for _, topic := range []string{"rx-include-1", "rx-include-2", "rx-exclude-1"} {
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(topic)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	got := map[string]int{}
	for got["rx-include-1"] == 0 || got["rx-include-2"] == 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("records so far %v; consuming %v", got, cl.GetConsumeTopics())
		}
		for _, e := range fs.Errors() {
			t.Fatalf("poll error on %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		fs.EachRecord(func(r *kgo.Record) { got[r.Topic]++ })
	}
	topics := cl.GetConsumeTopics()
	slices.Sort(topics)
	if !slices.Equal(topics, []string{"rx-include-1", "rx-include-2"}) || len(got) != 2 {
		t.Fatalf("consuming %v, records %v", topics, got)
	}

	adm := kadm.NewClient(prod)
	td, err := adm.ListTopics(ctx)
	if err != nil || td.Has(offsetsTopic) {
		t.Fatalf("ListTopics: %v, lists %s: %v", err, offsetsTopic, td.Has(offsetsTopic))
	}
	td, err = adm.ListTopicsWithInternal(ctx)
	if err != nil || !td.Has(offsetsTopic) || !td[offsetsTopic].IsInternal || td[offsetsTopic].Err != nil || len(td["rx-include-1"].Partitions) != 1 {
		t.Fatalf("ListTopicsWithInternal: %v %+v", err, td[offsetsTopic])
	}

	cr, err := adm.CreateTopic(ctx, 1, -1, nil, offsetsTopic)
	if !errors.Is(err, kerr.TopicAlreadyExists) && !errors.Is(cr.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("CreateTopic %s: %v %v", offsetsTopic, err, cr.Err)
	}
	dr, err := adm.DeleteTopics(ctx, offsetsTopic)
	if err != nil || !errors.Is(dr[offsetsTopic].Err, kerr.InvalidRequest) {
		t.Fatalf("DeleteTopics %s: %v %+v", offsetsTopic, err, dr)
	}
	pr, err := adm.CreatePartitions(ctx, 2, offsetsTopic)
	if err != nil || !errors.Is(pr[offsetsTopic].Err, kerr.InvalidRequest) {
		t.Fatalf("CreatePartitions %s: %v %+v", offsetsTopic, err, pr)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: offsetsTopic, Value: []byte("x")}).FirstErr(); !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("produce to %s: %v", offsetsTopic, err)
	}
}
