package server

import (
	"container/list"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/clock"
)

// Fetch sessions (KIP-227), as Kafka's FetchSession.scala keeps them: a
// bounded, per-node, in-memory cache of the partitions a consumer fetches,
// so that its incremental fetches name only what changed and the answers
// carry only partitions with something new. Sessions are tied to nothing
// but this cache: any connection may use any session; a node restart (or
// an eviction) loses them and clients recover through
// FETCH_SESSION_ID_NOT_FOUND with a full fetch.
//
// Concurrency: every method of fetchSessionCache takes its mutex; a
// session's partitions are copied out for a fetch (snapshot) and written
// back when the response is made (finish), never read or written without
// the mutex. A fetch reads its partitions, and long-polls, without it.

// Defaults of FetchSessionConfig.
const (
	// DefaultFetchSessionSlots is Kafka's
	// max.incremental.fetch.session.cache.slots.
	DefaultFetchSessionSlots = 1000
	// DefaultFetchSessionEvictionMinAge is Kafka's
	// MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS: a session younger than this
	// is evicted only when it has been unused for as long.
	DefaultFetchSessionEvictionMinAge = 2 * time.Minute
)

// FetchSessionConfig bounds a broker's fetch session cache.
type FetchSessionConfig struct {
	// Slots is how many sessions the node keeps (0 = 1000, Kafka's
	// default; negative = none: every fetch is then sessionless).
	Slots int
	// EvictionMinAge is how old a session must be (or how long unused)
	// before a new one may evict it (0 = 2 minutes, as Kafka).
	EvictionMinAge time.Duration
}

func (c FetchSessionConfig) withDefaults() FetchSessionConfig {
	switch {
	case c.Slots == 0:
		c.Slots = DefaultFetchSessionSlots
	case c.Slots < 0:
		c.Slots = 0
	}
	if c.EvictionMinAge <= 0 {
		c.EvictionMinAge = DefaultFetchSessionEvictionMinAge
	}
	return c
}

// sessionKey names a partition in a session: by topic id in a session
// opened at Fetch v13+, by topic name below.
type sessionKey struct {
	id    [16]byte
	topic string
	part  int32
}

// cachedPart is one partition of a session: the request parameters last
// sent for it, and what the last response that carried it said.
type cachedPart struct {
	key sessionKey
	// name is the topic's name when the partition entered a topic-id
	// session ("" if the id was unknown then), as Kafka keeps it; the
	// topic of a name session.
	name         string
	fetchOffset  int64
	partMaxBytes int32
	leaderEpoch  int32 // CurrentLeaderEpoch, -1 = unchecked
	// Last answered values; hw -1 makes the next response carry the
	// partition (new partitions, and partitions last answered an error).
	hw, lso, logStart int64
}

// updateRequest takes the parameters of a request that names the
// partition again (Kafka's updateRequestParams).
func (cp *cachedPart) updateRequest(rp *kmsg.FetchRequestTopicPartition) {
	cp.fetchOffset, cp.partMaxBytes, cp.leaderEpoch = rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch
}

// respond reports whether an incremental response must carry the partition
// answered r (Kafka's CachedPartition.maybeUpdateResponseData: records, a
// changed high watermark or log start, or an error; we also compare the
// last stable offset, which equals the high watermark while there are no
// transactions), and remembers what r says when update is set.
func (cp *cachedPart) respond(r *kmsg.FetchResponseTopicPartition, update bool) bool {
	must := len(r.RecordBatches) > 0 || r.ErrorCode != 0 ||
		cp.hw != r.HighWatermark || cp.lso != r.LastStableOffset || cp.logStart != r.LogStartOffset
	if update {
		cp.hw, cp.lso, cp.logStart = r.HighWatermark, r.LastStableOffset, r.LogStartOffset
		if r.ErrorCode != 0 {
			// Resent once the error goes away, whatever it says then.
			cp.hw = -1
		}
	}
	return must
}

// fetchSession is one cached session.
type fetchSession struct {
	id int32
	// epoch is the SessionEpoch the next incremental request must carry.
	epoch   int32
	usesIDs bool // opened at Fetch v13+: partitions are named by topic id
	// parts is the session order: request order, and each partition a
	// response carried moves to the end (Kafka's fairness rule, so that
	// partitions cut off by MaxBytes come first next time).
	parts     []*cachedPart
	index     map[sessionKey]*cachedPart
	createdAt time.Time
	lastUsed  time.Time
	// evictable: it was older than EvictionMinAge when last used (Kafka's
	// evictableByAll), so a larger new session may take its slot.
	evictable bool
	size      int // len(parts) when last counted into the cache's total
	elem      *list.Element
}

// nextEpoch is Kafka's FetchMetadata.nextEpoch for a positive epoch.
func nextEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}

// fetchSessionCache is a node's bounded session cache.
type fetchSessionCache struct {
	clock       clock.Clock
	cfg         FetchSessionConfig
	metrics     *Metrics
	incarnation uint64

	mu       sync.Mutex
	sessions map[int32]*fetchSession
	// lru orders sessions by last use, least recent at the front.
	lru        list.List
	partitions int // sum of the sessions' sizes
	idSeq      uint64
}

// newFetchSessionCache makes an empty cache. incarnation seeds the session
// ids: ids issued before a restart should not be issued again after it, so
// it mixes in the node's clock at start.
func newFetchSessionCache(clk clock.Clock, cfg FetchSessionConfig, m *Metrics, incarnation uint64) *fetchSessionCache {
	if m == nil {
		m = &Metrics{}
	}
	return &fetchSessionCache{clock: clk, cfg: cfg.withDefaults(), metrics: m, incarnation: incarnation, sessions: map[int32]*fetchSession{}}
}

// remove closes session id, if it exists (any full fetch naming a session
// closes it, as in Kafka).
func (c *fetchSessionCache) remove(id int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[id]; s != nil {
		c.drop(s)
	}
}

func (c *fetchSessionCache) drop(s *fetchSession) {
	delete(c.sessions, s.id)
	c.lru.Remove(s.elem)
	c.partitions -= s.size
	c.publish()
}

func (c *fetchSessionCache) publish() {
	c.metrics.fetchSessions.Store(int64(len(c.sessions)))
	c.metrics.fetchSessionPartitions.Store(int64(c.partitions))
}

// touch marks s used now (Kafka's FetchSessionCache.touch).
func (c *fetchSessionCache) touch(s *fetchSession, now time.Time) {
	s.lastUsed = now
	c.lru.MoveToBack(s.elem)
	s.evictable = now.Sub(s.createdAt) > c.cfg.EvictionMinAge
	c.partitions += len(s.parts) - s.size
	s.size = len(s.parts)
	c.publish()
}

// create opens a session over parts (in order, distinct keys) and returns
// its id, or 0 when no slot can be had: the fetch is then sessionless.
func (c *fetchSessionCache) create(usesIDs bool, parts []*cachedPart) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if len(c.sessions) >= c.cfg.Slots && !c.evictFor(len(parts), now) {
		c.metrics.fetchSessionRefused.Add(1)
		return 0
	}
	s := &fetchSession{
		id: c.newID(), epoch: 1, usesIDs: usesIDs, parts: parts,
		index: make(map[sessionKey]*cachedPart, len(parts)), createdAt: now,
	}
	for _, cp := range parts {
		s.index[cp.key] = cp
	}
	s.elem = c.lru.PushBack(s)
	c.sessions[s.id] = s
	c.touch(s, now)
	return s.id
}

// evictFor frees a slot for a new session of size partitions, as Kafka's
// tryEvict: the least recently used session if it has been unused longer
// than EvictionMinAge; otherwise the smallest evictable session (ties: the
// lowest id), if the new one is larger.
func (c *fetchSessionCache) evictFor(size int, now time.Time) bool {
	front := c.lru.Front()
	if front == nil {
		return false
	}
	if lru := front.Value.(*fetchSession); now.Sub(lru.lastUsed) > c.cfg.EvictionMinAge {
		c.drop(lru)
		c.metrics.fetchSessionEvictions.Add(1)
		return true
	}
	var victim *fetchSession
	for e := c.lru.Front(); e != nil; e = e.Next() {
		s := e.Value.(*fetchSession)
		if s.evictable && (victim == nil || s.size < victim.size || s.size == victim.size && s.id < victim.id) {
			victim = s
		}
	}
	if victim == nil || size <= victim.size {
		return false
	}
	c.drop(victim)
	c.metrics.fetchSessionEvictions.Add(1)
	return true
}

// newID returns an unused nonzero session id. Ids look random (as Kafka's)
// so that a client holding an id from before a restart is unlikely to hit
// a new session by it, and are deterministic given the incarnation.
func (c *fetchSessionCache) newID() int32 {
	for {
		c.idSeq++
		id := int32(splitmix64(c.incarnation+c.idSeq) >> 33)
		if id != 0 && c.sessions[id] == nil {
			return id
		}
	}
}

func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// sessionUpdate is an incremental request's change to its session: the
// partitions it names (added or updated, in request order) and those it
// forgets.
type sessionUpdate struct {
	version int16
	epoch   int32
	set     []sessionSet
	forget  []sessionKey
}

type sessionSet struct {
	key  sessionKey
	name string // the topic name now ("" for an unknown topic id)
	req  *kmsg.FetchRequestTopicPartition
}

// incremental applies an incremental request to session id (Kafka's
// FetchManager.newContext for epoch > 0). It returns a copy of the
// session's partitions to read, in session order; or a top-level error
// code; or, when the request leaves the session empty, closes it and
// reports sessionless (the request is then answered as a sessionless full
// fetch, as Kafka does).
func (c *fetchSessionCache) incremental(id int32, u sessionUpdate) (snap []cachedPart, code int16, sessionless bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[id]
	switch {
	case s == nil:
		return nil, kerr.FetchSessionIDNotFound.Code, false
	case s.epoch != u.epoch:
		return nil, kerr.InvalidFetchSessionEpoch.Code, false
	case s.usesIDs != (u.version >= 13):
		return nil, kerr.FetchSessionTopicIDError.Code, false
	}
	for _, ps := range u.set {
		if cp := s.index[ps.key]; cp != nil {
			cp.updateRequest(ps.req)
			continue
		}
		cp := &cachedPart{key: ps.key, name: ps.name, hw: -1, lso: -1, logStart: -1}
		cp.updateRequest(ps.req)
		s.index[ps.key] = cp
		s.parts = append(s.parts, cp)
	}
	if len(u.forget) > 0 {
		for _, k := range u.forget {
			delete(s.index, k)
		}
		kept := s.parts[:0]
		for _, cp := range s.parts {
			if s.index[cp.key] == cp {
				kept = append(kept, cp)
			}
		}
		clear(s.parts[len(kept):])
		s.parts = kept
	}
	if len(s.parts) == 0 {
		c.drop(s)
		return nil, 0, true
	}
	c.touch(s, c.clock.Now())
	s.epoch = nextEpoch(s.epoch)
	c.metrics.fetchIncremental.Add(1)
	snap = make([]cachedPart, len(s.parts))
	for i, cp := range s.parts {
		snap[i] = *cp
	}
	return snap, 0, false
}

// finish decides which of an incremental fetch's partitions its response
// carries (answers[i] is the answer for snap[i]) and records what they
// said in session id, moving the carried ones to the end of the session
// order. A partition forgotten meanwhile (a concurrent request of the same
// session: clients do not do that) is judged against its snapshot.
func (c *fetchSessionCache) finish(id int32, snap []cachedPart, answers []*kmsg.FetchResponseTopicPartition) []bool {
	if len(snap) != len(answers) {
		panic(fmt.Sprintf("fetch session %d: %d partitions, %d answers", id, len(snap), len(answers)))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[id]
	carry := make([]bool, len(snap))
	var moved map[*cachedPart]bool
	for i := range snap {
		cp := &snap[i]
		var live *cachedPart
		if s != nil {
			live = s.index[cp.key]
		}
		if live == nil {
			carry[i] = cp.respond(answers[i], false)
			continue
		}
		carry[i] = live.respond(answers[i], true)
		if carry[i] {
			if moved == nil {
				moved = map[*cachedPart]bool{}
			}
			moved[live] = true
		}
	}
	if len(moved) > 0 {
		order := make([]*cachedPart, 0, len(s.parts))
		for _, cp := range s.parts {
			if !moved[cp] {
				order = append(order, cp)
			}
		}
		for _, cp := range s.parts {
			if moved[cp] {
				order = append(order, cp)
			}
		}
		s.parts = order
	}
	return carry
}

// len reports how many sessions the cache holds.
func (c *fetchSessionCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sessions)
}
