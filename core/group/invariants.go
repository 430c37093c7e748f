package group

import "fmt"

// checkInvariants returns the first broken invariant of any group (nil if
// none). Tests call it after every step; it is O(members) per group.
func (c *Coordinator) checkInvariants() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	owner := make(map[*member]string)
	for id, g := range c.groups {
		if g.id != id {
			return fmt.Errorf("group %q filed under %q", g.id, id)
		}
		if err := g.checkInvariants(); err != nil {
			return err
		}
		for _, m := range g.members {
			if other, ok := owner[m]; ok {
				return fmt.Errorf("member %q in groups %q and %q", m.id, other, g.id)
			}
			owner[m] = g.id
		}
	}
	for id, g := range c.cgroups {
		if g.id != id || c.groups[id] != nil {
			return fmt.Errorf("consumer group %q filed under %q or also classic", g.id, id)
		}
		if err := g.checkInvariants(); err != nil {
			return err
		}
	}
	return nil
}

// checkInvariants of a consumer group: owners is exactly the union of the
// members' assigned and revoking partitions (so no partition has two
// owners), assigned and revoking are disjoint, the static map agrees, the
// assignment epoch never passes the group epoch.
func (g *cgroup) checkInvariants() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("consumer group %q (epoch %d): %s", g.id, g.epoch, fmt.Sprintf(format, args...))
	}
	if g.assignmentEpoch > g.epoch {
		return fail("assignment epoch %d above group epoch", g.assignmentEpoch)
	}
	n := 0
	for id, m := range g.members {
		if m.id != id {
			return fail("member %q filed under %q", m.id, id)
		}
		if m.epoch > g.assignmentEpoch {
			return fail("member %q epoch %d above assignment epoch %d", id, m.epoch, g.assignmentEpoch)
		}
		if m.instanceID != "" && g.static[m.instanceID] != id {
			return fail("static member %q not in the instance map", id)
		}
		for _, tp := range m.assigned.flatten() {
			if m.revoking.has(tp) {
				return fail("member %q both owns and revokes %v", id, tp)
			}
			if g.owners[tp] != id {
				return fail("member %q assigned %v owned by %q", id, tp, g.owners[tp])
			}
			n++
		}
		for _, tp := range m.revoking.flatten() {
			if g.owners[tp] != id {
				return fail("member %q revoking %v owned by %q", id, tp, g.owners[tp])
			}
			n++
		}
	}
	if n != len(g.owners) {
		return fail("%d owned partitions, members hold %d", len(g.owners), n)
	}
	for inst, id := range g.static {
		if m := g.members[id]; m == nil || m.instanceID != inst {
			return fail("instance %q maps to %q", inst, id)
		}
	}
	return nil
}

func (g *group) checkInvariants() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("group %q (%v, generation %d): %s", g.id, g.state, g.generation, fmt.Sprintf(format, args...))
	}
	if g.state == Dead {
		return fail("dead group held")
	}
	if (g.state == Empty) != (len(g.members) == 0) && g.state != PreparingRebalance {
		return fail("state %v with %d members", g.state, len(g.members))
	}
	if len(g.members) > 0 && g.members[g.leader] == nil {
		return fail("leader %q is not a member", g.leader)
	}
	if len(g.members) == 0 && g.leader != "" {
		return fail("leader %q without members", g.leader)
	}
	for inst, id := range g.static {
		if m := g.members[id]; m == nil || m.instanceID != inst {
			return fail("static %q -> %q is not a member with that instance", inst, id)
		}
	}
	for id, m := range g.members {
		if m.id != id {
			return fail("member %q filed under %q", m.id, id)
		}
		if m.instanceID != "" && g.static[m.instanceID] != id {
			return fail("static member %q not in the instance map", id)
		}
		if _, ok := g.pending[id]; ok {
			return fail("member %q also pending", id)
		}
		if g.state == Stable && m.assignmentGen != g.generation {
			return fail("member %q has assignment of generation %d", id, m.assignmentGen)
		}
		if m.syncCh != nil && g.state != CompletingRebalance {
			return fail("member %q awaits sync", id)
		}
		if m.joinCh != nil && g.state != PreparingRebalance {
			return fail("member %q awaits join", id)
		}
	}
	if (g.joinTimerSeq != 0) != (g.state == PreparingRebalance) {
		return fail("join timer armed=%v", g.joinTimerSeq != 0)
	}
	if g.syncTimerSeq != 0 && g.state != CompletingRebalance && g.state != Stable {
		return fail("sync timer armed")
	}
	if g.storeSeq != 0 && g.state != CompletingRebalance {
		return fail("record %d awaited", g.storeSeq)
	}
	if g.state != Empty && g.state != PreparingRebalance && g.protocol == "" {
		return fail("no protocol")
	}
	return nil
}
