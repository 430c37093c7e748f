package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/chronik-go/chronik/core/group"
)

// groupName is the workload's consumer group.
const groupName = "g"

// Planted group bugs (runOpts.brokenGroup): each makes one group checker
// fail (broken_group_test.go proves it).
const (
	// brokenCommitBack: a consumer now and then commits an offset below
	// the one it committed last (committed offsets move back).
	brokenCommitBack = "commit-back"
	// brokenSkip: a consumer marks the last record of every poll for
	// commit without processing it (a record skipped).
	brokenSkip = "skip"
	// brokenDoubleAssign: the classic leader's balancer also gives the
	// first partition to every member (two owners in one generation).
	brokenDoubleAssign = "double-assign"
	// brokenGenRestart: the coordinator restarts a group's generation
	// while its members keep their ids (group.Options.UnsafeGenerationRestart).
	brokenGenRestart = "generation-restart"
	// brokenSkipRelease: the coordinator gives a KIP-848 member a
	// partition another member still owns (group.Options.UnsafeSkipRelease).
	brokenSkipRelease = "skip-release"
)

// groupOptions is every node's group coordinator configuration: KIP-848
// members heartbeat every 500 ms and are removed after 6 s of silence
// (Kafka's 5 s and 45 s would outlast a fault phase).
func (c *cluster) groupOptions() group.Options {
	return group.Options{
		ConsumerHeartbeatInterval: 500 * time.Millisecond,
		ConsumerSessionTimeout:    6 * time.Second,
		UnsafeGenerationRestart:   c.brokenGroup == brokenGenRestart,
		UnsafeSkipRelease:         c.brokenGroup == brokenSkipRelease,
	}
}

// groupHistory is the consumer group's part of the history: committed
// offsets as every observer saw them, the assignments members received,
// and what members processed. Guarded by history.mu.
//
// What is checked:
//   - committed offsets never move back, per partition, across all
//     observers: an OffsetFetch that started after a commit of offset o
//     was acknowledged (to any member) or after another OffsetFetch
//     returned o, returns at least o. The workload never resets the
//     group's offsets, so there is no exception;
//   - per member, the generation (classic) never goes back; a KIP-848
//     member's epoch goes back only after the member was fenced (kgo's
//     OnPartitionsLost), as a coordinator move does when the group had no
//     record to load: the new coordinator counts epochs from 1 again and
//     kgo rejoins keeping its member id (a loaded group keeps its
//     members' epochs, so for them the check spans moves). A classic member keeps
//     its id and generation across a move when the new coordinator loaded
//     the group's record (core/group, "Coordinator moves"), so for it the
//     check spans moves; it gets a new id when the group had no record;
//   - per classic generation, a partition is assigned to at most one
//     member. A classic generation restarts at 1 when a coordinator move
//     forgets a group without a record, so a generation is named by
//     (incarnation, generation): the member ids a tenure mints carry its
//     incarnation (core/group: BeginTenure counts it up), and a loaded
//     group's generations continue with the ids of earlier tenures. The
//     leader's SyncGroup is answered only once the generation's record
//     committed, so a coordinator that lost the leadership unawares
//     cannot hand out a generation its successor hands out again. KIP-848 members read their
//     epoch apart from their assignment (kgo publishes them one after the
//     other), so for them the check is over ConsumerGroupDescribe answers:
//     no partition in two members' assignments in one answer;
//   - with commits after processing (groupPlan.marks), after heal: every
//     record of the final log below the highest committed offset of its
//     partition was processed by some member (no record skipped). On a
//     retention topic too: a consumer behind the log start resets to it
//     (kgo's reset is AtStart), so what it skips was deleted and is not
//     in the final log, which starts at or above any earlier log start.
type groupHistory struct {
	commits   map[tp][]commitObs
	maxCommit map[tp]int64
	gens      map[string]memberGen // member id -> last generation or epoch
	fenced    map[string]bool      // 848 members fenced since their last epoch
	owners    map[genKey]string    // (incarnation, generation, partition) -> member
	processed map[tp]map[int64]bool
	assigns   int
}

type commitObs struct {
	at     time.Time // when it was acknowledged or returned
	offset int64
}

type memberGen struct {
	gen int32
}

type genKey struct {
	incarnation string
	gen         int32
	at          tp
}

func (h *history) groups() *groupHistory {
	if h.grp == nil {
		h.grp = &groupHistory{
			commits: map[tp][]commitObs{}, maxCommit: map[tp]int64{}, gens: map[string]memberGen{},
			fenced: map[string]bool{}, owners: map[genKey]string{}, processed: map[tp]map[int64]bool{},
		}
	}
	return h.grp
}

// commitAcked records that a commit of off at at was acknowledged to a
// member.
func (h *history) commitAcked(member string, at tp, off int64) {
	h.tr.add(evRead, "%s commit %s %d", member, at, off)
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups()
	g.commits[at] = append(g.commits[at], commitObs{time.Now(), off})
	g.maxCommit[at] = max(g.maxCommit[at], off)
}

// commitSeen records the committed offset off of at that an OffsetFetch
// started at start returned: it must not be below any commit or fetch
// completed before start.
func (h *history) commitSeen(session string, at tp, off int64, start time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups()
	for _, o := range g.commits[at] {
		if o.at.Before(start) && off < o.offset {
			h.violateLocked("%s %s: committed offset went back from %d (seen %v) to %d", session, at, o.offset, o.at.Format("15:04:05.000"), off)
			break
		}
	}
	g.commits[at] = append(g.commits[at], commitObs{time.Now(), off})
	g.maxCommit[at] = max(g.maxCommit[at], off)
}

// processed records that a member processed the record at (at, off).
func (h *history) processed(at tp, off int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups()
	m := g.processed[at]
	if m == nil {
		m = map[int64]bool{}
		g.processed[at] = m
	}
	m[off] = true
}

// groupFenced records that member lost its partitions (fenced or
// removed); a KIP-848 member then rejoins, perhaps at a lower epoch.
func (h *history) groupFenced(member string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.groups().fenced[member] = true
}

// groupAssigned records the whole assignment owned that member (client
// name) holds at generation (classic) or epoch (848) gen.
func (h *history) groupAssigned(name, member string, gen int32, is848 bool, owned []tp) {
	h.tr.add(evRead, "%s member %s gen %d owns %v", name, member, gen, owned)
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.groups()
	g.assigns++
	if last, ok := g.gens[member]; ok && gen < last.gen {
		if !is848 || !g.fenced[member] {
			h.violateLocked("%s member %s: generation went back from %d to %d", name, member, last.gen, gen)
		}
	}
	g.gens[member] = memberGen{gen}
	delete(g.fenced, member)
	if is848 {
		return
	}
	inc := memberIncarnation(member)
	for _, at := range owned {
		k := genKey{inc, gen, at}
		if o, ok := g.owners[k]; ok && o != member {
			h.violateLocked("%s generation %d (incarnation %s): %s assigned to two members, %s and %s", groupName, gen, inc, at, o, member)
			continue
		}
		g.owners[k] = member
	}
}

// memberIncarnation is the incarnation part of a Chronik member id
// (prefix-<incarnation hex>-<counter>), or the whole id if it has
// another shape.
func memberIncarnation(id string) string {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return id
	}
	j := strings.LastIndexByte(id[:i], '-')
	if j < 0 {
		return id
	}
	return id[j+1 : i]
}

// finalGroup checks, for a group that commits after processing, that
// every record of at's final log below its highest committed offset was
// processed.
func (h *history) finalGroup(plan groupPlan, at tp, log []fetchedRecord, logStart int64) {
	if !plan.marks {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.grp == nil {
		return
	}
	g := h.grp
	top := g.maxCommit[at]
	for _, r := range log {
		if r.control || r.offset < logStart || r.offset >= top {
			continue
		}
		if !g.processed[at][r.offset] {
			h.violateLocked("%s: committed offset %d, but offset %d (%q) was never processed by a member of %s", at, top, r.offset, r.value, groupName)
			return
		}
	}
}

// groupSummary is one line for the schedule's log.
func (h *history) groupSummary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.grp == nil {
		return ""
	}
	n := 0
	for _, m := range h.grp.processed {
		n += len(m)
	}
	commits := 0
	for _, c := range h.grp.commits {
		commits += len(c)
	}
	return fmt.Sprintf("group: %d assignments, %d members, %d commit observations, %d records processed", h.grp.assigns, len(h.grp.gens), commits, n)
}
