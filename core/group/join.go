package group

import (
	"context"
	"slices"
	"time"
)

// Join handles JoinGroup v0-v9. It blocks until the join phase of the
// group's rebalance ends (or answers at once when no rebalance is needed or
// on error). A non-nil error is ctx's: the caller has gone and the response
// must not be sent; the member stays in the join as in Kafka, where a
// disconnect does not cancel a JoinGroup.
func (c *Coordinator) Join(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	c.mu.Lock()
	resp, ch := c.join(req)
	c.mu.Unlock()
	return await(ctx, resp, ch, joinErr(req.MemberID, errRebalanceInProgress))
}

// await is how Join and Sync answer: resp at once when there is nothing to
// wait for (ch nil), else whatever the rebalance sends on ch, or, when the
// caller goes away first, gone with ctx's error. It runs without c.mu held
// (a synctest bubble cannot advance time while anyone waits on a mutex).
func await[T any](ctx context.Context, resp T, ch <-chan T, gone T) (T, error) {
	if ch == nil {
		return resp, nil
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		return gone, ctx.Err()
	}
}

// join returns either a response or a channel the response will arrive on.
func (c *Coordinator) join(req JoinRequest) (JoinResponse, chan JoinResponse) {
	if c.closed {
		return joinErr(req.MemberID, errNotCoordinator), nil
	}
	if code := c.validateJoin(req); code != errNone {
		return joinErr(req.MemberID, code), nil
	}
	if cg := c.cgroups[req.Group]; cg != nil {
		if len(cg.members) > 0 {
			// Mixed classic/consumer groups are not served.
			return joinErr(req.MemberID, errInconsistentProtocol), nil
		}
		// An Empty consumer group becomes a classic group.
		c.killConsumerGroup(cg)
		delete(c.cgroups, req.Group)
		c.persistGone(req.Group)
	}
	g := c.groups[req.Group]
	if g == nil {
		if req.MemberID != "" {
			return joinErr(req.MemberID, errUnknownMemberID), nil
		}
		if g = c.createGroup(req.Group); g == nil {
			return joinErr(req.MemberID, errCoordinatorUnavailable), nil
		}
	}
	id := req.MemberID
	if id == "" && req.InstanceID != "" {
		id = g.static[req.InstanceID] // a restarting static member is no newcomer
	}
	if !c.acceptJoining(g, id) {
		if m := g.members[req.MemberID]; m != nil {
			c.removeMember(g, m, "group max size reached")
		}
		return joinErr("", errGroupMaxSizeReached), nil
	}
	var resp JoinResponse
	var ch chan JoinResponse
	if req.MemberID == "" {
		resp, ch = c.joinNew(g, req)
	} else {
		resp, ch = c.joinCurrent(g, req)
	}
	c.tryCompleteJoin(g)
	return resp, ch
}

func (c *Coordinator) validateJoin(req JoinRequest) int16 {
	if req.Group == "" || len(req.Group) > StringBytesMax {
		return errInvalidGroupID
	}
	session := msDuration(req.SessionTimeoutMs)
	if session < c.opts.SessionTimeoutMin || session > c.opts.SessionTimeoutMax {
		return errInvalidSessionTimeout
	}
	for _, s := range []string{req.MemberID, req.InstanceID, req.ClientID, req.ClientHost, req.ProtocolType} {
		if len(s) > StringBytesMax {
			return errInvalidRequest
		}
	}
	if len(req.Protocols) > c.opts.ProtocolsPerMemberMax {
		return errInvalidRequest
	}
	size := 0
	for _, p := range req.Protocols {
		if len(p.Name) > StringBytesMax {
			return errInvalidRequest
		}
		size += len(p.Metadata)
	}
	if size > c.opts.MemberMetadataBytesMax {
		return errInvalidRequest
	}
	return errNone
}

// acceptJoining is Kafka's acceptJoiningMember: the size limit counts the
// members that rejoined while preparing, all members otherwise. Unlike
// Kafka, a known static member rejoining without its member id counts as
// existing, so a full group does not turn away a restarting static member.
func (c *Coordinator) acceptJoining(g *group, memberID string) bool {
	m := g.members[memberID]
	switch g.state {
	case PreparingRebalance:
		if m != nil && m.joinCh != nil {
			return true
		}
		n := 0
		for _, m := range g.members {
			if m.joinCh != nil {
				n++
			}
		}
		return n < c.opts.MembersPerGroupMax
	case CompletingRebalance, Stable:
		return m != nil || len(g.members) < c.opts.MembersPerGroupMax
	}
	return true
}

// joinNew handles a join without a member id.
func (c *Coordinator) joinNew(g *group, req JoinRequest) (JoinResponse, chan JoinResponse) {
	if !g.supports(req.ProtocolType, req.Protocols) {
		return joinErr("", errInconsistentProtocol), nil
	}
	id := c.newMemberID(req.ClientID, req.InstanceID)
	if req.InstanceID != "" {
		if old, ok := g.static[req.InstanceID]; ok {
			return c.replaceStatic(g, old, id, req)
		}
		return c.addMember(g, id, req)
	}
	if req.Version >= 4 {
		if len(g.pending) >= c.opts.MembersPerGroupMax {
			return joinErr("", errGroupMaxSizeReached), nil
		}
		c.addPending(g, id, msDuration(req.SessionTimeoutMs))
		return joinErr(id, errMemberIDRequired), nil
	}
	return c.addMember(g, id, req)
}

// joinCurrent handles a join with a member id (Kafka's
// doCurrentMemberJoinGroup).
func (c *Coordinator) joinCurrent(g *group, req JoinRequest) (JoinResponse, chan JoinResponse) {
	if !g.supports(req.ProtocolType, req.Protocols) {
		return joinErr(req.MemberID, errInconsistentProtocol), nil
	}
	if _, ok := g.pending[req.MemberID]; ok {
		c.removePending(g, req.MemberID)
		if req.InstanceID != "" {
			// Kafka: IllegalStateException. A pending id is dynamic; make
			// the client start over as a static member.
			return joinErr(req.MemberID, errUnknownMemberID), nil
		}
		return c.addMember(g, req.MemberID, req)
	}
	if g.fenced(req.InstanceID, req.MemberID) {
		return joinErr(req.MemberID, errFencedInstanceID), nil
	}
	m := g.members[req.MemberID]
	if m == nil || (req.InstanceID != "" && g.static[req.InstanceID] == "") {
		return joinErr(req.MemberID, errUnknownMemberID), nil
	}
	switch g.state {
	case PreparingRebalance:
		return c.updateMemberAndRebalance(g, m, req, "member rejoined")
	case CompletingRebalance:
		if m.matches(req.ProtocolType, req.Protocols) {
			// A retry of a join whose response was lost.
			return g.currentJoin(m), nil
		}
		return c.updateMemberAndRebalance(g, m, req, "member metadata changed")
	case Stable:
		if m.id == g.leader {
			return c.updateMemberAndRebalance(g, m, req, "leader rejoined")
		}
		if !m.matches(req.ProtocolType, req.Protocols) {
			return c.updateMemberAndRebalance(g, m, req, "member metadata changed")
		}
		r := g.currentJoin(m)
		r.Members = nil
		return r, nil
	}
	return joinErr(req.MemberID, errUnknownMemberID), nil
}

// updateMember stores a rejoin's protocols and timeouts and makes m await
// the join. A join it supersedes is told REBALANCE_IN_PROGRESS.
func (c *Coordinator) updateMember(m *member, req JoinRequest) chan JoinResponse {
	m.replyJoin(joinErr(m.id, errRebalanceInProgress))
	m.protocolType = req.ProtocolType
	m.protocols = cloneProtocols(req.Protocols)
	m.session = msDuration(req.SessionTimeoutMs)
	m.rebalance = rebalanceTimeout(req)
	m.joinCh = make(chan JoinResponse, 1)
	return m.joinCh
}

func (c *Coordinator) updateMemberAndRebalance(g *group, m *member, req JoinRequest, reason string) (JoinResponse, chan JoinResponse) {
	ch := c.updateMember(m, req)
	c.maybePrepareRebalance(g, reason)
	return JoinResponse{}, ch
}

func (c *Coordinator) addMember(g *group, id string, req JoinRequest) (JoinResponse, chan JoinResponse) {
	c.memberSeqNext++
	m := &member{
		id:            id,
		instanceID:    req.InstanceID,
		clientID:      req.ClientID,
		clientHost:    req.ClientHost,
		seq:           c.memberSeqNext,
		isNew:         true,
		assignmentGen: -1,
	}
	ch := c.updateMember(m, req)
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.members[id] = m
	if g.leader == "" {
		g.leader = id
	}
	if req.InstanceID != "" {
		g.static[req.InstanceID] = id
	}
	c.armSession(g, m, c.opts.NewMemberJoinTimeout)
	c.log.Debug("group: member added", "group", g.id, "member", id, "instance", req.InstanceID, "reason", req.Reason)
	c.maybePrepareRebalance(g, "member added")
	return JoinResponse{}, ch
}

// replaceStatic gives a known static member a new member id (KIP-345): the
// old id is fenced and, when the group is Stable and the selected protocol
// would not change, no rebalance happens: the member keeps its assignment.
func (c *Coordinator) replaceStatic(g *group, oldID, newID string, req JoinRequest) (JoinResponse, chan JoinResponse) {
	m := g.members[oldID]
	oldLeader := g.leader
	m.replyJoin(joinErr(oldID, errFencedInstanceID))
	m.replySync(SyncResponse{ErrorCode: errFencedInstanceID})
	delete(g.members, oldID)
	m.id = newID
	g.members[newID] = m
	g.static[req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	if _, ok := g.pendingSync[oldID]; ok {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = struct{}{}
	}
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	ch := c.updateMember(m, req)
	c.armSession(g, m, m.session)
	c.log.Info("group: static member replaced", "group", g.id, "instance", req.InstanceID,
		"old", oldID, "new", newID, "state", g.state.String())
	switch g.state {
	case Stable:
		if g.selectProtocol() != g.protocol {
			c.maybePrepareRebalance(g, "static member rejoined with other protocols")
			return JoinResponse{}, ch
		}
		m.joinCh = nil
		c.persist(g) // the member's new id
		r := g.currentJoin(m)
		r.LeaderID, r.Members = oldLeader, nil
		if g.leader == newID && req.Version >= 9 {
			// KIP-814: the leader learns it leads but must not reassign.
			r.LeaderID, r.Members, r.SkipAssignment = newID, g.memberList(), true
		}
		return r, nil
	case CompletingRebalance:
		// The leader may already be assigning to the old id.
		c.maybePrepareRebalance(g, "static member rejoined while completing")
	}
	return JoinResponse{}, ch
}

func rebalanceTimeout(req JoinRequest) time.Duration {
	if req.RebalanceTimeoutMs <= 0 {
		return msDuration(req.SessionTimeoutMs)
	}
	return msDuration(req.RebalanceTimeoutMs)
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func cloneProtocols(ps []Protocol) []Protocol {
	out := make([]Protocol, len(ps))
	for i, p := range ps {
		out[i] = Protocol{Name: p.Name, Metadata: slices.Clone(p.Metadata)}
	}
	return out
}
