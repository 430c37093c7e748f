//go:build synctests

package sim

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	_ "unsafe" // go:linkname

	"github.com/lni/goutils/random"
)

// keyGeneratorLayout mirrors dragonboat's keyGenerator (request.go), the
// source of proposal keys.
type keyGeneratorLayout struct {
	//lint:ignore U1000 mirrors the layout; only rand is read
	randMu sync.Mutex
	rand   *rand.Rand
}

//go:linkname dragonboatGetRng github.com/lni/dragonboat/v4.getRng
func dragonboatGetRng(shardID uint64, replicaID uint64, shard uint64) *keyGeneratorLayout

// depsSeedDraws draws from the random sources dragonboat seeds with the
// process id (a NodeHost's LockedRand for session client ids, a node's
// proposal key generator) at the bubble's start instant.
func depsSeedDraws(t *testing.T) string {
	var s string
	synctest.Test(t, func(t *testing.T) {
		s = fmt.Sprintf("client-id=%d proposal-key=%d", random.NewLockedRand().Uint64(), dragonboatGetRng(1, 2, 3).rand.Uint64())
	})
	return s
}

const depsSeedChild = "CHRONIK_SIM_DEPS_SEED_CHILD"

// TestDepsSeedsProcessFree: in the simulator's build os.Getpid and
// os.Hostname are constants (sim/overlay/runtime.patch), so dragonboat's
// proposal keys and session client ids, which hash them with the
// (virtual) time, are the same in another process, and so are the bytes
// of Raft messages and the fates netio draws from them. Without the
// overlay the child process draws other values.
func TestDepsSeedsProcessFree(t *testing.T) {
	if os.Getenv(depsSeedChild) != "" {
		fmt.Printf("draws: %s\n", depsSeedDraws(t))
		return
	}
	mine := depsSeedDraws(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestDepsSeedsProcessFree$", "-test.count=1")
	cmd.Env = append(os.Environ(), depsSeedChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	var theirs string
	for _, l := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(l, "draws: "); ok {
			theirs = v
		}
	}
	if theirs != mine {
		t.Errorf("dragonboat's seeds depend on the process: this process drew %q, a child %q (is the overlay of sim/overlay/gen.sh in the build?)", mine, theirs)
	}
}
