package node

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

// ClusterView is what Metadata answers: every registered broker and the
// requested topics.
type ClusterView struct {
	ControllerID int32 // the controller shard's leader, -1 if unknown
	Brokers      []meta.Broker
	Topics       []TopicMetadata
	// GroupShards are the group coordinator shards (shared with the
	// controller view: do not modify); nil until created.
	GroupShards []meta.GroupShard
}

// TopicMetadata is one topic in a ClusterView.
type TopicMetadata struct {
	Name       string
	ID         meta.TopicID
	ErrorCode  int16
	Partitions []PartitionMetadata
}

// PartitionMetadata is one partition in a ClusterView.
//
// ISR: on the partition's leader, the leader and the followers caught up
// within Config.ReplicaLagMax, from the followers' acknowledgements (see
// doc.go, "In-sync replicas"); on any other node the replica list (less
// the replicas a move is adding that have not caught up), because only
// the leader sees the followers' answers. OfflineReplicas are the
// replicas that are not registered brokers.
type PartitionMetadata struct {
	Partition       int32
	ErrorCode       int16 // LEADER_NOT_AVAILABLE while Leader is -1
	Leader          int32
	LeaderEpoch     int32
	Replicas        []int32
	ISR             []int32
	OfflineReplicas []int32
}

// Metadata describes the cluster. topics nil means every topic; a missing
// requested topic is created first if auto-creation is on, otherwise it
// is answered with UNKNOWN_TOPIC_OR_PARTITION. Leaders come from
// dragonboat for shards hosted here (fresher) and from the controller view
// otherwise; a leader that is not a registered broker is reported as -1.
//
// Until the controller replica has caught up once since the node started
// (awaitController), the answer waits for it (bounded): a restarted node
// would otherwise answer from the view of its last snapshot, calling a
// topic created since unknown (kgo then caches that answer for its
// metadata min age, 5 s), or auto-creating it again.
func (n *Node) Metadata(ctx context.Context, topics []string) ClusterView {
	n.awaitController(ctx)
	if topics != nil && n.cfg.AutoCreateTopics && !n.closed.Load() {
		for _, name := range topics {
			if n.view().Topic(name) == nil {
				n.autoCreate(ctx, name)
			}
		}
	}
	v := n.view()
	cv := ClusterView{ControllerID: -1, Brokers: v.Brokers, GroupShards: v.GroupShards}
	if !n.closed.Load() {
		if l, _, ok, err := n.nh.GetLeaderID(meta.ControllerShardID); err == nil && ok {
			if _, reg := v.Broker(int32(l)); reg {
				cv.ControllerID = int32(l)
			}
		}
	}
	if topics == nil {
		for _, t := range v.Topics {
			cv.Topics = append(cv.Topics, n.topicMetadata(v, t))
		}
		return cv
	}
	for _, name := range topics {
		t := v.Topic(name)
		if t == nil {
			cv.Topics = append(cv.Topics, TopicMetadata{Name: name, ErrorCode: kerr.UnknownTopicOrPartition.Code})
			continue
		}
		cv.Topics = append(cv.Topics, n.topicMetadata(v, t))
	}
	return cv
}

func (n *Node) topicMetadata(v *meta.View, t *meta.Topic) TopicMetadata {
	tm := TopicMetadata{Name: t.Name, ID: t.ID}
	for _, p := range t.Partitions {
		leader, epoch := p.LeaderID(), p.LeaderEpoch
		inSync, tracked := []int32(nil), false
		if n.isHosted(p.ShardID) && !n.closed.Load() {
			l, term, ok, err := n.nh.GetLeaderID(p.ShardID)
			switch {
			case err == nil && ok && term >= epoch:
				leader, epoch = int32(l), term
				if l == n.cfg.NodeID {
					inSync, tracked = n.isr.isr(p.ShardID, term, l)
				}
			case err == nil && !ok:
				// This replica knows the shard has no leader right now
				// (an election is under way): that is fresher than the
				// controller's last report, which may name a node that
				// is no longer leader. Naming it would send clients to a
				// broker that answers NOT_LEADER_OR_FOLLOWER at once,
				// and clients that retry without backoff then storm it;
				// LEADER_NOT_AVAILABLE makes them back off and refresh.
				leader = -1
			}
		}
		if !tracked {
			inSync = isr(p)
		}
		pm := PartitionMetadata{Partition: p.Index, Leader: -1, LeaderEpoch: -1, Replicas: p.AllReplicas(), ISR: inSync}
		if _, ok := v.Broker(leader); ok && leader >= 0 {
			pm.Leader, pm.LeaderEpoch = leader, epochOf(epoch)
		} else {
			pm.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		for _, r := range pm.Replicas {
			if _, ok := v.Broker(r); !ok {
				pm.OfflineReplicas = append(pm.OfflineReplicas, r)
			}
		}
		tm.Partitions = append(tm.Partitions, pm)
	}
	return tm
}

// isr approximates the in-sync replicas where this node does not lead the
// partition (see PartitionMetadata): every replica, less the nodes a
// reassignment is adding that have not caught up.
func isr(p meta.Partition) []int32 {
	if p.Target == nil {
		return p.Replicas
	}
	var out []int32
	for _, r := range p.AllReplicas() {
		if slices.Contains(p.Replicas, r) || slices.Contains(p.CaughtUp, r) {
			out = append(out, r)
		}
	}
	return out
}

// controllerCatchUpMax bounds how long a request waits in awaitController.
const controllerCatchUpMax = 2 * time.Second

// awaitController returns once this node's controller replica has applied
// everything committed before some moment after the node started (one
// successful SyncController; remembered), or after controllerCatchUpMax
// or ctx, whichever is first: an isolated node still answers, from its
// older view.
func (n *Node) awaitController(ctx context.Context) {
	if n.controllerCaughtUp.Load() || n.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, controllerCatchUpMax)
	defer cancel()
	for {
		// Fails at once while the shard has no leader yet: retried.
		if n.SyncController(ctx) == nil {
			n.controllerCaughtUp.Store(true)
			return
		}
		if n.cfg.Clock.Sleep(ctx, controllerCatchUpPoll) != nil {
			return
		}
	}
}

// controllerCatchUpPoll is awaitController's pause between attempts.
const controllerCatchUpPoll = 20 * time.Millisecond
