//go:build synctests

package sim

import (
	randv2 "math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"unique"
)

// lazyMapKey is a type no other code passes to unique.Make: its map is
// made by this test's first call.
type lazyMapKey struct{ n int }

// TestBubbleStreamLazyMaps: making a sync.Map or unique's map for a type
// (both lazy: a package-level cache is made by the first call of a
// process) draws nothing from the bubble's random stream in the
// simulator's build (sim/overlay/runtime.patch, runtime.simLayoutRand),
// so the first run in a process draws what every later run draws. It
// once drew the map's seed from the stream, and the first run of a seed
// in a process parted from the second at its first select among ready
// cases after the first group request (server's tenures, then a package-level
// sync.Map, made then).
func TestBubbleStreamLazyMaps(t *testing.T) {
	draws := func(makeMaps bool) [4]uint64 {
		var out [4]uint64
		synctest.Test(t, func(t *testing.T) {
			if makeMaps {
				var m sync.Map
				m.Store("k", 1)
				unique.Make(lazyMapKey{1})
			}
			for i := range out {
				out[i] = randv2.Uint64()
			}
		})
		return out
	}
	plain := draws(false)
	if again := draws(false); again != plain {
		t.Fatalf("a bubble's stream is not the same in two bubbles (%x vs %x): is the overlay of sim/overlay/gen.sh in the build?", plain, again)
	}
	if lazy := draws(true); lazy != plain {
		t.Errorf("making a sync.Map and a unique map shifted the bubble's stream: %x, without them %x", lazy, plain)
	}
}
