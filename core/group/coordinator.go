package group

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/clock"
)

// Coordinator holds the membership of many classic consumer groups in
// memory. All methods are safe for concurrent use; Join and Sync may block
// (see doc.go).
type Coordinator struct {
	clock clock.Clock
	log   *slog.Logger
	opts  Options

	mu sync.Mutex // guards everything below; never held while blocking
	// closed is set by Close; afterwards every call answers NOT_COORDINATOR.
	closed bool
	groups map[string]*group
	// cgroups holds the consumer-protocol (KIP-848) groups; an id is in
	// groups or cgroups, never both.
	cgroups map[string]*cgroup
	// topics is the metadata view as Options.Topics last returned it
	// (sorted by name); metaVersion counts its changes.
	topics      []TopicInfo
	topicByID   map[[16]byte]TopicInfo
	metaVersion uint64
	// Counters: member ids, member join order, timer identities, the order
	// in which groups became Empty (eviction). All only grow.
	idNext, memberSeqNext, timerSeqNext, emptySeqNext uint64
	// Tenures are per shard (Options.ShardOf): tenures[shard] is the
	// shard's current one (BeginShardTenure; absent before the first).
	tenures map[int32]tenure
	// persistSeq counts the records handed out; it only grows.
	persistSeq uint64
	// unwritten holds the groups deleted here whose tombstone record
	// failed to be written, with the term it carried: a DeleteGroups
	// retried in that tenure writes it again (the group is no longer
	// held, but its record still is).
	unwritten map[string]uint64
}

// tenure is one shard's coordinator tenure: term names it (records of the
// shard's groups handed to Options.Persist carry it); base is idNext and
// incarnation the incarnation when it began: ids minted in it carry an
// incarnation from that one up to the current one and a counter above
// base.
type tenure struct {
	term, base, incarnation uint64
}

// shardOf is the group's shard (Options.ShardOf; 0 without).
func (c *Coordinator) shardOf(group string) int32 {
	if c.opts.ShardOf == nil {
		return 0
	}
	return c.opts.ShardOf(group)
}

// termOf is the term of the current tenure of group's shard, 0 when none
// began.
func (c *Coordinator) termOf(group string) uint64 { return c.tenures[c.shardOf(group)].term }

// New returns a Coordinator reading time from clk. A nil logger discards.
func New(clk clock.Clock, log *slog.Logger, opts Options) *Coordinator {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{
		clock:     clk,
		log:       log,
		opts:      opts.withDefaults(),
		groups:    make(map[string]*group),
		cgroups:   make(map[string]*cgroup),
		tenures:   make(map[int32]tenure),
		unwritten: make(map[string]uint64),
	}
}

// Close stops every timer and answers every blocked Join and Sync with
// NOT_COORDINATOR; later calls answer NOT_COORDINATOR too. Idempotent.
func (c *Coordinator) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for _, g := range c.groups {
		c.killGroup(g, errNotCoordinator)
	}
	clear(c.groups)
	for _, g := range c.cgroups {
		c.killConsumerGroup(g)
	}
	clear(c.cgroups)
}

// killGroup stops g's timers, answers its waiters with code and marks it
// Dead. The caller removes it from c.groups.
func (c *Coordinator) killGroup(g *group, code int16) {
	stopTimer(&g.joinTimer, &g.joinTimerSeq)
	stopTimer(&g.syncTimer, &g.syncTimerSeq)
	for id, p := range g.pending {
		stopTimer(&p.timer, &p.timerSeq)
		delete(g.pending, id)
	}
	for _, m := range g.members {
		stopTimer(&m.timer, &m.timerSeq)
		m.replyJoin(joinErr(m.id, code))
		m.replySync(SyncResponse{ErrorCode: code})
	}
	g.state = Dead
}

// arm starts a timer whose callback runs f with c.mu held, unless the
// coordinator closed or the timer was stopped or superseded meanwhile: *slot
// holds the identity of the live timer and a callback only runs f if it
// still finds its own there.
func (c *Coordinator) arm(d time.Duration, slot *uint64, f func()) clock.Timer {
	c.timerSeqNext++
	seq := c.timerSeqNext
	*slot = seq
	return c.clock.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || *slot != seq {
			return
		}
		*slot = 0
		f()
	})
}

func stopTimer(t *clock.Timer, slot *uint64) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
	*slot = 0
}

// newMemberID is prefix-incarnation-counter: deterministic, never reused by
// this coordinator, and distinct across coordinators with distinct
// incarnations. Kafka uses prefix-UUID.
func (c *Coordinator) newMemberID(clientID, instanceID string) string {
	prefix := clientID
	if instanceID != "" {
		prefix = instanceID
	}
	c.idNext++
	return fmt.Sprintf("%s-%x-%d", prefix, c.opts.Incarnation, c.idNext)
}

// BeginTenure is BeginShardTenure of shard 0 (a coordinator without
// Options.ShardOf has one shard).
func (c *Coordinator) BeginTenure(term uint64, records []Record) int {
	return c.BeginShardTenure(0, term, records)
}

// BeginShardTenure starts a new coordinator tenure of shard, named by term
// (the shard's Raft term in which this node now coordinates its groups;
// records of them persisted from now on carry it): every group of the
// shard held is forgotten (its blocked requests are answered
// NOT_COORDINATOR; nothing is persisted), since another coordinator may
// have served its members meanwhile, and the groups of records (the
// shard's) are loaded (see persist.go, consumer_persist.go and doc.go,
// "Coordinator moves"): classic ones Stable at their generation with
// their members, whose sessions start now, or Empty; consumer ones with
// their members' epochs and assignments. Groups of other shards are not
// touched. Members of groups not loaded are recognised by their member
// ids (memberFromEarlierTenure) and told to rejoin rather than that they
// are unknown. It returns the number of groups loaded.
func (c *Coordinator) BeginShardTenure(shard int32, term uint64, records []Record) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Ids minted from now on carry another incarnation, so that a member
	// id names its tenure (and (incarnation, generation) a generation).
	// Incarnations of distinct nodes and boots differ in their high bits;
	// counting up here never meets another's.
	c.opts.Incarnation++
	c.tenures[shard] = tenure{term: term, base: c.idNext, incarnation: c.opts.Incarnation}
	for _, id := range sortedKeys(c.groups) {
		if g := c.groups[id]; c.shardOf(id) == shard {
			c.killGroup(g, errNotCoordinator)
			delete(c.groups, id)
		}
	}
	// Consumer groups' held answers get NOT_COORDINATOR. Those without a
	// record are forgotten: their members' next heartbeat is answered
	// FENCED_MEMBER_EPOCH and they rejoin with epoch 0 (see doc.go,
	// "Consumer protocol").
	for _, id := range sortedKeys(c.cgroups) {
		if g := c.cgroups[id]; c.shardOf(id) == shard {
			c.killConsumerGroup(g)
			delete(c.cgroups, id)
		}
	}
	if c.closed {
		return 0
	}
	return c.load(records)
}

// memberFromEarlierTenure reports whether memberID has the shape of a
// Chronik member id (prefix-<incarnation hex>-<decimal counter>, see
// newMemberID) and was not minted by this coordinator in the current
// tenure of group's shard: another coordinator (another node, or this one
// before a restart) or this one before that tenure began minted it. Ids
// of any other shape (a client's invention, another broker's UUIDs) are
// not.
func (c *Coordinator) memberFromEarlierTenure(group, memberID string) bool {
	i := strings.LastIndexByte(memberID, '-')
	if i <= 0 {
		return false
	}
	n, err := strconv.ParseUint(memberID[i+1:], 10, 64)
	if err != nil || n == 0 {
		return false
	}
	j := strings.LastIndexByte(memberID[:i], '-')
	if j < 0 {
		return false
	}
	inc, err := strconv.ParseUint(memberID[j+1:i], 16, 64)
	if err != nil {
		return false
	}
	t, ok := c.tenures[c.shardOf(group)]
	if !ok {
		t.incarnation = c.opts.Incarnation // no tenure: ids of now only
	}
	current := inc >= t.incarnation && inc <= c.opts.Incarnation && n > t.base
	return !current
}

// unknownMember is the answer to a Heartbeat or SyncGroup from a member
// this coordinator does not hold: UNKNOWN_MEMBER_ID, except that a member
// of an earlier tenure gets REBALANCE_IN_PROGRESS. Both make the client
// rejoin, but clients treat them differently: UNKNOWN_MEMBER_ID on a
// heartbeat is an error the application sees (franz-go surfaces "unable
// to join group session: UNKNOWN_MEMBER_ID" from PollFetches), while
// REBALANCE_IN_PROGRESS is a routine rebalance. The member's rejoin with
// its old id is answered UNKNOWN_MEMBER_ID by Join, which every client
// handles silently by rejoining without an id.
func (c *Coordinator) unknownMember(group, memberID string) int16 {
	if c.memberFromEarlierTenure(group, memberID) {
		return errRebalanceInProgress
	}
	return errUnknownMemberID
}

// createGroup adds an Empty group, evicting the Empty group that became
// empty first when at GroupsMax. It returns nil when every group is busy.
func (c *Coordinator) createGroup(id string) *group {
	if len(c.groups)+len(c.cgroups) >= c.opts.GroupsMax {
		var victim *group
		for _, g := range c.groups {
			if g.state == Empty && (victim == nil || g.emptySeq < victim.emptySeq) {
				victim = g
			}
		}
		if victim == nil {
			c.log.Warn("group: groups limit reached", "groups", len(c.groups), "group", id)
			return nil
		}
		c.log.Info("group: evicting empty group", "group", victim.id)
		c.killGroup(victim, errCoordinatorUnavailable)
		delete(c.groups, victim.id)
		c.persistGone(victim.id)
	}
	g := &group{
		id:          id,
		members:     make(map[string]*member),
		static:      make(map[string]string),
		pending:     make(map[string]*pendingMember),
		pendingSync: make(map[string]struct{}),
	}
	c.markEmpty(g)
	c.groups[id] = g
	return g
}

func (c *Coordinator) markEmpty(g *group) {
	g.state = Empty
	c.emptySeqNext++
	g.emptySeq = c.emptySeqNext
}

// sortedGroups returns the groups ordered by id, for deterministic output.
func (c *Coordinator) sortedGroups() []*group {
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	slices.SortFunc(gs, func(a, b *group) int { return cmp.Compare(a.id, b.id) })
	return gs
}

func joinErr(memberID string, code int16) JoinResponse {
	return JoinResponse{ErrorCode: code, Generation: -1, MemberID: memberID}
}

// sortedKeys returns m's keys in ascending order (map walks whose order
// reaches timers or answers go through it).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
