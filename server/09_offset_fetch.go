package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// OffsetFetch: v1-9
//
// Behaviour:
//   - NOT_COORDINATOR on a broker that is not the coordinator: the group
//     error code (v2+), or every requested partition's code (v1, which has
//     no group-level code).
//   - Offsets come from the coordinator's controller replica, which has
//     applied every commit of earlier coordinator terms (node
//     CoordinatorTerm's barrier) and every commit it answered itself.
//   - A partition without a committed offset: offset -1, leader epoch -1,
//     metadata "", no error (as Kafka). Null topics (v2+): every committed
//     offset of the group.
//   - v5+ committed leader epoch (-1 when committed without one).
//   - v7+ RequireStable (KIP-447): a partition with an offset staged by
//     TxnOffsetCommit in an ongoing or preparing transaction answers
//     UNSTABLE_OFFSET_COMMIT (offset -1), and the consumer retries until
//     the transaction ends. Without RequireStable the last committed
//     offset is answered, as in Kafka.
//   - v8+ several groups per request, each with its own code.
//   - v9 member id / member epoch (KIP-848): for a consumer-protocol group
//     held here the member must be known (UNKNOWN_MEMBER_ID) and send its
//     epoch or the previous one (STALE_MEMBER_EPOCH); classic groups and
//     groups not held here are not checked.
//
// Version notes: v0 (ZooKeeper offsets) not served (KIP-896); v2
// group-level error, null topics; v3 throttle; v5 leader epoch; v6
// flexible; v7 require stable; v8 groups batch; v9 KIP-848 member.

const offsetFetchKey = 9

func init() {
	register(API{Key: offsetFetchKey, MinVersion: 1, MaxVersion: 9, Handler: handleOffsetFetch})
}

// fetchedPartition is one partition's answer.
type fetchedPartition struct {
	partition int32
	val       meta.OffsetValue
	code      int16
}

type fetchedTopic struct {
	topic string
	parts []fetchedPartition
}

// fetchGroupOffsets answers one group. topics nil means every committed
// offset; requested partitions keep the request's order.
// fetchGroupOffsets applies the authorizer to fetchGroupOffsetsOf: the
// group needs DESCRIBE (GROUP_AUTHORIZATION_FAILED); a listed topic
// without DESCRIBE answers TOPIC_AUTHORIZATION_FAILED, and when every
// topic is asked for such topics are left out, as Kafka.
func fetchGroupOffsets(ctx context.Context, rc *RequestContext, grp string, topics map[string][]int32, order []string, requireStable bool) ([]fetchedTopic, int16, error) {
	if code := rc.groupDenied(kmsg.ACLOperationDescribe, grp); code != 0 {
		return nil, code, nil
	}
	fts, code, err := fetchGroupOffsetsOf(ctx, rc, grp, topics, order)
	if requireStable && err == nil && code == 0 {
		markUnstable(rc, grp, fts)
	}
	if !rc.authorizerOn() || err != nil || code != 0 {
		return fts, code, err
	}
	out := fts[:0]
	for _, ft := range fts {
		if rc.topicDenied(kmsg.ACLOperationDescribe, ft.topic) != 0 {
			if topics == nil {
				continue
			}
			for i := range ft.parts {
				ft.parts[i].val = meta.OffsetValue{Offset: -1, LeaderEpoch: -1}
				ft.parts[i].code = kerr.TopicAuthorizationFailed.Code
			}
		}
		out = append(out, ft)
	}
	return out, code, err
}

// markUnstable answers UNSTABLE_OFFSET_COMMIT for the partitions with an
// offset of grp staged in a transaction not yet complete.
func markUnstable(rc *RequestContext, grp string, fts []fetchedTopic) {
	pending := rc.Broker.Node.PendingTxnOffsets(grp)
	if len(pending) == 0 {
		return
	}
	for _, ft := range fts {
		for i, fp := range ft.parts {
			if fp.code == 0 && pending[meta.TopicPartition{Topic: ft.topic, Partition: fp.partition}] {
				ft.parts[i].val = meta.OffsetValue{Offset: -1, LeaderEpoch: -1}
				ft.parts[i].code = kerr.UnstableOffsetCommit.Code
			}
		}
	}
}

func fetchGroupOffsetsOf(ctx context.Context, rc *RequestContext, grp string, topics map[string][]int32, order []string) ([]fetchedTopic, int16, error) {
	_, _, code, err := groupCoordinator(ctx, rc, grp)
	if err != nil || code != 0 {
		return nil, code, err
	}
	offs, ferr := rc.Broker.Node.FetchOffsets(grp)
	if ferr != nil {
		return nil, kerr.CoordinatorNotAvailable.Code, nil
	}
	var out []fetchedTopic
	if topics == nil {
		for _, o := range offs {
			if len(out) == 0 || out[len(out)-1].topic != o.Topic {
				out = append(out, fetchedTopic{topic: o.Topic})
			}
			t := &out[len(out)-1]
			t.parts = append(t.parts, fetchedPartition{partition: o.Partition, val: o.OffsetValue})
		}
		return out, 0, nil
	}
	type tp struct {
		t string
		p int32
	}
	byTP := make(map[tp]meta.OffsetValue, len(offs))
	for _, o := range offs {
		byTP[tp{o.Topic, o.Partition}] = o.OffsetValue
	}
	for _, name := range order {
		ft := fetchedTopic{topic: name}
		for _, p := range topics[name] {
			v, ok := byTP[tp{name, p}]
			if !ok {
				v = meta.OffsetValue{Offset: -1, LeaderEpoch: -1}
			}
			ft.parts = append(ft.parts, fetchedPartition{partition: p, val: v})
		}
		out = append(out, ft)
	}
	return out, 0, nil
}

func handleOffsetFetch(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	if req.Version >= 8 {
		for _, g := range req.Groups {
			var topics map[string][]int32
			var order []string
			if g.Topics != nil {
				topics = map[string][]int32{}
				for _, t := range g.Topics {
					if _, dup := topics[t.Topic]; !dup {
						order = append(order, t.Topic)
					}
					topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
				}
			}
			fts, code, err := fetchGroupOffsets(ctx, rc, g.Group, topics, order, req.RequireStable)
			if err != nil {
				return nil, err
			}
			if code == 0 && req.Version >= 9 && g.MemberID != nil && g.MemberEpoch >= 0 {
				if mc := rc.Broker.Groups.ValidateConsumerFetch(g.Group, *g.MemberID, g.MemberEpoch); mc != 0 {
					fts, code = nil, mc
				}
			}
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			for _, ft := range fts {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic = ft.topic
				for _, fp := range ft.parts {
					rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					md := fp.val.Metadata
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = fp.partition, fp.val.Offset, fp.val.LeaderEpoch, &md, fp.code
					rt.Partitions = append(rt.Partitions, rp)
				}
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp, nil
	}
	var topics map[string][]int32
	var order []string
	if req.Topics != nil || req.Version < 2 {
		topics = map[string][]int32{}
		for _, t := range req.Topics {
			if _, dup := topics[t.Topic]; !dup {
				order = append(order, t.Topic)
			}
			topics[t.Topic] = append(topics[t.Topic], t.Partitions...)
		}
	}
	fts, code, err := fetchGroupOffsets(ctx, rc, req.Group, topics, order, req.Version >= 7 && req.RequireStable)
	if err != nil {
		return nil, err
	}
	if code != 0 && req.Version < 2 {
		// v1 has no group-level code: every requested partition carries it.
		for _, name := range order {
			ft := fetchedTopic{topic: name}
			for _, p := range topics[name] {
				ft.parts = append(ft.parts, fetchedPartition{partition: p, val: meta.OffsetValue{Offset: -1, LeaderEpoch: -1}, code: code})
			}
			fts = append(fts, ft)
		}
	}
	resp.ErrorCode = code
	for _, ft := range fts {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = ft.topic
		for _, fp := range ft.parts {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			md := fp.val.Metadata
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = fp.partition, fp.val.Offset, fp.val.LeaderEpoch, &md, fp.code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
