//go:build synctests

package sim

import (
	"strings"
	"testing"
	"time"
)

// TestSimCatchesGroupBugs plants one group bug at a time (runOpts.brokenGroup)
// and requires the group checkers to report it, with the violation the
// bug's checker writes, within brokenSeedsMax seeds. Each subtest fails
// if its checker stops catching its bug.
func TestSimCatchesGroupBugs(t *testing.T) {
	if *flagSeedShard != 0 {
		t.Skip("runs in shard 0 only (its seeds are fixed, not sharded)")
	}
	for _, c := range []struct {
		bug  string
		plan groupPlan
		want string // in the first group violation
	}{
		{brokenCommitBack, groupPlan{balancer: "range", marks: true}, "committed offset went back"},
		{brokenCommitBack, groupPlan{consumer848: true, balancer: "uniform", marks: true}, "committed offset went back"},
		{brokenSkip, groupPlan{balancer: "cooperative-sticky", marks: true, churn: true}, "was never processed"},
		{brokenSkip, groupPlan{consumer848: true, balancer: "range", marks: true, churn: true}, "was never processed"},
		{brokenDoubleAssign, groupPlan{balancer: "range", marks: true}, "assigned to two members"},
		{brokenGenRestart, groupPlan{balancer: "cooperative-sticky", marks: true, churn: true}, "generation went back"},
		{brokenGenRestart, groupPlan{consumer848: true, balancer: "range", marks: true, churn: true}, "generation went back"},
		{brokenSkipRelease, groupPlan{consumer848: true, balancer: "uniform", marks: true, churn: true}, "(ConsumerGroupDescribe)"},
	} {
		t.Run(c.bug+"/"+c.plan.String(), func(t *testing.T) {
			o := runOpts{duration: 8 * time.Second, profile: profileRecoverable, workload: defaultWorkload, brokenGroup: c.bug, group: &c.plan}
			for seed := int64(1); seed <= brokenSeedsMax; seed++ {
				res := runSchedule(t, seed, o)
				for _, v := range res.violations {
					if strings.Contains(v, c.want) {
						t.Logf("seed %d: caught: %s", seed, v)
						return
					}
				}
				t.Logf("seed %d: not caught (%d violations, liveness %q)", seed, len(res.violations), res.liveness)
			}
			t.Fatalf("planted bug %s went unreported for %d seeds: no violation %q", c.bug, brokenSeedsMax, c.want)
		})
	}
}
