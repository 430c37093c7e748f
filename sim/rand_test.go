package sim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand"
	randv2 "math/rand/v2"
	"reflect"
	"sync"
	"unsafe"

	"github.com/lni/goutils/random"
)

// subSeed derives the seed of one subsystem from the run's seed: a hash of
// (seed, name), so that adding draws to one subsystem never shifts another.
func subSeed(seed int64, name string) int64 {
	h := fnv.New64a()
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h.Write(b[:])
	h.Write([]byte(name))
	return int64(h.Sum64() & (1<<63 - 1))
}

// newRand returns a private random stream for (seed, name).
func newRand(seed int64, name string) *randv2.Rand {
	s := uint64(subSeed(seed, name))
	return randv2.New(randv2.NewPCG(s, s^0x9e3779b97f4a7c15))
}

// lockedRandLayout mirrors github.com/lni/goutils/random.LockedRand, whose
// fields are unexported. checkLockedRandLayout proves the mirror is exact
// before any cast.
type lockedRandLayout struct {
	source rand.Source64
	mu     sync.Mutex
}

var layoutOnce sync.Once

func checkLockedRandLayout() {
	want := reflect.TypeOf(lockedRandLayout{})
	got := reflect.TypeOf(random.LockedRand{})
	ok := got.Size() == want.Size() && got.NumField() == want.NumField()
	for i := 0; ok && i < want.NumField(); i++ {
		g, w := got.Field(i), want.Field(i)
		ok = g.Name == w.Name && g.Type == w.Type && g.Offset == w.Offset
	}
	if !ok {
		panic(fmt.Sprintf("sim: random.LockedRand layout changed (%v vs %v): update reseedDragonboat", got, want))
	}
}

// reseedDragonboat replaces the source of dragonboat's package-level
// random.LockGuardedRand (election jitter; seeded from pid and wall time
// at init) with one derived from seed. The struct's fields are
// unexported, hence the unsafe cast, guarded by a layout check against
// reflect. Call it before any NodeHost of the run starts.
func reseedDragonboat(seed int64) {
	layoutOnce.Do(checkLockedRandLayout)
	lr := (*lockedRandLayout)(unsafe.Pointer(random.LockGuardedRand))
	lr.mu.Lock()
	lr.source = rand.NewSource(subSeed(seed, "dragonboat")).(rand.Source64)
	lr.mu.Unlock()
}
