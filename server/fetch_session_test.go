package server

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"pgregory.net/rapid"

	"github.com/chronik-go/chronik/core/clock"
)

// manualClock is a Clock whose time moves only when a test advances it
// (the session cache reads only Now).
type manualClock struct{ now time.Time }

func (c *manualClock) Now() time.Time                  { return c.now }
func (c *manualClock) Since(t time.Time) time.Duration { return c.now.Sub(t) }
func (c *manualClock) NewTimer(time.Duration) clock.Timer {
	panic("manualClock: no timers")
}
func (c *manualClock) AfterFunc(time.Duration, func()) clock.Timer {
	panic("manualClock: no timers")
}
func (c *manualClock) Sleep(context.Context, time.Duration) error { panic("manualClock: no sleep") }

func newTestSessionCache(slots int) (*fetchSessionCache, *manualClock, *Metrics) {
	clk := &manualClock{now: time.Unix(1_700_000_000, 0)}
	m := &Metrics{}
	return newFetchSessionCache(clk, FetchSessionConfig{Slots: slots}, m, 7), clk, m
}

// partsOf makes n session partitions of topic t, answered at hw.
func partsOf(t string, n int, hw int64) []*cachedPart {
	var out []*cachedPart
	for i := range n {
		out = append(out, &cachedPart{key: sessionKey{topic: t, part: int32(i)}, name: t, hw: hw, lso: hw, logStart: 0, leaderEpoch: -1})
	}
	return out
}

func setPart(t string, p int32, offset int64) sessionSet {
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, offset, 1<<20, -1
	return sessionSet{key: sessionKey{topic: t, part: p}, name: t, req: &rp}
}

func answer(hw int64, records int, code int16) *kmsg.FetchResponseTopicPartition {
	r := kmsg.NewFetchResponseTopicPartition()
	r.HighWatermark, r.LastStableOffset, r.LogStartOffset, r.ErrorCode = hw, hw, 0, code
	r.RecordBatches = make([]byte, records)
	return &r
}

func keysOf(snap []cachedPart) []string {
	var out []string
	for _, cp := range snap {
		out = append(out, fmt.Sprintf("%s/%d", cp.key.topic, cp.key.part))
	}
	return out
}

// TestFetchSessionEviction: Kafka's rules. A full cache refuses a new
// session (id 0) while every session is young and recently used; a session
// unused for longer than the minimum age is evicted first; otherwise the
// smallest session older than the minimum age (when last used) gives way to
// a strictly larger new one.
func TestFetchSessionEviction(t *testing.T) {
	c, clk, m := newTestSessionCache(2)
	a := c.create(false, partsOf("a", 1, 0))
	b := c.create(false, partsOf("b", 3, 0))
	if a == 0 || b == 0 || a == b {
		t.Fatalf("ids %d %d", a, b)
	}
	clk.now = clk.now.Add(time.Minute)
	if id := c.create(false, partsOf("c", 5, 0)); id != 0 {
		t.Fatalf("a full cache of young sessions gave id %d", id)
	}
	if got := m.fetchSessionRefused.Load(); got != 1 {
		t.Fatalf("refused %d", got)
	}
	// At 3 minutes, a is used (and becomes evictable: older than 2
	// minutes); b, unused for 3 minutes, is stale and goes first.
	clk.now = clk.now.Add(2 * time.Minute)
	if _, code, _ := c.incremental(a, sessionUpdate{epoch: 1}); code != 0 {
		t.Fatalf("incremental: %d", code)
	}
	cid := c.create(false, partsOf("c", 5, 0))
	if cid == 0 || c.len() != 2 {
		t.Fatalf("stale session not evicted: id %d, %d sessions", cid, c.len())
	}
	if _, code, _ := c.incremental(b, sessionUpdate{epoch: 1}); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("evicted session: code %d", code)
	}
	// Neither is stale now; a (1 partition, evictable) gives way only to
	// a larger session.
	if id := c.create(false, partsOf("d", 1, 0)); id != 0 {
		t.Fatalf("an equal-sized session evicted another: %d", id)
	}
	if id := c.create(false, partsOf("d", 2, 0)); id == 0 {
		t.Fatal("a larger session did not evict the smallest evictable one")
	}
	if _, code, _ := c.incremental(a, sessionUpdate{epoch: 2}); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("a survived: code %d", code)
	}
	// c was created at 3 minutes and never used since: not evictable.
	if id := c.create(false, partsOf("e", 100, 0)); id != 0 {
		t.Fatalf("a young session was evicted for %d", id)
	}
	if got, parts := m.fetchSessionEvictions.Load(), m.fetchSessionPartitions.Load(); got != 2 || m.fetchSessions.Load() != 2 || parts != 7 {
		t.Fatalf("evictions %d sessions %d partitions %d", got, m.fetchSessions.Load(), parts)
	}
	// No slots: never a session.
	none, _, _ := newTestSessionCache(-1)
	if id := none.create(false, nil); id != 0 {
		t.Fatalf("disabled cache gave id %d", id)
	}
}

// TestFetchSessionIncremental: epochs, the v13 boundary, adding, updating
// and forgetting partitions, and closing an emptied session.
func TestFetchSessionIncremental(t *testing.T) {
	c, _, _ := newTestSessionCache(10)
	id := c.create(false, partsOf("t", 2, 5))
	for _, tc := range []struct {
		u    sessionUpdate
		code int16
	}{
		{sessionUpdate{version: 12, epoch: 2}, kerr.InvalidFetchSessionEpoch.Code},
		{sessionUpdate{version: 12, epoch: 0}, kerr.InvalidFetchSessionEpoch.Code},
		{sessionUpdate{version: 13, epoch: 1}, kerr.FetchSessionTopicIDError.Code},
	} {
		if _, code, _ := c.incremental(id, tc.u); code != tc.code {
			t.Fatalf("%+v: code %d, want %d", tc.u, code, tc.code)
		}
	}
	if _, code, _ := c.incremental(id+1, sessionUpdate{version: 12, epoch: 1}); code != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("unknown id: %d", code)
	}
	// Epoch 1: add t/2, move t/0 on.
	snap, code, _ := c.incremental(id, sessionUpdate{version: 12, epoch: 1, set: []sessionSet{setPart("t", 2, 0), setPart("t", 0, 5)}})
	if code != 0 || !slices.Equal(keysOf(snap), []string{"t/0", "t/1", "t/2"}) || snap[0].fetchOffset != 5 || snap[2].hw != -1 {
		t.Fatalf("epoch 1: code %d %+v", code, snap)
	}
	// t/0 unchanged (hw 5, nothing), t/1 has records, t/2 is new: the
	// answer carries t/1 and t/2, which move to the end.
	carry := c.finish(id, snap, []*kmsg.FetchResponseTopicPartition{answer(5, 0, 0), answer(5, 10, 0), answer(0, 0, 0)})
	if !slices.Equal(carry, []bool{false, true, true}) {
		t.Fatalf("carry %v", carry)
	}
	// Epoch 2: nothing changed; t/2 is still at hw 0: nothing to carry
	// but t/1's records (its offset was not moved on), then an error on t/0.
	snap, _, _ = c.incremental(id, sessionUpdate{version: 12, epoch: 2})
	if !slices.Equal(keysOf(snap), []string{"t/0", "t/1", "t/2"}) {
		t.Fatalf("order %v", keysOf(snap))
	}
	carry = c.finish(id, snap, []*kmsg.FetchResponseTopicPartition{answer(5, 0, kerr.NotLeaderForPartition.Code), answer(5, 10, 0), answer(0, 0, 0)})
	if !slices.Equal(carry, []bool{true, true, false}) {
		t.Fatalf("carry %v", carry)
	}
	// An error is carried until it clears, and once more after (hw -1).
	snap, _, _ = c.incremental(id, sessionUpdate{version: 12, epoch: 3, set: []sessionSet{setPart("t", 1, 6)}})
	if !slices.Equal(keysOf(snap), []string{"t/2", "t/0", "t/1"}) || snap[1].hw != -1 {
		t.Fatalf("epoch 3: %+v", snap)
	}
	carry = c.finish(id, snap, []*kmsg.FetchResponseTopicPartition{answer(0, 0, 0), answer(5, 0, 0), answer(6, 0, 0)})
	if !slices.Equal(carry, []bool{false, true, true}) {
		t.Fatalf("carry %v", carry)
	}
	// Forgetting all but one keeps the session; forgetting the last one
	// (even while naming it) closes it: sessionless.
	snap, _, _ = c.incremental(id, sessionUpdate{version: 12, epoch: 4, forget: []sessionKey{{topic: "t", part: 0}, {topic: "t", part: 2}, {topic: "x", part: 9}}})
	if !slices.Equal(keysOf(snap), []string{"t/1"}) {
		t.Fatalf("after forgetting: %v", keysOf(snap))
	}
	c.finish(id, snap, []*kmsg.FetchResponseTopicPartition{answer(6, 0, 0)})
	_, code, sessionless := c.incremental(id, sessionUpdate{version: 12, epoch: 5, set: []sessionSet{setPart("t", 1, 6)}, forget: []sessionKey{{topic: "t", part: 1}}})
	if code != 0 || !sessionless || c.len() != 0 {
		t.Fatalf("emptied session: code %d sessionless %v len %d", code, sessionless, c.len())
	}
	if nextEpoch(1<<31-1) != 1 || nextEpoch(1) != 2 {
		t.Fatal("nextEpoch")
	}
}

// TestFetchSessionCacheModel drives the cache with random creates,
// closes, incremental fetches and clock steps, against a model of each
// session's partition order, and checks the cache's invariants after every
// step: at most Slots sessions, the LRU list and the index agree with the
// sessions, the partition count and the gauges match.
func TestFetchSessionCacheModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		slots := rapid.IntRange(1, 4).Draw(rt, "slots")
		c, clk, m := newTestSessionCache(slots)
		model := map[int32][]sessionKey{}
		epochs := map[int32]int32{}
		var ids []int32 // every id issued, in order
		key := func(label string) sessionKey {
			return sessionKey{topic: rapid.SampledFrom([]string{"a", "b"}).Draw(rt, label+"topic"), part: rapid.Int32Range(0, 3).Draw(rt, label+"part")}
		}
		for range rapid.IntRange(1, 40).Draw(rt, "steps") {
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0: // create
				n := rapid.IntRange(0, 4).Draw(rt, "size")
				var parts []*cachedPart
				var keys []sessionKey
				for i := range n {
					k := sessionKey{topic: "c", part: int32(i)}
					parts = append(parts, &cachedPart{key: k, hw: -1})
					keys = append(keys, k)
				}
				if id := c.create(false, parts); id != 0 {
					if _, dup := model[id]; dup {
						rt.Fatalf("id %d issued twice", id)
					}
					model[id], epochs[id] = keys, 1
					ids = append(ids, id)
				}
			case 1: // close
				if len(ids) > 0 {
					id := rapid.SampledFrom(ids).Draw(rt, "close")
					c.remove(id)
					delete(model, id)
				}
			case 2: // incremental
				if len(ids) == 0 {
					continue
				}
				id := rapid.SampledFrom(ids).Draw(rt, "session")
				var u sessionUpdate
				u.epoch = epochs[id]
				for i := range rapid.IntRange(0, 3).Draw(rt, "sets") {
					k := key(fmt.Sprint("set", i))
					u.set = append(u.set, setPart(k.topic, k.part, 0))
				}
				for i := range rapid.IntRange(0, 3).Draw(rt, "forgets") {
					u.forget = append(u.forget, key(fmt.Sprint("forget", i)))
				}
				snap, code, sessionless := c.incremental(id, u)
				keys, live := model[id]
				if !live {
					if code != kerr.FetchSessionIDNotFound.Code {
						rt.Fatalf("session %d gone from the model, code %d", id, code)
					}
					continue
				}
				if code != 0 {
					rt.Fatalf("session %d: code %d", id, code)
				}
				for _, s := range u.set {
					if !slices.Contains(keys, s.key) {
						keys = append(keys, s.key)
					}
				}
				keys = slices.DeleteFunc(keys, func(k sessionKey) bool { return slices.Contains(u.forget, k) })
				if len(keys) == 0 {
					if !sessionless {
						rt.Fatalf("session %d emptied but kept", id)
					}
					delete(model, id)
					continue
				}
				epochs[id] = nextEpoch(epochs[id])
				var got []sessionKey
				answers := make([]*kmsg.FetchResponseTopicPartition, len(snap))
				carried := rapid.SliceOfN(rapid.Bool(), len(snap), len(snap)).Draw(rt, "carried")
				for i, cp := range snap {
					got = append(got, cp.key)
					answers[i] = answer(cp.hw, 0, 0) // what the session holds: nothing new
					answers[i].LastStableOffset, answers[i].LogStartOffset = cp.lso, cp.logStart
					if carried[i] {
						answers[i].RecordBatches = []byte{1}
					}
				}
				if !slices.Equal(got, keys) {
					rt.Fatalf("session %d: order %v, model %v", id, got, keys)
				}
				carry := c.finish(id, snap, answers)
				if !slices.Equal(carry, carried) {
					rt.Fatalf("carry %v, want %v", carry, carried)
				}
				var front, back []sessionKey
				for i, k := range keys {
					if carried[i] {
						back = append(back, k)
					} else {
						front = append(front, k)
					}
				}
				model[id] = append(front, back...)
			case 3:
				clk.now = clk.now.Add(time.Duration(rapid.IntRange(0, 200).Draw(rt, "seconds")) * time.Second)
			}
			// Evictions remove sessions from the model.
			for id := range model {
				if c.sessions[id] == nil {
					delete(model, id)
				}
			}
			checkSessionCache(rt, c, m, slots, len(model))
		}
	})
}

func checkSessionCache(rt *rapid.T, c *fetchSessionCache, m *Metrics, slots, want int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) > slots || len(c.sessions) != want || c.lru.Len() != len(c.sessions) {
		rt.Fatalf("%d sessions (model %d, slots %d), lru %d", len(c.sessions), want, slots, c.lru.Len())
	}
	total := 0
	var last time.Time
	for e := c.lru.Front(); e != nil; e = e.Next() {
		s := e.Value.(*fetchSession)
		if c.sessions[s.id] != s || s.lastUsed.Before(last) || len(s.index) != len(s.parts) || s.size != len(s.parts) {
			rt.Fatalf("session %d: inconsistent (index %d, parts %d, size %d)", s.id, len(s.index), len(s.parts), s.size)
		}
		for _, cp := range s.parts {
			if s.index[cp.key] != cp {
				rt.Fatalf("session %d: %v not indexed", s.id, cp.key)
			}
		}
		last = s.lastUsed
		total += s.size
	}
	if total != c.partitions || m.fetchSessions.Load() != int64(len(c.sessions)) || m.fetchSessionPartitions.Load() != int64(total) {
		rt.Fatalf("partitions %d (counted %d), gauges %d %d", c.partitions, total, m.fetchSessions.Load(), m.fetchSessionPartitions.Load())
	}
}
