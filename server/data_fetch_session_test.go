package server

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFetchSessions: fetch sessions (KIP-227) on the wire, against one
// broker whose cache holds 3 sessions. Every request goes on a fresh
// connection: sessions belong to the node, not to a connection.
func TestFetchSessions(t *testing.T) {
	c := startClusterWith(t, 1, nil, func(bc *BrokerConfig) { bc.FetchSessions.Slots = 3 })
	t.Run("topic-ids", func(t *testing.T) { testFetchSessionTopicIDs(t, c) })
	t.Run("names", func(t *testing.T) { testFetchSessionNames(t, c) })
	t.Run("cache-full", func(t *testing.T) { testFetchSessionCacheFull(t, c) })
	t.Run("pipelined", func(t *testing.T) { testFetchSessionPipelined(t, c) })
}

// sessionPartition is one partition of a fetch response, flattened.
type sessionPartition struct {
	topic   string
	topicID [16]byte
	p       kmsg.FetchResponseTopicPartition
}

func flatten(resp *kmsg.FetchResponse) []sessionPartition {
	var out []sessionPartition
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			out = append(out, sessionPartition{rt.Topic, rt.TopicID, p})
		}
	}
	return out
}

// sessionFetch sends one fetch of session id at epoch (maxWait 0 answers
// at once; a positive one waits for a byte), naming specs and forgetting
// forget.
func sessionFetch(t *testing.T, addr string, version int16, id, epoch, maxWait int32, forget []kmsg.FetchRequestForgottenTopic, specs ...fetchSpec) *kmsg.FetchResponse {
	t.Helper()
	minBytes := int32(0)
	if maxWait > 0 {
		minBytes = 1
	}
	req := rawFetchReq(version, maxWait, minBytes, 1<<20, specs...)
	req.SessionID, req.SessionEpoch, req.ForgottenTopics = id, epoch, forget
	return rawRoundTrip(t, addr, req).(*kmsg.FetchResponse)
}

func forgetIDs(id [16]byte, parts ...int32) []kmsg.FetchRequestForgottenTopic {
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.TopicID, ft.Partitions = id, parts
	return []kmsg.FetchRequestForgottenTopic{ft}
}

// testFetchSessionTopicIDs walks one v16 session through its life: open,
// incremental fetches with no change, new data, a long poll, session
// errors, forgotten partitions, an unknown topic id, and closing.
func testFetchSessionTopicIDs(t *testing.T, c *testCluster) {
	topic := "fs"
	c.createTopic(topic, 3)
	addr := c.addrs[1]
	id := c.topicID(topic)
	produce := func(p int32, vals ...string) {
		t.Helper()
		if r := rawProduce(t, addr, 9, -1, topic, p, rawBatch(-1, 0, 0, vals...)); r.ErrorCode != 0 {
			t.Fatalf("produce: %+v", r)
		}
	}
	at := func(p int32, off int64) fetchSpec { return fetchSpec{topicID: id, part: p, offset: off} }
	produce(0, "a")
	produce(1, "b", "c")
	m := c.broker(1).Metrics()
	incBefore := m.fetchIncremental.Load()

	// Open: a full answer with a new session id.
	resp := sessionFetch(t, addr, 16, 0, 0, 0, nil, at(0, 0), at(1, 0), at(2, 0))
	sid := resp.SessionID
	got := flatten(resp)
	if resp.ErrorCode != 0 || sid == 0 || len(got) != 3 || got[0].p.HighWatermark != 1 || got[1].p.HighWatermark != 2 || got[2].p.HighWatermark != 0 || len(got[1].p.RecordBatches) == 0 {
		t.Fatalf("open: %+v", resp)
	}
	if m.fetchSessions.Load() != 1 {
		t.Fatalf("%d sessions in the gauge", m.fetchSessions.Load())
	}
	// Epoch 1 moves p0 and p1 to their ends: nothing changed, nothing
	// answered.
	if resp := sessionFetch(t, addr, 16, sid, 1, 0, nil, at(0, 1), at(1, 2)); resp.ErrorCode != 0 || resp.SessionID != sid || len(resp.Topics) != 0 {
		t.Fatalf("epoch 1: %+v", resp)
	}
	// New data on p2: the next fetch, naming nothing, carries p2 alone,
	// by topic id; and again while its offset is not moved on.
	produce(2, "d")
	for epoch := int32(2); epoch <= 3; epoch++ {
		resp := sessionFetch(t, addr, 16, sid, epoch, 0, nil)
		got := flatten(resp)
		if resp.ErrorCode != 0 || len(got) != 1 || got[0].topicID != id || got[0].p.Partition != 2 || got[0].p.HighWatermark != 1 || len(batchBases(t, got[0].p.RecordBatches)) != 1 {
			t.Fatalf("epoch %d: %+v", epoch, resp)
		}
	}
	// A long poll returns with new data as it arrives, carrying only it
	// (p2, moved to its end, has nothing new).
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(200 * time.Millisecond)
		if r := rawProduce(t, addr, 9, -1, topic, 1, rawBatch(-1, 0, 0, "e")); r.ErrorCode != 0 {
			t.Errorf("produce: %+v", r)
		}
	}()
	start := time.Now()
	resp = sessionFetch(t, addr, 16, sid, 4, 5000, nil, at(2, 1))
	<-done
	got = flatten(resp)
	if el := time.Since(start); el > 4*time.Second || len(got) != 1 || got[0].p.Partition != 1 || got[0].p.HighWatermark != 3 || !slices.Equal(batchBases(t, got[0].p.RecordBatches), []int64{2}) {
		t.Fatalf("long poll after %v: %+v", el, resp)
	}
	// Session errors: no partitions; a wrong epoch leaves the session as
	// it was.
	for _, tc := range []struct {
		version      int16
		id, epoch    int32
		code         int16
		whatsWrong   string
		forgetTopics []kmsg.FetchRequestForgottenTopic
	}{
		{16, sid, 9, kerr.InvalidFetchSessionEpoch.Code, "epoch ahead", nil},
		{16, sid, 4, kerr.InvalidFetchSessionEpoch.Code, "epoch repeated", nil},
		{16, sid, -2, kerr.InvalidFetchSessionEpoch.Code, "negative epoch", nil},
		{16, sid ^ 1, 5, kerr.FetchSessionIDNotFound.Code, "unknown id", nil},
		{12, sid, 5, kerr.FetchSessionTopicIDError.Code, "names on a topic-id session", nil},
	} {
		resp := sessionFetch(t, addr, tc.version, tc.id, tc.epoch, 0, tc.forgetTopics)
		if resp.ErrorCode != tc.code || len(resp.Topics) != 0 || resp.SessionID != 0 {
			t.Fatalf("%s: %+v", tc.whatsWrong, resp)
		}
	}
	// Forgotten: p1 leaves the session; its new data is not answered.
	// p1 moved on to 3 in the same request does not bring it back.
	if resp := sessionFetch(t, addr, 16, sid, 5, 0, forgetIDs(id, 1), at(1, 3)); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Fatalf("forget p1: %+v", resp)
	}
	produce(1, "f")
	if resp := sessionFetch(t, addr, 16, sid, 6, 0, nil); resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Fatalf("after forgetting p1: %+v", resp)
	}
	// An unknown topic id enters the session and is answered
	// UNKNOWN_TOPIC_ID on every fetch until forgotten.
	unknown := [16]byte{0xfe}
	for epoch := int32(7); epoch <= 8; epoch++ {
		var specs []fetchSpec
		if epoch == 7 {
			specs = append(specs, fetchSpec{topicID: unknown})
		}
		got := flatten(sessionFetch(t, addr, 16, sid, epoch, 0, nil, specs...))
		if len(got) != 1 || got[0].topicID != unknown || got[0].p.ErrorCode != kerr.UnknownTopicID.Code {
			t.Fatalf("epoch %d, unknown topic id: %+v", epoch, got)
		}
	}
	// Forgetting every partition closes the session: a sessionless answer
	// (of the request's partitions: none), and the id is unknown after.
	forget := append(forgetIDs(id, 0, 2), forgetIDs(unknown, 0)...)
	if resp := sessionFetch(t, addr, 16, sid, 9, 0, forget); resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics) != 0 {
		t.Fatalf("emptied: %+v", resp)
	}
	if resp := sessionFetch(t, addr, 16, sid, 10, 0, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("after emptying: %+v", resp)
	}
	// Close: epoch -1 on a live session is a sessionless full fetch; the
	// id is gone after. Epoch 0 naming a live session replaces it.
	sid = sessionFetch(t, addr, 16, 0, 0, 0, nil, at(0, 0)).SessionID
	sid2 := sessionFetch(t, addr, 16, sid, 0, 0, nil, at(0, 0)).SessionID
	if sid == 0 || sid2 == 0 || sid2 == sid {
		t.Fatalf("sessions %d, %d", sid, sid2)
	}
	if resp := sessionFetch(t, addr, 16, sid, 1, 0, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("replaced session: %+v", resp)
	}
	resp = sessionFetch(t, addr, 16, sid2, -1, 0, nil, at(0, 0))
	if got := flatten(resp); resp.ErrorCode != 0 || resp.SessionID != 0 || len(got) != 1 || len(got[0].p.RecordBatches) == 0 {
		t.Fatalf("close: %+v", resp)
	}
	if resp := sessionFetch(t, addr, 16, sid2, 1, 0, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session: %+v", resp)
	}
	if m.fetchSessions.Load() != 0 || m.fetchIncremental.Load()-incBefore < 8 {
		t.Fatalf("%d sessions, %d incremental fetches", m.fetchSessions.Load(), m.fetchIncremental.Load()-incBefore)
	}
}

// testFetchSessionNames: a v12 session keys partitions by topic name
// (forgotten by name too), answers in session order with carried
// partitions moved to the end (so MaxBytes does not starve the last
// partitions), and refuses v13 requests.
func testFetchSessionNames(t *testing.T, c *testCluster) {
	topic := "fsn"
	c.createTopic(topic, 2)
	addr := c.addrs[1]
	at := func(p int32, off int64) fetchSpec { return fetchSpec{topic: topic, part: p, offset: off} }
	for p := int32(0); p < 2; p++ {
		if r := rawProduce(t, addr, 9, -1, topic, p, rawBatch(-1, 0, 0, "0123456789")); r.ErrorCode != 0 {
			t.Fatalf("produce: %+v", r)
		}
	}
	// MaxBytes 1: the full answer carries p0's batch only (KIP-74).
	req := rawFetchReq(12, 0, 0, 1, at(0, 0), at(1, 0))
	req.SessionEpoch = 0
	resp := rawRoundTrip(t, addr, req).(*kmsg.FetchResponse)
	sid := resp.SessionID
	if got := flatten(resp); sid == 0 || len(got) != 2 || len(got[0].p.RecordBatches) == 0 || len(got[1].p.RecordBatches) != 0 {
		t.Fatalf("open: %+v", resp)
	}
	inc := func(epoch int32, specs ...fetchSpec) []sessionPartition {
		t.Helper()
		req := rawFetchReq(12, 0, 0, 1, specs...)
		req.SessionID, req.SessionEpoch = sid, epoch
		resp := rawRoundTrip(t, addr, req).(*kmsg.FetchResponse)
		if resp.ErrorCode != 0 || resp.SessionID != sid {
			t.Fatalf("epoch %d: %+v", epoch, resp)
		}
		return flatten(resp)
	}
	produce := func(p int32) {
		t.Helper()
		if r := rawProduce(t, addr, 9, -1, topic, p, rawBatch(-1, 0, 0, "x")); r.ErrorCode != 0 {
			t.Fatalf("produce: %+v", r)
		}
	}
	// Both move to their ends: nothing to answer.
	if got := inc(1, at(0, 1), at(1, 1)); len(got) != 0 {
		t.Fatalf("epoch 1: %+v", got)
	}
	// New data on p0 alone: p0 is carried, by name, and moves behind p1.
	produce(0)
	if got := inc(2); len(got) != 1 || got[0].topic != topic || got[0].p.Partition != 0 || len(got[0].p.RecordBatches) == 0 {
		t.Fatalf("epoch 2: %+v", got)
	}
	// New data on both, MaxBytes 1: p1, now first in the session, gets
	// its batch; p0 is answered after it with its high watermark only.
	produce(0)
	produce(1)
	got := inc(3, at(0, 2))
	if len(got) != 2 || got[0].p.Partition != 1 || len(got[0].p.RecordBatches) == 0 || got[1].p.Partition != 0 || len(got[1].p.RecordBatches) != 0 || got[1].p.HighWatermark != 3 {
		t.Fatalf("epoch 3: want p1 with data, then p0 with its new high watermark: %+v", got)
	}
	if resp := sessionFetch(t, addr, 13, sid, 4, 0, nil); resp.ErrorCode != kerr.FetchSessionTopicIDError.Code {
		t.Fatalf("v13 on a name session: %+v", resp)
	}
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.Partitions = topic, []int32{0, 1}
	if resp := sessionFetch(t, addr, 12, sid, 4, 0, []kmsg.FetchRequestForgottenTopic{ft}); resp.ErrorCode != 0 || resp.SessionID != 0 {
		t.Fatalf("forget all by name: %+v", resp)
	}
}

// testFetchSessionCacheFull: with every slot taken by young sessions, a
// full fetch asking for a session is served without one (SessionID 0),
// as Kafka does; a closed session frees its slot.
func testFetchSessionCacheFull(t *testing.T, c *testCluster) {
	topic := "fsc"
	c.createTopic(topic, 1)
	addr := c.addrs[1]
	if r := rawProduce(t, addr, 9, -1, topic, 0, rawBatch(-1, 0, 0, "a")); r.ErrorCode != 0 {
		t.Fatalf("produce: %+v", r)
	}
	id := c.topicID(topic)
	m := c.broker(1).Metrics()
	refused := m.fetchSessionRefused.Load()
	var sids []int32
	for range 3 {
		sid := sessionFetch(t, addr, 16, 0, 0, 0, nil, fetchSpec{topicID: id}).SessionID
		if sid == 0 || slices.Contains(sids, sid) {
			t.Fatalf("session %d after %v", sid, sids)
		}
		sids = append(sids, sid)
	}
	resp := sessionFetch(t, addr, 16, 0, 0, 0, nil, fetchSpec{topicID: id}, fetchSpec{topicID: id, part: 0})
	if got := flatten(resp); resp.ErrorCode != 0 || resp.SessionID != 0 || len(got) != 2 || len(got[0].p.RecordBatches) == 0 || got[0].p.HighWatermark != 1 {
		t.Fatalf("full cache: %+v", resp)
	}
	if m.fetchSessionRefused.Load() != refused+1 || m.fetchSessions.Load() != 3 {
		t.Fatalf("refused %d, sessions %d", m.fetchSessionRefused.Load()-refused, m.fetchSessions.Load())
	}
	sessionFetch(t, addr, 16, sids[0], -1, 0, nil)
	sids[0] = sessionFetch(t, addr, 16, 0, 0, 0, nil, fetchSpec{topicID: id}).SessionID
	if sids[0] == 0 {
		t.Fatal("no session after one was closed")
	}
	for _, sid := range sids {
		sessionFetch(t, addr, 16, sid, -1, 0, nil)
	}
	if m.fetchSessions.Load() != 0 {
		t.Fatalf("%d sessions left", m.fetchSessions.Load())
	}
	var sb strings.Builder
	if err := m.WritePrometheus(&sb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"chronik_fetch_sessions 0\n", "# TYPE chronik_fetch_session_evictions_total counter\n", "chronik_fetch_session_refused_total ", "chronik_fetch_incremental_total ", "chronik_fetch_session_partitions 0\n"} {
		if !strings.Contains(sb.String(), want) {
			t.Fatalf("metrics lack %q:\n%s", want, sb.String())
		}
	}
}

// testFetchSessionPipelined: incremental fetches of one session pipelined
// on one connection meet its epochs in the order sent (a connection's
// fetches run in request order), even when the first one long-polls.
func testFetchSessionPipelined(t *testing.T, c *testCluster) {
	topic := "fsp"
	c.createTopic(topic, 1)
	addr := c.addrs[1]
	id := c.topicID(topic)
	sid := sessionFetch(t, addr, 16, 0, 0, 0, nil, fetchSpec{topicID: id}).SessionID
	if sid == 0 {
		t.Fatal("no session")
	}
	rc := dialRaw(t, addr)
	const n = 5
	for i := range int32(n) {
		maxWait, minBytes := int32(0), int32(0)
		if i == 0 {
			maxWait, minBytes = 300, 1 // nothing arrives: waits 300 ms
		}
		req := rawFetchReq(16, maxWait, minBytes, 1<<20)
		req.SessionID, req.SessionEpoch = sid, i+1
		rc.send(req, 100+i)
	}
	for i := range int32(n) {
		resp := readRawFetch(t, rc, 16, 100+i)
		if resp.ErrorCode != 0 || resp.SessionID != sid || len(resp.Topics) != 0 {
			t.Fatalf("pipelined epoch %d: %+v", i+1, resp)
		}
	}
	sessionFetch(t, addr, 16, sid, -1, 0, nil)
}

// readRawFetch reads one Fetch response (flexible version) from rc and
// checks its correlation id.
func readRawFetch(t *testing.T, rc *rawConn, version int16, corr int32) *kmsg.FetchResponse {
	t.Helper()
	var size [4]byte
	if _, err := readFull(rc, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := readFull(rc, body); err != nil {
		t.Fatal(err)
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(version)
	if err := resp.ReadFrom(body[5:]); err != nil { // correlation id + header tags
		t.Fatal(err)
	}
	return resp
}
