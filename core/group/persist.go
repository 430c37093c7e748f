package group

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Replicated membership of classic groups (see doc.go, "Coordinator
// moves"): Kafka's group metadata record in __consumer_offsets. The
// coordinator hands a Record to Options.Persist when a generation
// completes (the leader's SyncGroup made the group Stable), when a static
// member was replaced without a rebalance, when the group became Empty,
// and when it was deleted or evicted (Data nil). A coordinator beginning a
// tenure loads the records it is given (BeginTenure).
//
// Consumer-protocol groups have records of their own kind (first byte 2,
// consumer_persist.go).
//
// Record format (version 1), integers as in encoding/binary's varints:
//
//	version u8 | state u8 (Empty or Stable) | generation varint |
//	protocol type, protocol, leader (strings) | member count uvarint |
//	per member in join order: id, instance id, client id, client host
//	(strings), session ms, rebalance ms (uvarints), protocol count,
//	per protocol: name (string), metadata (bytes); assignment (bytes)
//
// Strings and bytes carry a uvarint length. Decoding checks every length
// and count against the Options' limits and never panics.

// Record is one group's replicated membership: what Options.Persist
// receives and BeginTenure loads. Term and Seq order the writes: Term is
// the tenure (BeginTenure's term) that wrote it, Seq counts this
// coordinator's writes up. Data nil means the group is gone.
type Record struct {
	Group string
	Term  uint64
	Seq   uint64
	Data  []byte
}

const recordVersion = 1

// RecordBytesMax bounds a record's Data; a group whose record would be
// larger is persisted as gone (its members rejoin after a move).
const RecordBytesMax = 15 << 20

// ErrBadRecord: a record's bytes are not a valid group record.
var ErrBadRecord = errors.New("group: bad record")

// persist hands g's record to Options.Persist. Only a coordinator in a
// tenure persists (the shell begins one before serving any group).
func (c *Coordinator) persist(g *group) {
	if c.opts.Persist == nil || c.termOf(g.id) == 0 {
		return
	}
	c.persistSeq++
	c.opts.Persist(Record{Group: g.id, Term: c.termOf(g.id), Seq: c.persistSeq, Data: c.recordData(g.id, encodeGroup(g))}, nil)
}

// recordData is data, or nil (the group persisted as gone) beyond
// RecordBytesMax.
func (c *Coordinator) recordData(id string, data []byte) []byte {
	if len(data) > RecordBytesMax {
		c.log.Warn("group: record too large to persist; persisted as gone", "group", id, "bytes", len(data))
		return nil
	}
	return data
}

// storeThenInstall completes the leader's SyncGroup (Kafka's storeGroup):
// the generation's record, with the leader's assignments, is handed to
// Options.Persist, and only once it committed are the assignments
// installed and the members answered (installAssignments). Were they
// answered first, a coordinator that lost the controller leadership
// without knowing it yet (a partitioned old leader) could hand out a
// generation the next coordinator, loading the previous record, hands
// out again with other assignments. If the write fails, the members
// waiting in SyncGroup get NOT_COORDINATOR and the group rebalances.
// Without a tenure or Persist the assignments install at once.
func (c *Coordinator) storeThenInstall(g *group, staged map[string][]byte) {
	if c.opts.Persist == nil || c.termOf(g.id) == 0 {
		c.installAssignments(g, staged)
		return
	}
	c.persistSeq++
	seq := c.persistSeq
	g.storeSeq = seq
	data := c.recordData(g.id, encodeGroupAs(g, Stable, func(m *member) []byte { return staged[m.id] }))
	c.opts.Persist(Record{Group: g.id, Term: c.termOf(g.id), Seq: seq, Data: data}, func(err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.stored(g, seq, staged, err)
	})
}

// stored is the outcome of storeThenInstall's write; it does nothing if
// the group moved on meanwhile (closed, deleted, rebalancing).
func (c *Coordinator) stored(g *group, seq uint64, staged map[string][]byte, err error) {
	if c.closed || c.groups[g.id] != g || g.storeSeq != seq || g.state != CompletingRebalance {
		return
	}
	g.storeSeq = 0
	if err == nil {
		c.installAssignments(g, staged)
		return
	}
	c.log.Warn("group: generation's record not written; rebalancing", "group", g.id, "generation", g.generation, "err", err)
	for _, m := range g.sortedMembers() {
		if m.syncCh != nil {
			m.replySync(SyncResponse{ErrorCode: errNotCoordinator})
			c.armSession(g, m, m.session) // on hold while it waited
		}
	}
	c.prepareRebalance(g, "record not written")
}

// persistGone records that group id is no longer held (deleted, evicted,
// or turned into a consumer group).
func (c *Coordinator) persistGone(id string) {
	c.persistGoneDone(id, nil)
}

// persistGoneDone is persistGone telling done the write's outcome; it
// reports whether a record was handed out (false: nothing to write, done
// is not called).
func (c *Coordinator) persistGoneDone(id string, done func(error)) bool {
	if c.opts.Persist == nil || c.termOf(id) == 0 {
		return false
	}
	c.persistSeq++
	c.opts.Persist(Record{Group: id, Term: c.termOf(id), Seq: c.persistSeq}, done)
	return true
}

// encodeGroup is g's record as it is.
func encodeGroup(g *group) []byte {
	if g.state != Empty && g.state != Stable {
		panic(fmt.Sprintf("group %q: persisting in state %v", g.id, g.state))
	}
	return encodeGroupAs(g, g.state, func(m *member) []byte { return m.assignment })
}

// encodeGroupAs is g's record in state with the members' assignments
// from assignment.
func encodeGroupAs(g *group, state State, assignment func(*member) []byte) []byte {
	b := []byte{recordVersion, byte(state)}
	b = binary.AppendVarint(b, int64(g.generation))
	b = appendStr(b, g.protocolType)
	b = appendStr(b, g.protocol)
	b = appendStr(b, g.leader)
	ms := g.sortedMembers()
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		for _, s := range []string{m.id, m.instanceID, m.clientID, m.clientHost} {
			b = appendStr(b, s)
		}
		b = binary.AppendUvarint(b, uint64(m.session.Milliseconds()))
		b = binary.AppendUvarint(b, uint64(m.rebalance.Milliseconds()))
		b = binary.AppendUvarint(b, uint64(len(m.protocols)))
		for _, p := range m.protocols {
			b = appendStr(b, p.Name)
			b = appendStr(b, string(p.Metadata))
		}
		b = appendStr(b, string(assignment(m)))
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// recReader reads a record; the first error sticks and later reads
// return zero values.
type recReader struct {
	b   []byte
	err error
}

func (r *recReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrBadRecord, fmt.Sprintf(format, args...))
	}
}

func (r *recReader) uvar(maxV uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > maxV {
		r.fail("bad uvarint (limit %d)", maxV)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recReader) str(maxLen int) string {
	n := r.uvar(uint64(maxLen))
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail("length %d beyond input", n)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// decodeGroup parses a record into a group of id (no timers armed). Errors wrap ErrBadRecord.
func (c *Coordinator) decodeGroup(id string, data []byte) (*group, error) {
	r := &recReader{b: data}
	if len(data) < 2 || data[0] != recordVersion {
		return nil, fmt.Errorf("%w: unknown version or empty", ErrBadRecord)
	}
	state := State(data[1])
	r.b = r.b[2:]
	gen, n := binary.Varint(r.b)
	if n <= 0 || gen < 0 || gen > 1<<31-1 {
		return nil, fmt.Errorf("%w: bad generation", ErrBadRecord)
	}
	r.b = r.b[n:]
	g := &group{
		id: id, state: state, generation: int32(gen),
		protocolType: r.str(StringBytesMax), protocol: r.str(StringBytesMax), leader: r.str(StringBytesMax),
		members: make(map[string]*member), static: make(map[string]string),
		pending: make(map[string]*pendingMember), pendingSync: make(map[string]struct{}),
	}
	count := int(r.uvar(uint64(c.opts.MembersPerGroupMax)))
	for i := 0; i < count && r.err == nil; i++ {
		m := c.decodeMember(r, g.generation)
		m.protocolType = g.protocolType // members share the group's
		c.memberSeqNext++               // join order: the record lists members in it
		m.seq = c.memberSeqNext
		if g.members[m.id] != nil || (m.instanceID != "" && g.static[m.instanceID] != "") {
			r.fail("member %q or its instance %q twice", m.id, m.instanceID)
		}
		g.members[m.id] = m
		if m.instanceID != "" {
			g.static[m.instanceID] = m.id
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	switch {
	case state == Empty && (count != 0 || g.leader != ""),
		state == Stable && (count == 0 || g.members[g.leader] == nil || g.protocol == "" || g.generation == 0),
		state != Empty && state != Stable:
		return nil, fmt.Errorf("%w: state %v, %d members, leader %q, protocol %q", ErrBadRecord, state, count, g.leader, g.protocol)
	}
	return g, nil
}

func (c *Coordinator) decodeMember(r *recReader, gen int32) *member {
	m := &member{
		id: r.str(StringBytesMax), instanceID: r.str(StringBytesMax),
		clientID: r.str(StringBytesMax), clientHost: r.str(StringBytesMax),
		session:       time.Duration(r.uvar(uint64(c.opts.SessionTimeoutMax.Milliseconds()))) * time.Millisecond,
		rebalance:     time.Duration(r.uvar(1<<31-1)) * time.Millisecond,
		assignmentGen: gen,
	}
	if m.id == "" {
		r.fail("empty member id")
	}
	np := int(r.uvar(uint64(c.opts.ProtocolsPerMemberMax)))
	size := 0
	for i := 0; i < np && r.err == nil; i++ {
		p := Protocol{Name: r.str(StringBytesMax), Metadata: []byte(r.str(c.opts.MemberMetadataBytesMax))}
		size += len(p.Metadata)
		m.protocols = append(m.protocols, p)
	}
	if size > c.opts.MemberMetadataBytesMax {
		r.fail("member %q: %d metadata bytes", m.id, size)
	}
	m.assignment = []byte(r.str(c.opts.AssignmentBytesMax))
	return m
}

// load installs the records of a new tenure (c.mu held, no group held):
// each valid classic one as a group Stable at its generation with its
// members, leader, protocol and assignments, every member's session
// starting now, or Empty at its generation; each consumer one as its
// group (loadConsumer). Invalid records are logged and skipped (their
// members rejoin); at most GroupsMax groups load.
func (c *Coordinator) load(records []Record) int {
	records = slices.SortedFunc(slices.Values(records), func(a, b Record) int { return cmp.Compare(a.Group, b.Group) })
	loaded := 0
	for _, rec := range records {
		if len(rec.Data) == 0 || c.groups[rec.Group] != nil || c.cgroups[rec.Group] != nil {
			continue
		}
		if len(c.groups)+len(c.cgroups) >= c.opts.GroupsMax {
			c.log.Warn("group: groups limit reached while loading; rest not loaded", "groups", len(c.groups), "group", rec.Group)
			break
		}
		if rec.Data[0] == consumerRecordVersion {
			cg, err := c.loadConsumer(rec)
			if err != nil {
				c.log.Warn("group: consumer group record not loaded; its members rejoin", "group", rec.Group, "err", err)
				continue
			}
			loaded++
			c.log.Info("group: loaded consumer group", "group", cg.id, "epoch", cg.epoch, "members", len(cg.members))
			continue
		}
		g, err := c.decodeGroup(rec.Group, rec.Data)
		if err != nil {
			c.log.Warn("group: record not loaded; its members rejoin", "group", rec.Group, "err", err)
			continue
		}
		c.groups[g.id] = g
		if g.state == Empty {
			c.markEmpty(g)
		}
		for _, m := range g.sortedMembers() {
			c.armSession(g, m, m.session)
		}
		loaded++
		c.log.Info("group: loaded", "group", g.id, "state", g.state.String(), "generation", g.generation, "members", len(g.members))
	}
	return loaded
}
