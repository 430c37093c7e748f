package group

import (
	"fmt"
	"time"
)

// This file holds the state transitions shared by the API paths. Every
// function here runs with c.mu held.

// maybePrepareRebalance starts a rebalance unless one is already running.
func (c *Coordinator) maybePrepareRebalance(g *group, reason string) {
	switch g.state {
	case Empty, CompletingRebalance, Stable:
		c.prepareRebalance(g, reason)
	}
}

// prepareRebalance moves g to PreparingRebalance: members awaiting sync are
// told REBALANCE_IN_PROGRESS and everybody must rejoin before the join
// timer (the largest rebalance timeout) runs out.
func (c *Coordinator) prepareRebalance(g *group, reason string) {
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			m.assignment, m.assignmentGen = nil, -1
			if m.syncCh != nil {
				// Its session was on hold while it waited; restart it now
				// (as Kafka's propagateAssignment does).
				m.replySync(SyncResponse{ErrorCode: errRebalanceInProgress})
				c.armSession(g, m, m.session)
			}
		}
	}
	stopTimer(&g.syncTimer, &g.syncTimerSeq)
	clear(g.pendingSync)
	g.storeSeq = 0 // a write still in flight no longer completes the sync
	stopTimer(&g.joinTimer, &g.joinTimerSeq)
	timeout := g.rebalanceTimeout()
	delay := c.opts.InitialRebalanceDelay
	if g.state == Empty && delay > 0 {
		g.initialDelay = true
		g.initialRemaining = max(timeout-delay, 0)
		g.joinTimer = c.arm(delay, &g.joinTimerSeq, func() { c.joinTimerFired(g) })
	} else {
		g.initialDelay = false
		g.joinTimer = c.arm(timeout, &g.joinTimerSeq, func() { c.joinTimerFired(g) })
	}
	c.log.Info("group: preparing rebalance", "group", g.id, "generation", g.generation,
		"from", g.state.String(), "reason", reason)
	g.state = PreparingRebalance
	c.tryCompleteJoin(g)
}

func (c *Coordinator) joinTimerFired(g *group) {
	if g.state != PreparingRebalance {
		panic(fmt.Sprintf("group %q: join timer fired in state %v", g.id, g.state))
	}
	if g.initialDelay {
		if g.newMemberAdded && g.initialRemaining > 0 {
			g.newMemberAdded = false
			d := min(c.opts.InitialRebalanceDelay, g.initialRemaining)
			g.initialRemaining -= d
			g.joinTimer = c.arm(d, &g.joinTimerSeq, func() { c.joinTimerFired(g) })
			return
		}
		g.initialDelay = false
	}
	c.completeJoin(g)
}

// tryCompleteJoin ends the join phase early once every member has rejoined.
func (c *Coordinator) tryCompleteJoin(g *group) {
	if g.state == PreparingRebalance && !g.initialDelay && g.allJoined() {
		c.completeJoin(g)
	}
}

// completeJoin ends the join phase (Kafka's onCompleteJoin): dynamic members
// that did not rejoin are removed (static ones stay until their session
// expires or they miss the sync deadline), a joined leader is chosen, the
// generation advances, and every waiting member gets its response.
func (c *Coordinator) completeJoin(g *group) {
	for _, m := range g.sortedMembers() {
		if m.joinCh == nil && m.instanceID == "" {
			c.log.Info("group: removing member that did not rejoin", "group", g.id, "member", m.id)
			c.detachMember(g, m, errUnknownMemberID)
		}
	}
	if len(g.members) > 0 && !c.electJoinedLeader(g) {
		// Only static members that did not rejoin are left: wait another
		// rebalance timeout (their sessions will expire meanwhile).
		g.joinTimer = c.arm(g.rebalanceTimeout(), &g.joinTimerSeq, func() { c.joinTimerFired(g) })
		return
	}
	stopTimer(&g.joinTimer, &g.joinTimerSeq)
	g.initialDelay, g.newMemberAdded = false, false
	g.generation++
	if c.opts.UnsafeGenerationRestart && g.generation > 3 {
		g.generation = 1
	}
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		c.markEmpty(g)
		c.log.Info("group: empty", "group", g.id, "generation", g.generation)
		c.persist(g)
		return
	}
	g.protocol = g.selectProtocol()
	g.state = CompletingRebalance
	c.log.Info("group: join complete", "group", g.id, "generation", g.generation,
		"members", len(g.members), "leader", g.leader, "protocol", g.protocol)
	for _, m := range g.sortedMembers() {
		m.assignment, m.assignmentGen = nil, -1
		m.replyJoin(g.currentJoin(m))
		m.isNew = false
		c.armSession(g, m, m.session)
		g.pendingSync[m.id] = struct{}{}
	}
	g.syncTimer = c.arm(g.rebalanceTimeout(), &g.syncTimerSeq, func() { c.syncTimerFired(g) })
}

// electJoinedLeader keeps the leader if it rejoined, else picks the first
// rejoined member; false if nobody rejoined.
func (c *Coordinator) electJoinedLeader(g *group) bool {
	if l := g.members[g.leader]; l != nil && l.joinCh != nil {
		return true
	}
	for _, m := range g.sortedMembers() {
		if m.joinCh != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// syncTimerFired removes the members that did not SyncGroup within the
// rebalance timeout after the join phase (Kafka's pending-sync expiry).
func (c *Coordinator) syncTimerFired(g *group) {
	if g.state != CompletingRebalance && g.state != Stable {
		panic(fmt.Sprintf("group %q: sync timer fired in state %v", g.id, g.state))
	}
	if len(g.pendingSync) == 0 {
		return
	}
	for _, m := range g.sortedMembers() {
		if _, ok := g.pendingSync[m.id]; ok {
			c.log.Info("group: removing member that did not sync", "group", g.id, "member", m.id)
			c.detachMember(g, m, errUnknownMemberID)
		}
	}
	c.prepareRebalance(g, "members did not sync in time")
}

// armSession (re)starts m's expiry timer.
func (c *Coordinator) armSession(g *group, m *member, d time.Duration) {
	stopTimer(&m.timer, &m.timerSeq)
	m.timer = c.arm(d, &m.timerSeq, func() { c.sessionExpired(g, m) })
}

// sessionExpired removes m unless it is blocked in JoinGroup (and not new)
// or in SyncGroup: a member waiting on us cannot heartbeat.
func (c *Coordinator) sessionExpired(g *group, m *member) {
	if g.members[m.id] != m {
		panic(fmt.Sprintf("group %q: session timer of removed member %q fired", g.id, m.id))
	}
	if (m.joinCh != nil && !m.isNew) || m.syncCh != nil {
		c.armSession(g, m, m.session)
		return
	}
	c.log.Info("group: session expired", "group", g.id, "member", m.id, "new", m.isNew)
	c.removeMember(g, m, "session expired")
}

// removeMember removes m (leave, expiry) and moves the group on: a
// rebalance from Stable/CompletingRebalance, or an earlier end of the
// current join phase.
func (c *Coordinator) removeMember(g *group, m *member, reason string) {
	c.detachMember(g, m, errUnknownMemberID)
	switch g.state {
	case Stable, CompletingRebalance:
		c.maybePrepareRebalance(g, reason)
	case PreparingRebalance:
		c.tryCompleteJoin(g)
	}
}

// detachMember deletes m from g, answering its waiters with code.
func (c *Coordinator) detachMember(g *group, m *member, code int16) {
	m.replyJoin(joinErr("", code))
	m.replySync(SyncResponse{ErrorCode: code})
	stopTimer(&m.timer, &m.timerSeq)
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != "" && g.static[m.instanceID] == m.id {
		delete(g.static, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// addPending registers a member id handed out with MEMBER_ID_REQUIRED; it
// expires after the session timeout.
func (c *Coordinator) addPending(g *group, id string, session time.Duration) {
	p := &pendingMember{}
	g.pending[id] = p
	p.timer = c.arm(session, &p.timerSeq, func() {
		delete(g.pending, id)
		c.tryCompleteJoin(g)
	})
}

func (c *Coordinator) removePending(g *group, id string) {
	if p := g.pending[id]; p != nil {
		stopTimer(&p.timer, &p.timerSeq)
		delete(g.pending, id)
	}
}
