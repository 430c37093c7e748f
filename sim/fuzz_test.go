//go:build synctests

package sim

import (
	"testing"
	"time"
)

// FuzzSimSeed lets the fuzzer pick simulator seeds: each input runs one
// short schedule (5 s of virtual fault phase, recoverable profile) with
// every checker on; a violation fails with "reproduce: make sim SEED=N".
// It lives here rather than in fuzz/ because the simulator is test code
// of this package. `make fuzz` runs it with -tags synctests; `make test`
// runs the seed corpus below.
func FuzzSimSeed(f *testing.F) {
	for _, seed := range []int64{1, 7, 42} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		o := runOpts{duration: 5 * time.Second, profile: profileRecoverable, workload: defaultWorkload}
		report(t, runSchedule(t, seed, o), o)
	})
}
