package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

// DescribeLogDirs: v1-4
//
// Behaviour:
//   - One log dir per broker: the node's data directory (node.Config.DataDir,
//     the absolute path `chronik serve` resolved), answered from the
//     broker's own state (core/node.LogDirs); each broker describes only
//     itself, as in Kafka (kadm shards the request to every broker).
//   - Topics: every partition replica hosted on this broker and open at
//     that instant (a replica still starting, installing a snapshot or
//     being removed is absent), sorted by topic and partition. Size is the
//     bytes of the replica's log segments on disk (index files not
//     counted); IsFuture is always false (no intra-broker moves).
//   - OffsetLag is 0 on the partition's Raft leader. A follower cannot know
//     the leader's high watermark without asking it, so it reports what it
//     has in memory: the Raft entries its own Raft state knows committed
//     that its replica has not applied yet (entries, not records: a
//     produce entry may hold many; Raft's own no-op and membership entries,
//     never applied to the replica, can show as a small lag on an idle
//     partition until its next produce). Kafka's own figure (its HW minus
//     its log end on the same broker) is 0 on every non-future replica.
//   - Topics null = every hosted replica; otherwise only the named topics'
//     named partitions. Unknown topics and partitions, and partitions not
//     hosted here, are simply absent (Kafka does the same); an empty topic
//     list describes the dir with no topics.
//   - v4 TotalBytes/UsableBytes: the data dir's filesystem (statfs, through
//     node.Config.DiskSpace, which the binary supplies); -1 when unknown
//     (no DiskSpace, an error, or a simulated disk).
//   - Top-level ErrorCode (v3+) and the dir's ErrorCode are 0: a broker
//     that answers has its one dir online (a failed disk fail-stops it).
//
// Version notes: v0 is not served (removed in Kafka 4, KIP-896); v1 is v0
// with throttle semantics; v2 flexible; v3 top-level ErrorCode; v4
// TotalBytes and UsableBytes. v5 (IsCordoned) is not served, as Kafka 4.0.

const describeLogDirsKey = 35

func init() {
	register(API{Key: describeLogDirsKey, MinVersion: 1, MaxVersion: 4, Handler: handleDescribeLogDirs})
}

func handleDescribeLogDirs(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	if !rc.authorizedCluster(kmsg.ACLOperationDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code // v3+; earlier versions get no dirs
		resp.Dirs = []kmsg.DescribeLogDirsResponseDir{}
		return resp, nil
	}
	ld := rc.Broker.Node.LogDirs()
	want := logDirsFilter(req.Topics)
	d := kmsg.NewDescribeLogDirsResponseDir()
	d.Dir, d.TotalBytes, d.UsableBytes = ld.Dir, ld.TotalBytes, ld.UsableBytes
	d.Topics = []kmsg.DescribeLogDirsResponseDirTopic{}
	for _, r := range ld.Replicas {
		if !want(r) {
			continue
		}
		if len(d.Topics) == 0 || d.Topics[len(d.Topics)-1].Topic != r.Topic {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = r.Topic
			d.Topics = append(d.Topics, t)
		}
		p := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		p.Partition, p.Size, p.OffsetLag = r.Partition, r.SizeBytes, r.OffsetLag
		t := &d.Topics[len(d.Topics)-1]
		t.Partitions = append(t.Partitions, p)
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{d}
	return resp, nil
}

// logDirsFilter is the request's topic filter: nil topics = all. Its size
// is bounded by the request's (MaxRequestBytes).
func logDirsFilter(topics []kmsg.DescribeLogDirsRequestTopic) func(node.LogDirReplica) bool {
	if topics == nil {
		return func(node.LogDirReplica) bool { return true }
	}
	parts := map[string]map[int32]bool{}
	for _, t := range topics {
		m := parts[t.Topic]
		if m == nil {
			m = map[int32]bool{}
			parts[t.Topic] = m
		}
		for _, p := range t.Partitions {
			m[p] = true
		}
	}
	return func(r node.LogDirReplica) bool { return parts[r.Topic][r.Partition] }
}
