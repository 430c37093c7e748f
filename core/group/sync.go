package group

import (
	"context"
	"slices"
)

// Sync handles SyncGroup v0-v5. The leader's call (in CompletingRebalance)
// installs the assignments and answers everybody; followers block until
// then. A non-nil error is ctx's: the caller has gone.
func (c *Coordinator) Sync(ctx context.Context, req SyncRequest) (SyncResponse, error) {
	c.mu.Lock()
	resp, ch := c.sync(req)
	c.mu.Unlock()
	return await(ctx, resp, ch, SyncResponse{ErrorCode: errRebalanceInProgress})
}

func (c *Coordinator) sync(req SyncRequest) (SyncResponse, chan SyncResponse) {
	if c.closed {
		return SyncResponse{ErrorCode: errNotCoordinator}, nil
	}
	if code := c.validateSyncLimits(req); code != errNone {
		return SyncResponse{ErrorCode: code}, nil
	}
	g := c.groups[req.Group]
	if g == nil {
		return SyncResponse{ErrorCode: c.unknownMember(req.Group, req.MemberID)}, nil
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != errNone {
		if code == errUnknownMemberID {
			code = c.unknownMember(req.Group, req.MemberID)
		}
		return SyncResponse{ErrorCode: code}, nil
	}
	switch {
	case req.Generation != g.generation:
		return SyncResponse{ErrorCode: errIllegalGeneration}, nil
	case req.ProtocolType != "" && req.ProtocolType != g.protocolType,
		req.Protocol != "" && req.Protocol != g.protocol:
		return SyncResponse{ErrorCode: errInconsistentProtocol}, nil
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		return SyncResponse{ErrorCode: errRebalanceInProgress}, nil
	case CompletingRebalance:
		m.replySync(SyncResponse{ErrorCode: errRebalanceInProgress}) // superseded retry
		m.syncCh = make(chan SyncResponse, 1)
		ch := m.syncCh
		delete(g.pendingSync, m.id)
		if m.id == g.leader && g.storeSeq == 0 {
			c.storeThenInstall(g, stageAssignments(g, req.Assignments))
		}
		return SyncResponse{}, ch
	case Stable:
		delete(g.pendingSync, m.id)
		c.armSession(g, m, m.session)
		return g.syncOK(m), nil
	}
	// Empty: members are gone. (Dead groups are never in c.groups.)
	return SyncResponse{ErrorCode: errUnknownMemberID}, nil
}

func (c *Coordinator) validateSyncLimits(req SyncRequest) int16 {
	if len(req.Assignments) > c.opts.MembersPerGroupMax {
		return errInvalidRequest
	}
	for _, a := range req.Assignments {
		if len(a.Assignment) > c.opts.AssignmentBytesMax {
			return errInvalidRequest
		}
	}
	return errNone
}

// stageAssignments is the leader's assignments by member: members it left
// out get an empty one; unknown ids are ignored, as in Kafka.
func stageAssignments(g *group, as []SyncAssignment) map[string][]byte {
	staged := make(map[string][]byte, len(g.members))
	for id := range g.members {
		staged[id] = []byte{}
	}
	for _, a := range as {
		if g.members[a.MemberID] != nil {
			staged[a.MemberID] = slices.Clone(a.Assignment)
		}
	}
	return staged
}

// installAssignments installs staged assignments (every member has
// one), makes the group Stable and answers every member waiting in
// SyncGroup.
func (c *Coordinator) installAssignments(g *group, staged map[string][]byte) {
	for id, m := range g.members {
		m.assignment, m.assignmentGen = staged[id], g.generation
	}
	g.state = Stable
	c.log.Info("group: stable", "group", g.id, "generation", g.generation, "members", len(g.members))
	for _, m := range g.sortedMembers() {
		if m.syncCh != nil {
			m.replySync(g.syncOK(m))
			c.armSession(g, m, m.session)
		}
	}
}

func (g *group) syncOK(m *member) SyncResponse {
	return SyncResponse{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
}

// Heartbeat handles Heartbeat v0-v4 and returns its error code.
func (c *Coordinator) Heartbeat(req HeartbeatRequest) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errNotCoordinator
	}
	g := c.groups[req.Group]
	if g == nil {
		return c.unknownMember(req.Group, req.MemberID)
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != errNone {
		if code == errUnknownMemberID {
			code = c.unknownMember(req.Group, req.MemberID)
		}
		return code
	}
	if req.Generation != g.generation {
		return errIllegalGeneration
	}
	m := g.members[req.MemberID]
	switch g.state {
	case CompletingRebalance, Stable:
		c.armSession(g, m, m.session)
		return errNone
	case PreparingRebalance:
		c.armSession(g, m, m.session)
		return errRebalanceInProgress
	}
	return errUnknownMemberID
}
