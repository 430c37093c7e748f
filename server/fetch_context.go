package server

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/meta"
)

// How a Fetch request uses sessions (Kafka's FetchContext kinds).
type fetchKind int

const (
	// fetchSessionless: a full fetch answered SessionID 0 (v4-6,
	// SessionEpoch -1, or an incremental fetch that emptied its session).
	fetchSessionless fetchKind = iota
	// fetchFull: SessionEpoch 0, a full fetch that opens a session.
	fetchFull
	// fetchIncremental: SessionEpoch > 0 on a cached session.
	fetchIncremental
)

// fetchContext is what a Fetch request reads and how it is answered.
type fetchContext struct {
	kind  fetchKind
	code  int16 // a top-level session error: no partitions are read
	parts []*fetchPart
	// incremental: the session and its partitions, parallel to parts.
	sessionID int32
	snap      []cachedPart
}

// openFetchContext applies the request's session fields (Kafka's
// FetchManager.newContext): any full fetch closes the session it names;
// epoch 0 then opens a new one once answered; epoch -1 stays sessionless;
// any other epoch is an incremental fetch on a cached session.
func openFetchContext(rc *RequestContext, req *kmsg.FetchRequest) *fetchContext {
	cache := rc.Broker.fetchSessions
	if req.Version < 7 {
		return &fetchContext{kind: fetchSessionless, parts: requestParts(rc, req)}
	}
	switch req.SessionEpoch {
	case -1, 0:
		if req.SessionID != 0 {
			cache.remove(req.SessionID)
		}
		kind := fetchFull
		if req.SessionEpoch == -1 {
			kind = fetchSessionless
		}
		return &fetchContext{kind: kind, parts: requestParts(rc, req)}
	}
	snap, code, sessionless := cache.incremental(req.SessionID, sessionChanges(rc, req))
	switch {
	case code != 0:
		return &fetchContext{code: code}
	case sessionless:
		return &fetchContext{kind: fetchSessionless, parts: requestParts(rc, req)}
	}
	fc := &fetchContext{kind: fetchIncremental, sessionID: req.SessionID, snap: snap}
	for i := range snap {
		fp := sessionPart(rc, &snap[i], req.Version >= 13)
		// Authorized on every fetch, as Kafka does for a session's
		// partitions: an ACL removed meanwhile takes effect at once.
		if !fp.failed && rc.topicDenied(kmsg.ACLOperationRead, fp.topic) != 0 {
			fp.fail(kerr.TopicAuthorizationFailed.Code)
		}
		fc.parts = append(fc.parts, fp)
	}
	return fc
}

// sessionChanges reads an incremental request's partitions and forgotten
// topics, keyed as its session keys them (topic id at v13+).
func sessionChanges(rc *RequestContext, req *kmsg.FetchRequest) sessionUpdate {
	u := sessionUpdate{version: req.Version, epoch: req.SessionEpoch}
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		name := rt.Topic
		if req.Version >= 13 {
			name, _ = rc.Broker.Node.TopicName(meta.TopicID(rt.TopicID))
		}
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			u.set = append(u.set, sessionSet{key: sessionKeyOf(req.Version, rt.Topic, rt.TopicID, rp.Partition), name: name, req: rp})
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, p := range ft.Partitions {
			u.forget = append(u.forget, sessionKeyOf(req.Version, ft.Topic, ft.TopicID, p))
		}
	}
	return u
}

func sessionKeyOf(version int16, topic string, id [16]byte, part int32) sessionKey {
	if version >= 13 {
		return sessionKey{id: id, part: part}
	}
	return sessionKey{topic: topic, part: part}
}

// sessionPart makes the read of one session partition. A topic-id
// session's partition is read by its id's current name; when the id no
// longer resolves, as in Kafka: UNKNOWN_TOPIC_ID if it never did,
// INCONSISTENT_TOPIC_ID if its name now belongs to a new topic, else
// UNKNOWN_TOPIC_OR_PARTITION (the topic was deleted).
func sessionPart(rc *RequestContext, cp *cachedPart, usesIDs bool) *fetchPart {
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = cp.key.part, cp.fetchOffset, cp.partMaxBytes, cp.leaderEpoch
	if !usesIDs {
		return newFetchPart(cp.key.topic, &rp)
	}
	n := rc.Broker.Node
	name, ok := n.TopicName(meta.TopicID(cp.key.id))
	fp := newFetchPart(name, &rp)
	switch {
	case ok:
	case cp.name == "":
		fp.fail(kerr.UnknownTopicID.Code)
	default:
		if _, exists := n.TopicID(cp.name); exists {
			fp.fail(kerr.InconsistentTopicID.Code)
		} else {
			fp.fail(kerr.UnknownTopicOrPartition.Code)
		}
	}
	return fp
}

// answer fills resp's partitions and session id once the partitions are
// read: a full fetch answers every requested partition in the request's
// shape (and, epoch 0, opens a session over them); an incremental fetch
// answers only the session partitions with something new, in session
// order, a response topic per run of partitions of one topic (as Kafka's
// FetchResponse.of).
func (fc *fetchContext) answer(rc *RequestContext, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) {
	switch fc.kind {
	case fetchSessionless:
		mirrorRequest(req, fc.parts, resp)
	case fetchFull:
		mirrorRequest(req, fc.parts, resp)
		resp.SessionID = rc.Broker.fetchSessions.create(req.Version >= 13, fullSessionParts(req, fc.parts))
	case fetchIncremental:
		resp.SessionID = fc.sessionID
		answers := make([]*kmsg.FetchResponseTopicPartition, len(fc.parts))
		for i, fp := range fc.parts {
			answers[i] = fp.resp
		}
		carry := rc.Broker.fetchSessions.finish(fc.sessionID, fc.snap, answers)
		var last *sessionKey
		for i, fp := range fc.parts {
			if !carry[i] {
				continue
			}
			k := &fc.snap[i].key
			if last == nil || last.id != k.id || last.topic != k.topic {
				st := kmsg.NewFetchResponseTopic()
				st.Topic, st.TopicID = k.topic, k.id
				resp.Topics = append(resp.Topics, st)
				last = k
			}
			st := &resp.Topics[len(resp.Topics)-1]
			st.Partitions = append(st.Partitions, *fp.resp)
		}
	}
}

// fullSessionParts makes a new session's partitions from a full fetch:
// request order, a partition named twice kept once at its first place with
// its last parameters (as Kafka's LinkedHashMap of fetch data), each
// remembering what this response said about it.
func fullSessionParts(req *kmsg.FetchRequest, parts []*fetchPart) []*cachedPart {
	var out []*cachedPart
	index := map[sessionKey]*cachedPart{}
	i := 0
	for ti := range req.Topics {
		rt := &req.Topics[ti]
		for pi := range rt.Partitions {
			fp := parts[i]
			i++
			k := sessionKeyOf(req.Version, rt.Topic, rt.TopicID, rt.Partitions[pi].Partition)
			cp := index[k]
			if cp == nil {
				cp = &cachedPart{key: k, name: fp.topic}
				index[k] = cp
				out = append(out, cp)
			}
			cp.updateRequest(fp.req)
			cp.respond(fp.resp, true)
		}
	}
	return out
}
