package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// The data-path tests need Metadata, ListOffsets and OffsetForLeaderEpoch
// for kgo, which belong to another API area. dataRegistry serves the
// built-in APIs plus minimal test-only versions of those that are not
// built in yet (straight over core/node), so the tests keep working, and
// use the real handlers, once those are merged.
func dataRegistry() *Registry {
	apis := BuiltinAPIs()
	have := map[int16]bool{}
	for _, a := range apis {
		have[a.Key] = true
	}
	for _, a := range []API{
		{Key: 3, MinVersion: 4, MaxVersion: 12, Handler: stubMetadata},
		{Key: 2, MinVersion: 1, MaxVersion: 7, Handler: stubListOffsets},
		{Key: 23, MinVersion: 2, MaxVersion: 4, Handler: stubOffsetForLeaderEpoch},
	} {
		if !have[a.Key] {
			apis = append(apis, a)
		}
	}
	return NewRegistry(apis...)
}

func stubMetadata(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	var names []string
	if req.Topics != nil {
		names = []string{}
		for _, t := range req.Topics {
			if t.Topic != nil {
				names = append(names, *t.Topic)
			}
		}
	}
	cv := rc.Broker.Node.Metadata(ctx, names)
	resp.ControllerID = cv.ControllerID
	for _, b := range cv.Brokers {
		rb := kmsg.NewMetadataResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.NodeID, b.Host, b.Port
		resp.Brokers = append(resp.Brokers, rb)
	}
	for _, t := range cv.Topics {
		rt := kmsg.NewMetadataResponseTopic()
		name := t.Name
		rt.Topic, rt.TopicID, rt.ErrorCode = &name, t.ID, t.ErrorCode
		for _, p := range t.Partitions {
			rp := kmsg.NewMetadataResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.Leader, rp.LeaderEpoch = p.Partition, p.ErrorCode, p.Leader, p.LeaderEpoch
			rp.Replicas, rp.ISR, rp.OfflineReplicas = p.Replicas, p.ISR, p.OfflineReplicas
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func stubListOffsets(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			r := rc.Broker.Node.ListOffsets(ctx, t.Topic, p.Partition, p.Timestamp)
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.Offset, rp.Timestamp, rp.LeaderEpoch = p.Partition, r.ErrorCode, r.Offset, r.Timestamp, r.LeaderEpoch
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

func stubOffsetForLeaderEpoch(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			r := rc.Broker.Node.OffsetForLeaderEpoch(ctx, t.Topic, p.Partition, p.LeaderEpoch)
			rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = p.Partition, r.ErrorCode, r.LeaderEpoch, r.EndOffset
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// startDataCluster is startCluster with dataRegistry on every broker.
func startDataCluster(t testing.TB, n int, mod func(*node.Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, logs: &logSink{}, brokers: map[uint64]*Broker{}, cfgs: map[uint64]BrokerConfig{}, addrs: map[uint64]string{}}
	raftlog.Install(c.logs.logger(), slog.LevelWarn)
	peers := map[uint64]string{}
	lns := map[uint64]net.Listener{}
	for id := uint64(1); id <= uint64(n); id++ {
		peers[id] = "127.0.0.1:" + strconv.Itoa(freeTCPPort(t))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[id] = ln
		c.addrs[id] = ln.Addr().String()
	}
	dir := t.TempDir()
	reg := dataRegistry()
	for id := uint64(1); id <= uint64(n); id++ {
		port := int32(lns[id].Addr().(*net.TCPAddr).Port)
		nc := node.Config{
			NodeID: id, RaftAddr: peers[id], Host: "127.0.0.1", Port: port, Peers: peers,
			DataDir: fmt.Sprintf("%s/n%d", dir, id), FS: diskio.NewOS(), Net: netio.NewOS(),
			Clock: clock.Real(), AutoCreateTopics: true, DefaultPartitions: 1,
		}
		if mod != nil {
			mod(&nc)
		}
		c.cfgs[id] = BrokerConfig{Node: nc, Logger: c.logs.logger().With("node", id), Server: Config{Registry: reg}}
		c.start(id, lns[id])
	}
	t.Cleanup(func() {
		c.closeAll()
		if t.Failed() {
			t.Logf("cluster log:\n%s", c.logs.String())
		}
	})
	c.waitBrokers(n)
	return c
}

// anyBroker returns a running broker.
func (c *testCluster) anyBroker() *Broker {
	for id := uint64(1); id <= uint64(len(c.addrs)); id++ {
		if b := c.broker(id); b != nil {
			return b
		}
	}
	c.t.Fatal("no broker running")
	return nil
}

// createTopic creates a topic through core/node (CreateTopics is another
// API area) and waits until every partition has a leader that serves it.
func (c *testCluster) createTopic(name string, partitions int32, configs ...meta.ConfigEntry) {
	c.t.Helper()
	eventually(c.t, testWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r := c.anyBroker().Node.CreateTopics(ctx, []node.TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: -1, Configs: configs}}, false)[0]
		return r.ErrorCode == 0 || r.ErrorCode == kerr.TopicAlreadyExists.Code
	}, "create topic %s", name)
	for p := int32(0); p < partitions; p++ {
		c.leaderOf(name, p)
	}
}

// leaderOf waits until some broker serves topic/p as a ready leader and
// returns its id.
func (c *testCluster) leaderOf(topic string, p int32) uint64 {
	c.t.Helper()
	var leader uint64
	eventually(c.t, testWait, func() bool {
		for id := uint64(1); id <= uint64(len(c.addrs)); id++ {
			b := c.broker(id)
			if b == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r := b.Node.ListOffsets(ctx, topic, p, node.TimestampLatest)
			cancel()
			if r.ErrorCode == 0 {
				leader = id
				return true
			}
		}
		return false
	}, "a leader for %s/%d", topic, p)
	return leader
}
