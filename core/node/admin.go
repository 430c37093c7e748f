package node

import (
	"context"
	"errors"

	"github.com/lni/dragonboat/v4"
	"github.com/pingcap/failpoint"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

// TopicSpec is one topic to create. Partitions <= 0 and
// ReplicationFactor <= 0 take the node's defaults.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           []meta.ConfigEntry
}

// TopicResult is the outcome for one topic of an admin request.
type TopicResult struct {
	Name      string
	ErrorCode int16
	Message   string
	Topic     *meta.Topic // the topic after the change, when there is one
}

// metaCode maps a controller proposal's Go error to a Kafka code.
func metaCode(ctx context.Context, err error) int16 {
	switch {
	case errors.Is(err, ErrClosed):
		return kerr.NotController.Code
	case ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, dragonboat.ErrTimeout):
		return kerr.RequestTimedOut.Code
	default:
		return kerr.NotController.Code
	}
}

func (n *Node) topicResult(ctx context.Context, name string, cmd meta.Command) TopicResult {
	r, err := n.proposeMeta(ctx, cmd)
	if err != nil {
		return TopicResult{Name: name, ErrorCode: metaCode(ctx, err), Message: err.Error()}
	}
	return TopicResult{Name: name, ErrorCode: r.Code, Message: r.Message, Topic: r.Topic}
}

func (n *Node) createCommand(s TopicSpec) meta.CreateTopic {
	c := meta.CreateTopic{Name: s.Name, Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor, Configs: s.Configs}
	if c.Partitions <= 0 {
		c.Partitions = n.cfg.DefaultPartitions
	}
	if c.ReplicationFactor <= 0 {
		c.ReplicationFactor = n.cfg.DefaultReplicationFactor
	}
	return c
}

// CreateTopics creates each topic through the controller, in order.
// validateOnly checks names against the local view and proposes nothing.
func (n *Node) CreateTopics(ctx context.Context, specs []TopicSpec, validateOnly bool) []TopicResult {
	out := make([]TopicResult, 0, len(specs))
	for _, s := range specs {
		if validateOnly {
			r := TopicResult{Name: s.Name}
			if n.view().Topic(s.Name) != nil {
				r.ErrorCode = kerr.TopicAlreadyExists.Code
			}
			out = append(out, r)
			continue
		}
		out = append(out, n.topicResult(ctx, s.Name, n.createCommand(s)))
	}
	return out
}

// autoCreate creates topic with the defaults; failures (a concurrent
// creation included) are left to the caller's next lookup.
func (n *Node) autoCreate(ctx context.Context, topic string) {
	r := n.topicResult(ctx, topic, n.createCommand(TopicSpec{Name: topic}))
	if r.ErrorCode != 0 && r.ErrorCode != kerr.TopicAlreadyExists.Code {
		n.log.Debug("auto-create topic", "topic", topic, "code", r.ErrorCode, "msg", r.Message)
	}
}

// DeleteTopics deletes topics by name, in order.
func (n *Node) DeleteTopics(ctx context.Context, names []string) []TopicResult {
	out := make([]TopicResult, 0, len(names))
	for _, name := range names {
		out = append(out, n.topicResult(ctx, name, meta.DeleteTopic{Name: name}))
	}
	return out
}

// CreatePartitions raises partition counts, in order.
func (n *Node) CreatePartitions(ctx context.Context, reqs []meta.CreatePartitions) []TopicResult {
	out := make([]TopicResult, 0, len(reqs))
	for _, c := range reqs {
		out = append(out, n.topicResult(ctx, c.Topic, c))
	}
	return out
}

// AlterConfigs applies incremental config changes, per topic all or
// nothing, in order.
func (n *Node) AlterConfigs(ctx context.Context, reqs []meta.AlterConfigs) []TopicResult {
	out := make([]TopicResult, 0, len(reqs))
	for _, c := range reqs {
		out = append(out, n.topicResult(ctx, c.Topic, c))
	}
	return out
}

// TopicConfigs is DescribeConfigs' answer for one topic: the keys set on
// it (defaults are the front end's business).
type TopicConfigs struct {
	Name      string
	ErrorCode int16
	Configs   []meta.ConfigEntry
}

// DescribeConfigs reads topic configs from the local controller replica.
func (n *Node) DescribeConfigs(names []string) []TopicConfigs {
	v := n.view()
	out := make([]TopicConfigs, 0, len(names))
	for _, name := range names {
		t := v.Topic(name)
		if t == nil {
			out = append(out, TopicConfigs{Name: name, ErrorCode: kerr.UnknownTopicOrPartition.Code})
			continue
		}
		out = append(out, TopicConfigs{Name: name, Configs: t.Configs})
	}
	return out
}

// InitProducerID hands out a producer id (epoch 0) from a per-node cache
// of blocks allocated by the controller. code is a Kafka error code.
func (n *Node) InitProducerID(ctx context.Context) (producerID int64, epoch int16, code int16) {
	if id, ok := n.takePID(); ok {
		return id, 0, 0
	}
	r, err := n.proposeMeta(ctx, meta.AllocateProducerIDs{Count: pidBlockSize})
	if err != nil {
		return -1, -1, metaCode(ctx, err)
	}
	if r.Code != 0 {
		return -1, -1, r.Code
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// A concurrent caller may have refilled too; the surplus block is
	// simply skipped (ids are plentiful, reuse is what must not happen).
	n.pidNext, n.pidEnd = r.ProducerIDs.First+1, r.ProducerIDs.First+int64(r.ProducerIDs.Count)
	return r.ProducerIDs.First, 0, 0
}

func (n *Node) takePID() (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pidNext < n.pidEnd {
		n.pidNext++
		return n.pidNext - 1, true
	}
	return 0, false
}

// CommitOffsets commits group offsets through the group's shard, all or
// nothing (a partition missing from the view: UNKNOWN_TOPIC_OR_PARTITION
// for it, nothing committed); CommitTimestampMs 0 takes the node's clock.
// One code per partition, in request order.
func (n *Node) CommitOffsets(ctx context.Context, c meta.CommitOffsets) []meta.PartitionCode {
	if c.CommitTimestampMs == 0 {
		c.CommitTimestampMs = n.cfg.Clock.Now().UnixMilli()
	}
	failpoint.Inject("commitOffsetsBeforePropose", func() { failpoint.Return(commitCodes(c, metaCode(ctx, errFailpoint))) })
	if bad := n.checkCommitTopics(ctx, c); bad != nil {
		return bad
	}
	g, err := n.awaitGroupShard(ctx, c.Group)
	var r meta.Result
	if err == nil {
		r, err = n.proposeGroup(ctx, g.ShardID, c)
	}
	failpoint.Inject("commitOffsetsAfterPropose", func() { r, err = meta.Result{}, errFailpoint })
	if err == nil && len(r.Partitions) == len(c.Offsets) {
		return r.Partitions
	}
	code := r.Code
	if err != nil {
		code = groupCode(ctx, err)
		if errors.Is(err, errFailpoint) {
			code = metaCode(ctx, err)
		}
	}
	return commitCodes(c, code)
}

// commitCodes answers code for every partition of c.
func commitCodes(c meta.CommitOffsets, code int16) []meta.PartitionCode {
	out := make([]meta.PartitionCode, len(c.Offsets))
	for i, o := range c.Offsets {
		out[i] = meta.PartitionCode{Topic: o.Topic, Partition: o.Partition, Code: code}
	}
	return out
}

// FetchOffsets returns the group's committed offsets from the local
// replica of its shard (after this node's own commit returned, they
// include it), without those of deleted topics; before group shards
// exist, from the controller's. Sorted by topic and partition.
func (n *Node) FetchOffsets(group string) ([]meta.GroupOffset, error) {
	v, err := n.groupRead(group, meta.QueryGroupOffsets{Group: group})
	if err != nil {
		return nil, err
	}
	return n.liveOffsets(v.([]meta.GroupOffset)), nil
}

// DeleteGroups deletes every committed offset of each group, through
// each group's shard. One code per group, in order.
func (n *Node) DeleteGroups(ctx context.Context, groups []string) []meta.GroupCode {
	out := make([]meta.GroupCode, len(groups))
	byShard := map[uint64][]int{}
	for i, grp := range groups {
		out[i].Group = grp
		g, err := n.awaitGroupShard(ctx, grp)
		if err != nil {
			out[i].Code = groupCode(ctx, err)
			continue
		}
		byShard[g.ShardID] = append(byShard[g.ShardID], i)
	}
	for _, shard := range sortedIDs(byShard) {
		idx := byShard[shard]
		cmd := meta.DeleteGroups{}
		for _, i := range idx {
			cmd.Groups = append(cmd.Groups, groups[i])
		}
		r, err := n.proposeGroup(ctx, shard, cmd)
		for k, i := range idx {
			switch {
			case err != nil:
				out[i].Code = groupCode(ctx, err)
			case len(r.Groups) == len(idx):
				out[i].Code = r.Groups[k].Code
			default:
				out[i].Code = r.Code
			}
		}
	}
	return out
}

// DeleteOffsets deletes some committed offsets of a group.
func (n *Node) DeleteOffsets(ctx context.Context, c meta.DeleteOffsets) (int16, []meta.PartitionCode) {
	g, err := n.awaitGroupShard(ctx, c.Group)
	if err != nil {
		return groupCode(ctx, err), nil
	}
	v := n.view()
	var unknown []int
	for i, tp := range c.Partitions {
		if _, ok := partitionOf(v, tp.Topic, tp.Partition); !ok {
			unknown = append(unknown, i)
		}
	}
	r, err := n.proposeGroup(ctx, g.ShardID, c)
	if err != nil {
		return groupCode(ctx, err), nil
	}
	if len(r.Partitions) == len(c.Partitions) {
		for _, i := range unknown {
			r.Partitions[i].Code = kerr.UnknownTopicOrPartition.Code
		}
	}
	return r.Code, r.Partitions
}
