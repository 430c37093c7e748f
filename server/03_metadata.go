package server

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// Metadata: v0-12
//
// Behaviour:
//   - Brokers: every registered broker with the host, port and rack it
//     advertised (node.Config.Host/Port/Rack; never 0.0.0.0 unless
//     configured so). A partition leader is always one of them, or -1 with
//     LEADER_NOT_AVAILABLE (core/node guarantees it).
//   - ClusterID (v2+): node.ClusterID, "chronik-" + a hash of the
//     controller's voters (fixed at bootstrap): stable across restarts
//     and equal on every node. ControllerID (v1+): the controller shard's
//     leader, -1 if unknown.
//   - Topics: null (v1+) or an empty array at v0 means every topic; an
//     empty array at v1+ means none. Every topic includes
//     __consumer_offsets, IsInternal true, one partition led by the group
//     coordinator, holding nothing (internal_topic.go); it is also answered
//     when asked for by name, and never created. TopicID (v10+), IsInternal false,
//     partitions with leader, LeaderEpoch (v7+, the Raft term), replicas,
//     ISR (on the partition's leader: the replicas caught up within
//     replica.lag.time.max.ms; elsewhere the replica list, see core/node's
//     "In-sync replicas"), OfflineReplicas (v5+).
//   - A missing topic is auto-created only if the request allows it
//     (AllowAutoTopicCreation, v4+; always allowed below v4, as in Kafka)
//     and the node's AutoCreateTopics is on; otherwise
//     UNKNOWN_TOPIC_OR_PARTITION. An invalid name is INVALID_TOPIC_EXCEPTION
//     and is never created.
//   - v12: a topic requested by id (null name) is answered with its name,
//     or UNKNOWN_TOPIC_ID. Below v12 a null name or a non-zero id is
//     INVALID_REQUEST for that topic (Kafka fails the whole request).
//   - v8+: topic authorized operations, when requested, are what the
//     principal may do (every topic operation without an authorizer),
//     -2147483648 otherwise; v8-10 cluster authorized operations likewise.
//   - With ACLs (acl.go): a topic the principal may not DESCRIBE is
//     TOPIC_AUTHORIZATION_FAILED by name and left out of "every topic"; a
//     missing topic is auto-created only with CREATE on the cluster or the
//     topic (else TOPIC_AUTHORIZATION_FAILED).
//
// Version notes: v1 ControllerID, IsInternal, null topics; v2 ClusterID;
// v3 ThrottleMillis; v4 AllowAutoTopicCreation; v5 OfflineReplicas; v7
// LeaderEpoch; v8 authorized operations; v9 flexible; v10 TopicID; v11
// drops cluster authorized operations; v12 topics by id.

const metadataKey = 3

func init() {
	register(API{Key: metadataKey, MinVersion: 0, MaxVersion: 12, Handler: handleMetadata})
}

// errNoBroker is returned by handlers that need a node when the server
// runs without one (wire-layer tests): the connection is closed.
var errNoBroker = errors.New("server: no broker behind this server")

// Authorized operations without ACLs: every operation (kmsg.ACLOperation
// bit positions).
const (
	admTopicOps = 1<<int(kmsg.ACLOperationRead) | 1<<int(kmsg.ACLOperationWrite) |
		1<<int(kmsg.ACLOperationCreate) | 1<<int(kmsg.ACLOperationDelete) |
		1<<int(kmsg.ACLOperationAlter) | 1<<int(kmsg.ACLOperationDescribe) |
		1<<int(kmsg.ACLOperationDescribeConfigs) | 1<<int(kmsg.ACLOperationAlterConfigs)
	admClusterOps = 1<<int(kmsg.ACLOperationCreate) | 1<<int(kmsg.ACLOperationAlter) |
		1<<int(kmsg.ACLOperationDescribe) | 1<<int(kmsg.ACLOperationClusterAction) |
		1<<int(kmsg.ACLOperationDescribeConfigs) | 1<<int(kmsg.ACLOperationAlterConfigs) |
		1<<int(kmsg.ACLOperationIdempotentWrite)
	admOpsNotRequested = -2147483648
)

// admValidTopicName is Kafka's topic name rule: 1..249 characters of
// [a-zA-Z0-9._-], and not "." or "..".
func admValidTopicName(name string) bool {
	if len(name) == 0 || len(name) > meta.TopicNameLenMax || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// admMsg returns a pointer to msg, or nil for "".
func admMsg(msg string) *string {
	if msg == "" {
		return nil
	}
	return &msg
}

// admCodeMsg returns msg, or the code's Kafka description for a failure
// without one.
func admCodeMsg(code int16, msg string) *string {
	if code == 0 {
		return nil
	}
	if msg == "" {
		if e := kerr.ErrorForCode(code); e != nil {
			msg = e.Error()
		}
	}
	return admMsg(msg)
}

func handleMetadata(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	n := rc.Broker.Node
	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation

	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	// slots: one answer per requested topic, in request order.
	type slot struct {
		name     string
		id       [16]byte
		code     int16
		lookup   bool
		internal bool // offsetsTopic (internal_topic.go)
	}
	var slots []slot
	var names []string
	if !all {
		slots = make([]slot, 0, len(req.Topics))
		names = []string{}
		seen := map[string]bool{}
		for _, t := range req.Topics {
			s := slot{id: t.TopicID}
			switch {
			case t.Topic == nil && req.Version < 12, t.TopicID != [16]byte{} && req.Version < 12,
				t.Topic != nil && t.TopicID != [16]byte{}:
				s.code = kerr.InvalidRequest.Code
				if t.Topic != nil {
					s.name = *t.Topic
				}
			case t.Topic == nil:
				name, ok := n.TopicName(meta.TopicID(t.TopicID))
				if !ok {
					s.code = kerr.UnknownTopicID.Code
				} else {
					s.name, s.lookup = name, true
				}
			default:
				s.name = *t.Topic
				if !admValidTopicName(s.name) {
					s.code = kerr.InvalidTopicException.Code
				} else {
					s.lookup = true
				}
			}
			if s.lookup && s.name == offsetsTopic {
				s.lookup, s.internal = false, true // never looked up or auto-created
			}
			if s.lookup && !seen[s.name] {
				seen[s.name] = true
				names = append(names, s.name)
			}
			slots = append(slots, s)
		}
	}

	// With ACLs: a topic the principal may not DESCRIBE is answered
	// TOPIC_AUTHORIZATION_FAILED (and, listing all, left out); a missing
	// topic is auto-created only with CREATE on the cluster or the topic.
	denied := map[string]bool{}
	var mayCreate, noCreate []string
	for _, name := range names {
		switch {
		case rc.topicDenied(kmsg.ACLOperationDescribe, name) != 0:
			denied[name] = true
		case !allowCreate || rc.mayCreateTopic(name):
			mayCreate = append(mayCreate, name)
		default:
			noCreate = append(noCreate, name)
		}
	}
	var cv node.ClusterView
	switch {
	case all:
		cv = n.MetadataWith(ctx, nil, false)
	case len(noCreate) == 0:
		cv = n.MetadataWith(ctx, orNone(mayCreate), allowCreate)
	default:
		cv = n.MetadataWith(ctx, noCreate, false)
		if len(mayCreate) > 0 {
			cv.Topics = append(cv.Topics, n.MetadataWith(ctx, mayCreate, allowCreate).Topics...)
		}
	}
	createDenied := map[string]bool{}
	for _, name := range noCreate {
		createDenied[name] = true
	}

	for _, b := range cv.Brokers {
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = b.NodeID, b.Host, b.Port
		if b.Rack != "" {
			rack := b.Rack
			mb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	cid := n.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = cv.ControllerID
	resp.AuthorizedOperations = admOpsNotRequested
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = admOps(rc, kmsg.ACLResourceTypeCluster, clusterResource)
	}

	byName := make(map[string]node.TopicMetadata, len(cv.Topics))
	for _, t := range cv.Topics {
		byName[t.Name] = t
	}
	topic := func(tm node.TopicMetadata) kmsg.MetadataResponseTopic {
		mt := kmsg.NewMetadataResponseTopic()
		name := tm.Name
		mt.Topic, mt.ErrorCode, mt.TopicID = &name, tm.ErrorCode, tm.ID
		mt.IsInternal = tm.Name == offsetsTopic
		mt.AuthorizedOperations = admOpsNotRequested
		if req.IncludeTopicAuthorizedOperations {
			mt.AuthorizedOperations = admOps(rc, kmsg.ACLResourceTypeTopic, name)
		}
		for _, p := range tm.Partitions {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.ErrorCode, mp.Partition, mp.Leader, mp.LeaderEpoch = p.ErrorCode, p.Partition, p.Leader, p.LeaderEpoch
			mp.Replicas, mp.ISR, mp.OfflineReplicas = orEmpty(p.Replicas), orEmpty(p.ISR), orEmpty(p.OfflineReplicas)
			mt.Partitions = append(mt.Partitions, mp)
		}
		return mt
	}
	if all {
		listed := false
		for _, tm := range cv.Topics {
			if tm.Name == offsetsTopic {
				continue // a topic of that name from before it was reserved
			}
			if !listed && tm.Name > offsetsTopic {
				listed = true
				if rc.topicDenied(kmsg.ACLOperationDescribe, offsetsTopic) == 0 {
					resp.Topics = append(resp.Topics, topic(offsetsTopicMetadata(cv)))
				}
			}
			if rc.topicDenied(kmsg.ACLOperationDescribe, tm.Name) == 0 {
				resp.Topics = append(resp.Topics, topic(tm))
			}
		}
		if !listed && rc.topicDenied(kmsg.ACLOperationDescribe, offsetsTopic) == 0 {
			resp.Topics = append(resp.Topics, topic(offsetsTopicMetadata(cv)))
		}
		return resp, nil
	}
	for _, s := range slots {
		if s.internal {
			tm := offsetsTopicMetadata(cv)
			if rc.topicDenied(kmsg.ACLOperationDescribe, offsetsTopic) != 0 {
				tm = node.TopicMetadata{Name: offsetsTopic, ErrorCode: kerr.TopicAuthorizationFailed.Code}
			}
			resp.Topics = append(resp.Topics, topic(tm))
			continue
		}
		if !s.lookup {
			mt := kmsg.NewMetadataResponseTopic()
			if s.name != "" || req.Version < 12 {
				name := s.name
				mt.Topic = &name
			}
			mt.ErrorCode, mt.TopicID = s.code, s.id
			mt.AuthorizedOperations = admOpsNotRequested
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		tm, ok := byName[s.name]
		switch {
		case denied[s.name]:
			tm = node.TopicMetadata{Name: s.name, ErrorCode: kerr.TopicAuthorizationFailed.Code}
		case !ok && createDenied[s.name]:
			tm = node.TopicMetadata{Name: s.name, ErrorCode: kerr.TopicAuthorizationFailed.Code}
		case !ok:
			tm = node.TopicMetadata{Name: s.name, ErrorCode: kerr.UnknownTopicOrPartition.Code}
		}
		resp.Topics = append(resp.Topics, topic(tm))
	}
	return resp, nil
}

func orEmpty(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// orNone returns names, or an empty (not nil: nil means every topic) list.
func orNone(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// admOps is the authorized-operations field of a resource: every
// operation without an authorizer, else what rc's principal may do.
func admOps(rc *RequestContext, typ kmsg.ACLResourceType, name string) int32 {
	if !rc.authorizerOn() {
		switch typ {
		case kmsg.ACLResourceTypeTopic:
			return admTopicOps
		case kmsg.ACLResourceTypeCluster:
			return admClusterOps
		}
	}
	return rc.authorizedOps(typ, name)
}
