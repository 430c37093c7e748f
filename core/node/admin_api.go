package node

// Additions for the Kafka admin front end (server's Metadata, CreateTopics,
// DeleteTopics, CreatePartitions, DescribeConfigs,
// IncrementalAlterConfigs, DescribeCluster, ListOffsets,
// OffsetForLeaderEpoch handlers). Additive only: nothing here changes the
// behaviour of the rest of the package.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/plog"
)

// ClusterID is a stable, non-empty cluster id: "chronik-" followed by the
// URL-safe base64 of the first 12 bytes of SHA-256 over the controller's
// voters (the first up-to-3 node ids of Config.Peers, with their Raft
// addresses, sorted). The voters are fixed at bootstrap, so every node of
// a cluster computes the same id, across restarts, and nodes added later
// (whose Peers include the original voters) agree too.
func (n *Node) ClusterID() string {
	voters := n.controllerVoters()
	h := sha256.New()
	for _, id := range sortedIDs(voters) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], id)
		h.Write(b[:])
		h.Write([]byte(voters[id]))
		h.Write([]byte{0})
	}
	return "chronik-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

// AutoCreateTopics reports the node's auto-creation setting.
func (n *Node) AutoCreateTopics() bool { return n.cfg.AutoCreateTopics }

// MetadataWith is Metadata where a missing topic is auto-created only if
// autoCreate is true AND the node's AutoCreateTopics is on (Kafka's
// AllowAutoTopicCreation request field combined with
// auto.create.topics.enable).
func (n *Node) MetadataWith(ctx context.Context, topics []string, autoCreate bool) ClusterView {
	if topics != nil && !autoCreate && n.cfg.AutoCreateTopics {
		// Metadata would create: answer from the view without creating.
		cv := n.Metadata(ctx, []string{}) // brokers and controller only (waits for the controller first)
		v := n.view()
		for _, name := range topics {
			if t := v.Topic(name); t != nil {
				cv.Topics = append(cv.Topics, n.topicMetadata(v, t))
			} else {
				cv.Topics = append(cv.Topics, TopicMetadata{Name: name, ErrorCode: kerr.UnknownTopicOrPartition.Code})
			}
		}
		return cv
	}
	return n.Metadata(ctx, topics)
}

// TopicName returns the name of the topic with id.
func (n *Node) TopicName(id meta.TopicID) (string, bool) {
	if t := n.view().TopicByID(id); t != nil {
		return t.Name, true
	}
	return "", false
}

// TopicConfig returns the configs set on a topic and whether it exists.
func (n *Node) TopicConfig(name string) ([]meta.ConfigEntry, bool) {
	t := n.view().Topic(name)
	if t == nil {
		return nil, false
	}
	return t.Configs, true
}

// DeleteTopicsByID deletes topics by id, in order (DeleteTopics v6).
// Result names are the deleted topics' names ("" when unknown:
// UNKNOWN_TOPIC_ID).
func (n *Node) DeleteTopicsByID(ctx context.Context, ids []meta.TopicID) []TopicResult {
	out := make([]TopicResult, 0, len(ids))
	for _, id := range ids {
		name, _ := n.TopicName(id)
		r := n.topicResult(ctx, name, meta.DeleteTopic{ID: id})
		if r.Topic != nil {
			r.Name = r.Topic.Name
		}
		out = append(out, r)
	}
	return out
}

// dryRun applies setup and then cmd to a scratch controller state machine
// holding this node's registered brokers, and returns cmd's result. It is
// how validate-only requests run exactly the controller's own checks
// without proposing anything.
func (n *Node) dryRun(setup []meta.Command, cmd meta.Command) meta.Result {
	m := meta.New(nil)
	idx := uint64(0)
	apply := func(c meta.Command) meta.Result {
		idx++
		r, err := m.Update(sm.Entry{Index: idx, Cmd: meta.Encode(c)})
		if err != nil {
			return meta.Result{Code: kerr.UnknownServerError.Code, Message: err.Error()}
		}
		res, err := meta.DecodeResult(r)
		if err != nil {
			return meta.Result{Code: kerr.UnknownServerError.Code, Message: err.Error()}
		}
		return res
	}
	for _, b := range n.view().Brokers {
		apply(meta.RegisterBroker(b))
	}
	for _, c := range setup {
		if r := apply(c); r.Code != 0 {
			return r
		}
	}
	return apply(cmd)
}

// ValidateCreateTopics runs every check CreateTopics would (name,
// existence, '.'/'_' collision, partitions, replication factor against the
// registered brokers, configs) and proposes nothing. Result.Topic is the
// topic as it would be created (partition count, replicas, configs).
func (n *Node) ValidateCreateTopics(specs []TopicSpec) []TopicResult {
	v := n.view()
	out := make([]TopicResult, 0, len(specs))
	for _, s := range specs {
		var setup []meta.Command
		// Existing topics matter for TOPIC_ALREADY_EXISTS and collisions;
		// only those that could collide are copied into the scratch state.
		for _, t := range v.Topics {
			if collides(t.Name, s.Name) {
				setup = append(setup, meta.CreateTopic{Name: t.Name, Partitions: 1, ReplicationFactor: 1})
			}
		}
		r := n.dryRun(setup, n.createCommand(s))
		out = append(out, TopicResult{Name: s.Name, ErrorCode: r.Code, Message: r.Message, Topic: r.Topic})
	}
	return out
}

func collides(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == '.' {
			x = '_'
		}
		if y == '.' {
			y = '_'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ValidateAlterConfigs runs AlterConfigs' checks against the topic's
// current configs without proposing.
func (n *Node) ValidateAlterConfigs(c meta.AlterConfigs) TopicResult {
	t := n.view().Topic(c.Topic)
	if t == nil {
		return TopicResult{Name: c.Topic, ErrorCode: kerr.UnknownTopicOrPartition.Code, Message: "unknown topic " + strconv.Quote(c.Topic)}
	}
	r := n.dryRun([]meta.Command{meta.CreateTopic{Name: t.Name, Partitions: 1, ReplicationFactor: 1, Configs: t.Configs}}, c)
	return TopicResult{Name: c.Topic, ErrorCode: r.Code, Message: r.Message}
}

// ValidateCreatePartitions runs CreatePartitions' checks without
// proposing.
func (n *Node) ValidateCreatePartitions(c meta.CreatePartitions) TopicResult {
	t := n.view().Topic(c.Topic)
	if t == nil {
		return TopicResult{Name: c.Topic, ErrorCode: kerr.UnknownTopicOrPartition.Code, Message: "unknown topic " + strconv.Quote(c.Topic)}
	}
	rf := int16(len(t.Partitions[0].Replicas))
	r := n.dryRun([]meta.Command{meta.CreateTopic{Name: t.Name, Partitions: int32(len(t.Partitions)), ReplicationFactor: rf}}, c)
	return TopicResult{Name: c.Topic, ErrorCode: r.Code, Message: r.Message, Topic: r.Topic}
}

// TimestampMaxTimestamp is ListOffsets' -3 (KIP-734).
const TimestampMaxTimestamp int64 = -3

// fence applies Kafka's CurrentLeaderEpoch check (KIP-320): -1 skips it;
// older than ours is FENCED_LEADER_EPOCH, newer is UNKNOWN_LEADER_EPOCH.
func fence(current, ours int32) int16 {
	switch {
	case current < 0:
		return 0
	case current < ours:
		return kerr.FencedLeaderEpoch.Code
	case current > ours:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// ListOffsetsFenced is ListOffsets with CurrentLeaderEpoch fencing
// (currentEpoch -1: none). Timestamp -3 (max timestamp, KIP-734) answers
// the base offset of the first batch holding the largest timestamp below
// the high watermark and that timestamp (batch granularity, like the
// timestamp lookup; Kafka answers the record's own offset), found by a
// binary search over the time index; an empty log answers -1/-1.
func (n *Node) ListOffsetsFenced(ctx context.Context, topic string, part int32, ts int64, currentEpoch int32) ListOffsetsResult {
	res := ListOffsetsResult{Offset: -1, Timestamp: -1, LeaderEpoch: -1}
	_, rep, epoch, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		res.ErrorCode = code
		return res
	}
	if c := fence(currentEpoch, epoch); c != 0 {
		res.ErrorCode = c
		return res
	}
	if ts == TimestampMaxTimestamp {
		res.LeaderEpoch = epoch
		// found(t) (a batch below the high watermark with max timestamp
		// >= t) is monotone in t: binary search the largest t it holds
		// for, the log's max timestamp; the first batch reaching it
		// holds the record with the max timestamp.
		lo, hi := int64(-1), int64(1)<<53 // found(lo) assumed, !found(hi)
		if _, ok, err := rep.OffsetForTimestamp(0); err != nil || !ok {
			if err != nil {
				res.ErrorCode = kerr.KafkaStorageError.Code
			}
			return res
		}
		lo = 0
		for hi-lo > 1 {
			mid := lo + (hi-lo)/2
			_, ok, err := rep.OffsetForTimestamp(mid)
			if err != nil {
				res.ErrorCode = kerr.KafkaStorageError.Code
				return res
			}
			if ok {
				lo = mid
			} else {
				hi = mid
			}
		}
		off, ok, err := rep.OffsetForTimestamp(lo)
		if err != nil || !ok {
			return res
		}
		res.Offset, res.Timestamp = off, lo
		return res
	}
	r := n.ListOffsets(ctx, topic, part, ts)
	if r.ErrorCode == 0 && r.LeaderEpoch != epoch {
		if c := fence(currentEpoch, r.LeaderEpoch); c != 0 {
			r = ListOffsetsResult{ErrorCode: c, Offset: -1, Timestamp: -1, LeaderEpoch: -1}
		}
	}
	return r
}

// OffsetForLeaderEpochFenced answers OffsetForLeaderEpoch with Kafka's
// semantics: CurrentLeaderEpoch fencing first (currentEpoch -1: none),
// then the log's epoch cache; a requested epoch above every epoch in the
// log but not above the current leader epoch answers (epoch, log end),
// as Kafka's leader (which records its epoch at election) does; above the
// current epoch, or LeaderEpoch -1, answers (-1, -1) without an error, as
// Kafka's LeaderEpochFileCache.endOffsetFor does.
func (n *Node) OffsetForLeaderEpochFenced(ctx context.Context, topic string, part int32, currentEpoch, epoch int32) EpochEndResult {
	_, rep, cur, code := n.leaderPartition(ctx, topic, part)
	if code != 0 {
		return EpochEndResult{ErrorCode: code, LeaderEpoch: -1, EndOffset: -1}
	}
	if c := fence(currentEpoch, cur); c != 0 {
		return EpochEndResult{ErrorCode: c, LeaderEpoch: -1, EndOffset: -1}
	}
	e, off := rep.OffsetForLeaderEpoch(epoch)
	if e == plog.UndefinedEpoch && epoch >= 0 && epoch <= cur {
		// The log stamps an epoch only when a batch is appended in it;
		// Kafka's leader also records its own epoch at election. A
		// requested epoch after the log's last one and not after ours
		// therefore ends at the log end, as in Kafka.
		return EpochEndResult{LeaderEpoch: epoch, EndOffset: rep.HighWatermark()}
	}
	return EpochEndResult{LeaderEpoch: e, EndOffset: off}
}

// SyncController waits until this node's controller replica has applied
// everything committed before the call (a ReadIndex through the
// controller shard), so that the reads that follow (DescribeConfigs, topic
// lookups) see every admin change acknowledged anywhere in the cluster
// before. On an error the local view is simply older.
func (n *Node) SyncController(ctx context.Context) error {
	if n.closed.Load() {
		return ErrClosed
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	_, err := n.nh.SyncRead(ctx, meta.ControllerShardID, meta.QueryTopic{})
	return err
}
