package group

import (
	"cmp"
	"slices"
)

// The consumer protocol's server-side assignors (KIP-848): "uniform"
// (Kafka's default, sticky) and "range". Both are pure and deterministic:
// they iterate members sorted by id and topics sorted by name, never a map.

// Assignor names a consumer group may ask for (ServerAssignor).
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// assignorSupported reports whether name is a server assignor served here.
func assignorSupported(name string) bool { return name == AssignorUniform || name == AssignorRange }

// TopicInfo is one topic of the node's metadata view as the assignors see
// it (Options.Topics returns them sorted by name).
type TopicInfo struct {
	Name       string
	ID         [16]byte
	Partitions int32
}

// topicPartition is one partition, named by topic id.
type topicPartition struct {
	topic [16]byte
	part  int32
}

// assignorMember is one member as an assignor sees it: its id, the topics
// it subscribes to (names of existing topics, sorted) and its current
// target (uniform keeps what it can).
type assignorMember struct {
	id     string
	topics []string
	prev   []topicPartition
}

// assignment maps topic id to sorted partitions.
type assignment map[[16]byte][]int32

// runAssignor computes the target assignment of members (sorted by id)
// over topics (sorted by name). Unknown names take the uniform assignor.
func runAssignor(name string, members []assignorMember, topics []TopicInfo) map[string]assignment {
	if name == AssignorRange {
		return assignRange(members, topics)
	}
	return assignUniform(members, topics)
}

// assignRange is the range assignor per topic: the members subscribed to a
// topic, in id order, take contiguous ranges; the first (n mod m) take one
// more partition.
func assignRange(members []assignorMember, topics []TopicInfo) map[string]assignment {
	out := make(map[string]assignment, len(members))
	for _, m := range members {
		out[m.id] = assignment{}
	}
	for _, t := range topics {
		var subs []string
		for _, m := range members {
			if slices.Contains(m.topics, t.Name) {
				subs = append(subs, m.id)
			}
		}
		if len(subs) == 0 || t.Partitions <= 0 {
			continue
		}
		n, k := int(t.Partitions), len(subs)
		p := 0
		for i, id := range subs {
			cnt := n / k
			if i < n%k {
				cnt++
			}
			for range cnt {
				out[id][t.ID] = append(out[id][t.ID], int32(p))
				p++
			}
		}
	}
	return out
}

// assignUniform balances partitions over the members subscribed to their
// topics and is sticky: a member keeps the partitions of its previous
// target that it still subscribes to, except those it must give up for
// balance. Steps: keep the valid previous partitions (each to one member
// only); give every unowned partition, in topic-name then partition order,
// to the least loaded eligible member (ties: smaller id); then, while some
// member holds at least two more than an eligible other member, move its
// last partition there. Each move lowers the sum of squared loads, so the
// loop ends; for homogeneous subscriptions loads then differ by at most 1.
func assignUniform(members []assignorMember, topics []TopicInfo) map[string]assignment {
	byName := make(map[string]TopicInfo, len(topics))
	byID := make(map[[16]byte]TopicInfo, len(topics))
	for _, t := range topics {
		byName[t.Name], byID[t.ID] = t, t
	}
	subscribed := make(map[string]map[[16]byte]bool, len(members))
	for _, m := range members {
		s := make(map[[16]byte]bool, len(m.topics))
		for _, name := range m.topics {
			if t, ok := byName[name]; ok {
				s[t.ID] = true
			}
		}
		subscribed[m.id] = s
	}
	owner := make(map[topicPartition]int) // index into members
	held := make([][]topicPartition, len(members))
	give := func(i int, tp topicPartition) {
		owner[tp] = i
		held[i] = append(held[i], tp)
	}
	for i, m := range members {
		for _, tp := range m.prev {
			t, ok := byID[tp.topic]
			if _, taken := owner[tp]; taken || !ok || tp.part >= t.Partitions || !subscribed[m.id][tp.topic] {
				continue
			}
			give(i, tp)
		}
	}
	for _, t := range topics {
		for p := range t.Partitions {
			tp := topicPartition{t.ID, p}
			if _, taken := owner[tp]; taken {
				continue
			}
			best := -1
			for i, m := range members {
				if subscribed[m.id][t.ID] && (best < 0 || len(held[i]) < len(held[best])) {
					best = i
				}
			}
			if best >= 0 {
				give(best, tp)
			}
		}
	}
	rebalanceUniform(members, subscribed, held)
	out := make(map[string]assignment, len(members))
	for i, m := range members {
		a := assignment{}
		for _, tp := range held[i] {
			a[tp.topic] = append(a[tp.topic], tp.part)
		}
		for id := range a {
			slices.Sort(a[id])
		}
		out[m.id] = a
	}
	return out
}

// rebalanceUniform moves partitions from the most loaded members to less
// loaded eligible ones until no move lowers the imbalance (see
// assignUniform). Bounded: every move lowers the sum of squared loads.
func rebalanceUniform(members []assignorMember, subscribed map[string]map[[16]byte]bool, held [][]topicPartition) {
	order := make([]int, len(members))
	for i := range order {
		order[i] = i
	}
	for {
		// Most loaded first; ties by id.
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(held[b]), len(held[a])) })
		moved := false
		for _, from := range order {
			// From the end of what it holds: new partitions were appended
			// last, so kept (sticky) partitions move only when needed.
			for k := len(held[from]) - 1; k >= 0 && !moved; k-- {
				tp := held[from][k]
				to := -1
				for i, m := range members {
					if i != from && subscribed[m.id][tp.topic] && len(held[i]) <= len(held[from])-2 &&
						(to < 0 || len(held[i]) < len(held[to])) {
						to = i
					}
				}
				if to >= 0 {
					held[from] = slices.Delete(held[from], k, k+1)
					held[to] = append(held[to], tp)
					moved = true
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			return
		}
	}
}

// flatten lists an assignment's partitions, sorted by topic id and
// partition.
func (a assignment) flatten() []topicPartition {
	var out []topicPartition
	for id, ps := range a {
		for _, p := range ps {
			out = append(out, topicPartition{id, p})
		}
	}
	slices.SortFunc(out, compareTP)
	return out
}

func compareTP(a, b topicPartition) int {
	if c := slices.Compare(a.topic[:], b.topic[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.part, b.part)
}

func (a assignment) has(tp topicPartition) bool {
	_, ok := slices.BinarySearch(a[tp.topic], tp.part)
	return ok
}

func (a assignment) add(tp topicPartition) {
	ps := a[tp.topic]
	i, ok := slices.BinarySearch(ps, tp.part)
	if !ok {
		a[tp.topic] = slices.Insert(ps, i, tp.part)
	}
}

func (a assignment) size() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}
