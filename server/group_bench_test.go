package server

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkGroupOffsetCommit measures acknowledged OffsetCommits per
// second through kgo (kadm.CommitOffsets: one partition's offset per
// request, outside any generation) on one node and three, with 1 and 8
// committers in parallel, each committing in turn for 4 groups of its own
// (32 groups with 8 committers, spread over the default 4 group shards,
// and so over the coordinators). Every commit is one proposal to its
// group's shard, whose leader the client sends it to.
func BenchmarkGroupOffsetCommit(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, committers := range []int{1, 8} {
			b.Run(fmt.Sprintf("nodes=%d/committers=%d", nodes, committers), func(b *testing.B) {
				c := startCluster(b, nodes, nil)
				c.createTopic("bench", 1)
				adms := make([]*kadm.Client, committers)
				for i := range adms {
					adms[i] = kadm.NewClient(c.client())
				}
				ctx := context.Background()
				b.ResetTimer()
				errs := make(chan error, committers)
				for i, adm := range adms {
					go func() {
						for j := i; j < b.N; j += committers {
							grp := fmt.Sprintf("bench-%d-%d", i, (j/committers)%4)
							var os kadm.Offsets
							os.Add(kadm.Offset{Topic: "bench", Partition: 0, At: int64(j), LeaderEpoch: -1})
							r, err := adm.CommitOffsets(ctx, grp, os)
							if err == nil {
								err = r.Error()
							}
							if err != nil {
								errs <- err
								return
							}
						}
						errs <- nil
					}()
				}
				for range adms {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
			})
		}
	}
}

// benchMembers is the group size of BenchmarkGroupRebalance.
const benchMembers = 100

// BenchmarkGroupRebalance measures rebalances of a group of 100 kgo
// members (one partition each of a 100-partition topic), classic
// (cooperative-sticky, kgo's default) and KIP-848 (server-side uniform
// assignor), on one node and three. Setup starts the 100 members and
// reports the time until the group is stable with every partition owned
// once ("join-s"); each operation is one member leaving and a new one
// joining, timed until the group is stable again with 100 members owning
// one partition each (ns/op). Stability is polled every 20 ms
// (DescribeGroups, ConsumerGroupDescribe). The coordinator runs with the
// tests' short delays (fastGroups: initial rebalance delay 100 ms;
// KIP-848 heartbeat interval 100 ms).
func BenchmarkGroupRebalance(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, proto := range []string{"classic", "848"} {
			b.Run(fmt.Sprintf("nodes=%d/%s", nodes, proto), func(b *testing.B) {
				c := startClusterWith(b, nodes, nil, fast848)
				c.createTopic("rb", benchMembers)
				var opts []kgo.Opt
				if proto == "848" {
					opts = opts848(kgo.CooperativeStickyBalancer())
				}
				adm := c.client()
				// stable waits until the group is stable with a member
				// of client id in and none of client id out.
				stable := func(in, out string) {
					if proto == "848" {
						eventually(b, groupWait, func() bool {
							g := waitStable848(b, adm, "rb-g", benchMembers, benchMembers)
							return hasClient848(g.Members, in) && !hasClient848(g.Members, out)
						}, "848 group with %s and without %s", in, out)
						return
					}
					waitStableClassic(b, kadm.NewClient(adm), "rb-g", benchMembers, in, out)
				}
				seen := newSeen()
				members := make([]*groupConsumer, 0, benchMembers)
				start := time.Now()
				var mu sync.Mutex
				var wg sync.WaitGroup
				for i := range benchMembers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						m := startConsumer(b, c, fmt.Sprintf("m%d", i), "rb-g", "rb", seen, opts...)
						mu.Lock()
						members = append(members, m)
						mu.Unlock()
					}()
				}
				wg.Wait()
				stable("m0", "")
				join := time.Since(start)
				b.ResetTimer()
				for i := range b.N {
					k := i % len(members)
					out := members[k].name
					members[k].close()
					members[k] = startConsumer(b, c, fmt.Sprintf("n%d", i), "rb-g", "rb", seen, opts...)
					stable(members[k].name, out)
				}
				b.StopTimer()
				// After the loop: ResetTimer drops reported metrics.
				b.ReportMetric(join.Seconds(), "join-s")
			})
		}
	}
}

// hasClient848 reports whether a member of client id id is among ms.
func hasClient848(ms []kmsg.ConsumerGroupDescribeResponseGroupMember, id string) bool {
	for _, m := range ms {
		if m.ClientID == id {
			return true
		}
	}
	return false
}

// waitStableClassic waits until the classic group is Stable with n
// members owning one partition each, one of them of client id in and
// none of client id out ("": no condition).
func waitStableClassic(t testing.TB, adm *kadm.Client, grp string, n int, in, out string) {
	t.Helper()
	eventually(t, groupWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		gs, err := adm.DescribeGroups(ctx, grp)
		if err != nil {
			return false
		}
		g, ok := gs[grp]
		if !ok || g.Err != nil || g.State != "Stable" || len(g.Members) != n {
			return false
		}
		owned := map[string]map[int32]bool{}
		hasIn, hasOut := in == "", false
		for _, m := range g.Members {
			hasIn = hasIn || m.ClientID == in
			hasOut = hasOut || (out != "" && m.ClientID == out)
			a, ok := m.Assigned.AsConsumer()
			if !ok {
				return false
			}
			count := 0
			for _, t := range a.Topics {
				for _, p := range t.Partitions {
					if owned[t.Topic] == nil {
						owned[t.Topic] = map[int32]bool{}
					}
					owned[t.Topic][p] = true
					count++
				}
			}
			if count != 1 {
				return false
			}
		}
		total := 0
		for _, ps := range owned {
			total += len(ps)
		}
		return total == n && hasIn && !hasOut
	}, "classic group %s Stable with %d members owning one partition each, with %q, without %q", grp, n, in, out)
}
