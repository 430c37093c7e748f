package group

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Replicated membership of consumer-protocol groups (KIP-848; see doc.go,
// "Consumer protocol"): what Kafka writes as ConsumerGroupMetadata,
// ConsumerGroupMemberMetadata, TargetAssignment and CurrentMemberAssignment
// records, here as one record per group replacing the previous, through
// the same Options.Persist as classic groups. The first byte tells the
// kinds apart: recordVersion (1) is a classic group, consumerRecordVersion
// (2) a consumer group.
//
// The coordinator encodes the group after every request or timer that may
// change it and hands the record out when the bytes differ from the last
// ones handed out. A successful join or heartbeat is answered only once
// the record its answer reflects committed (Kafka too answers after the
// records are written): a coordinator that lost the controller leadership
// unawares thus never hands out an epoch or assignment that its successor,
// loading the previous record, contradicts, e.g. a partition a member was
// given here while the successor still has its previous owner revoking it
// and gives it to a third. If the write fails the held answers get
// NOT_COORDINATOR (the client retries its heartbeat, keeping its
// partitions), the member's next answer carries its full assignment, and
// the next heartbeat writes the record again. Leaves and timer removals
// are written but not waited for: they hand nothing out.
//
// Record format (version 2), integers as in encoding/binary's varints:
//
//	version u8 = 2 | group epoch, assignment epoch (varints) |
//	assignor (string) | subscribed topic count uvarint, per topic (by
//	name): name (string), id [16]byte, partitions uvarint |
//	member count uvarint | per member (by id): id, instance id, rack,
//	client id, client host (strings), subscribed name count uvarint and
//	names (strings), regex, server assignor (strings), rebalance ms
//	uvarint, member epoch, previous member epoch (varints), flags u8
//	(1: left with epoch -2), resolved topic count uvarint and names
//	(strings), assigned, revoking, target (assignments)
//	assignment: topic count uvarint, per topic (by id): id [16]byte,
//	partition count uvarint, partitions (uvarints, ascending)
//
// Decoding checks every count against the bytes left and the Options'
// limits, validates regexes and assignors, rebuilds the owners and checks
// the group's invariants; it never panics.

const consumerRecordVersion = 2

const flagStaticLeft = 1

// metaUnseen is a cgroup.metaSeen no metadata version ever has: a loaded
// group re-resolves its subscriptions at its next request.
const metaUnseen = ^uint64(0)

// persistConsumer hands g's record to Options.Persist if it changed since
// the last one handed out. It returns the Seq an answer reflecting g's
// state must wait for (0: nothing uncommitted). Only a coordinator in a
// tenure persists.
func (c *Coordinator) persistConsumer(g *cgroup) uint64 {
	if c.opts.Persist == nil || c.termOf(g.id) == 0 {
		return 0
	}
	data := encodeCgroup(g)
	if !bytes.Equal(data, g.written) {
		c.persistSeq++
		seq := c.persistSeq
		g.written, g.writtenSeq = data, seq
		c.opts.Persist(Record{Group: g.id, Term: c.termOf(g.id), Seq: seq, Data: c.recordData(g.id, data)}, func(err error) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.consumerStored(g, seq, err)
		})
	}
	if g.writtenSeq > g.committedSeq {
		return g.writtenSeq
	}
	return 0
}

// holdConsumerAnswer writes the group's record after a heartbeat and, for
// a successful join or heartbeat while the record is uncommitted, returns
// the channel its answer *r will arrive on once it committed (nil: answer
// now). A member has at most one held answer: an older one is answered
// NOT_COORDINATOR (its client retried; that answer goes nowhere).
func (c *Coordinator) holdConsumerAnswer(req ConsumerHeartbeatRequest, r *ConsumerHeartbeatResponse) chan ConsumerHeartbeatResponse {
	g := c.cgroups[req.Group]
	if c.closed || g == nil {
		return nil
	}
	seq := c.persistConsumer(g)
	if seq == 0 || r.ErrorCode != errNone || req.MemberEpoch < 0 {
		return nil
	}
	if i := slices.IndexFunc(g.waiters, func(w cwaiter) bool { return w.member == r.MemberID }); i >= 0 {
		g.waiters[i].ch <- ConsumerHeartbeatResponse{ErrorCode: errNotCoordinator, MemberID: r.MemberID}
		g.waiters = slices.Delete(g.waiters, i, i+1)
		if m := g.members[r.MemberID]; m != nil {
			m.sendAssignment = true
		}
	}
	ch := make(chan ConsumerHeartbeatResponse, 1)
	g.waiters = append(g.waiters, cwaiter{member: r.MemberID, seq: seq, resp: *r, ch: ch})
	return ch
}

// consumerStored is the outcome of the write of g's record seq: committed
// answers go out; if the latest record failed, every held answer gets
// NOT_COORDINATOR and the next change or heartbeat writes again. The
// failure of a record a later one superseded is left to the later one's
// outcome (it carries the whole group).
func (c *Coordinator) consumerStored(g *cgroup, seq uint64, err error) {
	if c.closed || c.cgroups[g.id] != g {
		return // killConsumerGroup answered its waiters
	}
	switch {
	case err == nil:
		g.committedSeq = max(g.committedSeq, seq)
		keep := g.waiters[:0]
		for _, w := range g.waiters {
			if w.seq <= g.committedSeq {
				w.ch <- w.resp
				continue
			}
			keep = append(keep, w)
		}
		clear(g.waiters[len(keep):])
		g.waiters = keep
	case seq == g.writtenSeq:
		c.log.Warn("group: consumer group's record not written; answers withheld", "group", g.id, "epoch", g.epoch, "err", err)
		g.written = nil
		for _, w := range g.waiters {
			w.ch <- ConsumerHeartbeatResponse{ErrorCode: errNotCoordinator, MemberID: w.member}
			if m := g.members[w.member]; m != nil {
				m.sendAssignment = true
			}
		}
		g.waiters = nil
	}
}

// encodeCgroup is g's record (deterministic: members by id, topics of an
// assignment by id).
func encodeCgroup(g *cgroup) []byte {
	b := []byte{consumerRecordVersion}
	b = binary.AppendVarint(b, int64(g.epoch))
	b = binary.AppendVarint(b, int64(g.assignmentEpoch))
	b = appendStr(b, g.assignor)
	b = binary.AppendUvarint(b, uint64(len(g.subscribed)))
	for _, t := range g.subscribed {
		b = appendStr(b, t.Name)
		b = append(b, t.ID[:]...)
		b = binary.AppendUvarint(b, uint64(t.Partitions))
	}
	ms := g.sortedMembers()
	b = binary.AppendUvarint(b, uint64(len(ms)))
	for _, m := range ms {
		for _, s := range []string{m.id, m.instanceID, m.rackID, m.clientID, m.clientHost} {
			b = appendStr(b, s)
		}
		b = appendStrs(b, m.names)
		b = appendStr(b, m.regex)
		b = appendStr(b, m.assignor)
		b = binary.AppendUvarint(b, uint64(m.rebalance.Milliseconds()))
		b = binary.AppendVarint(b, int64(m.epoch))
		b = binary.AppendVarint(b, int64(m.prevEpoch))
		flags := byte(0)
		if m.staticLeft {
			flags |= flagStaticLeft
		}
		b = append(b, flags)
		b = appendStrs(b, m.topics)
		b = appendAssignment(b, m.assigned)
		b = appendAssignment(b, m.revoking)
		b = appendAssignment(b, g.target[m.id])
	}
	return b
}

func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// appendAssignment encodes a's non-empty topics by id.
func appendAssignment(b []byte, a assignment) []byte {
	ids := make([][16]byte, 0, len(a))
	for id, ps := range a {
		if len(ps) > 0 {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = append(b, id[:]...)
		ps := slices.Sorted(slices.Values(a[id]))
		b = binary.AppendUvarint(b, uint64(len(ps)))
		for _, p := range ps {
			b = binary.AppendUvarint(b, uint64(p))
		}
	}
	return b
}

// count reads a count of entries each at least one byte long: at most
// limit and at most the bytes left.
func (r *recReader) count(limit int) int {
	return int(r.uvar(uint64(min(limit, len(r.b)))))
}

func (r *recReader) varint32(minV int32) int32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 || v < int64(minV) || v > 1<<31-1 {
		r.fail("bad varint (at least %d)", minV)
		return 0
	}
	r.b = r.b[n:]
	return int32(v)
}

func (r *recReader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *recReader) id16() [16]byte {
	var id [16]byte
	if r.err != nil {
		return id
	}
	if len(r.b) < 16 {
		r.fail("truncated topic id")
		return id
	}
	copy(id[:], r.b)
	r.b = r.b[16:]
	return id
}

func (r *recReader) strs(limit int) []string {
	n := r.count(limit)
	var out []string
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.str(StringBytesMax))
	}
	return out
}

// assignment reads one assignment: each topic once, partitions ascending.
func (r *recReader) assignment() assignment {
	a := assignment{}
	n := r.count(len(r.b))
	for i := 0; i < n && r.err == nil; i++ {
		id := r.id16()
		np := r.count(len(r.b))
		if r.err == nil && (np == 0 || a[id] != nil) {
			r.fail("topic %x: %d partitions or listed twice", id, np)
		}
		ps := make([]int32, 0, np)
		for j := 0; j < np && r.err == nil; j++ {
			p := int32(r.uvar(1<<31 - 1))
			if j > 0 && p <= ps[j-1] {
				r.fail("topic %x: partitions not ascending", id)
			}
			ps = append(ps, p)
		}
		a[id] = ps
	}
	return a
}

// decodeCgroup parses a consumer group's record into a group of id (no
// timers armed). Errors wrap ErrBadRecord.
func (c *Coordinator) decodeCgroup(id string, data []byte) (*cgroup, error) {
	if len(data) < 1 || data[0] != consumerRecordVersion {
		return nil, fmt.Errorf("%w: not a consumer group record", ErrBadRecord)
	}
	r := &recReader{b: data[1:]}
	g := &cgroup{
		id: id, members: map[string]*cmember{}, static: map[string]string{},
		target: map[string]assignment{}, owners: map[topicPartition]string{}, metaSeen: metaUnseen,
	}
	g.epoch, g.assignmentEpoch = r.varint32(0), r.varint32(0)
	g.assignor = r.str(StringBytesMax)
	if r.err == nil && g.assignor != "" && !assignorSupported(g.assignor) {
		r.fail("assignor %q", g.assignor)
	}
	nt := r.count(SubscribedTopicsMax)
	for i := 0; i < nt && r.err == nil; i++ {
		t := TopicInfo{Name: r.str(StringBytesMax), ID: r.id16(), Partitions: int32(r.uvar(1<<31 - 1))}
		g.subscribed = append(g.subscribed, t)
	}
	nm := r.count(c.opts.MembersPerGroupMax)
	for i := 0; i < nm && r.err == nil; i++ {
		m := decodeCmember(r)
		if r.err != nil {
			break
		}
		if g.members[m.id] != nil || (m.instanceID != "" && g.static[m.instanceID] != "") {
			r.fail("member %q or its instance %q twice", m.id, m.instanceID)
			break
		}
		g.members[m.id] = m
		if m.instanceID != "" {
			g.static[m.instanceID] = m.id
		}
		g.target[m.id] = r.assignment()
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d trailing bytes", len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	for _, m := range g.sortedMembers() {
		for _, tp := range append(m.assigned.flatten(), m.revoking.flatten()...) {
			if _, dup := g.owners[tp]; dup {
				return nil, fmt.Errorf("%w: partition %v owned twice", ErrBadRecord, tp)
			}
			g.owners[tp] = m.id
		}
	}
	if err := g.checkInvariants(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	return g, nil
}

// decodeCmember reads one member up to (not including) its target.
func decodeCmember(r *recReader) *cmember {
	m := &cmember{
		id: r.str(StringBytesMax), instanceID: r.str(StringBytesMax), rackID: r.str(StringBytesMax),
		clientID: r.str(StringBytesMax), clientHost: r.str(StringBytesMax),
		names: r.strs(SubscribedTopicsMax), regex: r.str(StringBytesMax), assignor: r.str(StringBytesMax),
		rebalance: time.Duration(r.uvar(1<<31-1)) * time.Millisecond,
		epoch:     r.varint32(0), prevEpoch: r.varint32(-1),
	}
	flags := r.byte1()
	m.topics = r.strs(len(r.b))
	m.assigned, m.revoking = r.assignment(), r.assignment()
	switch {
	case r.err != nil:
		return m
	case m.id == "":
		r.fail("empty member id")
	case flags&^flagStaticLeft != 0 || (flags&flagStaticLeft != 0 && m.instanceID == ""):
		r.fail("member %q: flags %#x", m.id, flags)
	case m.assignor != "" && !assignorSupported(m.assignor):
		r.fail("member %q: assignor %q", m.id, m.assignor)
	case !slices.IsSortedFunc(m.topics, cmp.Compare[string]):
		r.fail("member %q: topics not sorted", m.id)
	}
	m.staticLeft = flags&flagStaticLeft != 0
	if m.regex != "" && r.err == nil {
		re, err := regexp.Compile("^(?:" + m.regex + ")$")
		if err != nil {
			r.fail("member %q: regex: %v", m.id, err)
		}
		m.re = re
	}
	return m
}

// loadConsumer installs a consumer group's record in a new tenure (c.mu
// held): members keep their epochs, assignments and revocations; every
// session (and revocation's rebalance timeout) starts now; each member's
// next answer carries its full assignment (an answer the old coordinator
// held or lost is not lost here); subscriptions are re-resolved at the
// group's next request, a regex one at its member's next heartbeat (which
// brings the member's topic check, not kept in a record).
func (c *Coordinator) loadConsumer(rec Record) (*cgroup, error) {
	g, err := c.decodeCgroup(rec.Group, rec.Data)
	if err != nil {
		return nil, err
	}
	g.written = encodeCgroup(g) // what the controller holds, in effect
	c.cgroups[g.id] = g
	for _, m := range g.sortedMembers() {
		m.sendAssignment = true
		c.armConsumerSession(g, m)
		if len(m.revoking) > 0 && !m.staticLeft {
			c.armRevoke(g, m)
		}
	}
	return g, nil
}
