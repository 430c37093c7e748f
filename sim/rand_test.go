package sim

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand"
	randv2 "math/rand/v2"
	"reflect"
	"sync"
	"time"
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
	lr.source = &instantSource{seed: uint64(subSeed(seed, "dragonboat"))}
	lr.mu.Unlock()
}

// jitterPeriod is a multiple of every election timeout up to 20 ticks
// (lcm(1..20)); ElectionRTT is 10.
const jitterPeriod = 232792560

// instantSource is dragonboat's random source in a run: the k-th draw at
// virtual instant t is mix(seed, t) + k*jitterPeriod. dragonboat steps a
// node's shards in map order and from several workers, so which shard
// draws first at one instant is the runtime's (random) choice; with this
// source every draw of one instant gives the same election jitter
// (value % electionTimeout), whoever draws first, while the values (also
// used as proposal and read-index keys) stay distinct. Draws at different
// instants are independent. Callers hold random.LockedRand's mutex.
type instantSource struct {
	seed uint64
	at   int64 // virtual UnixNano of the last draw
	k    uint64
}

func (s *instantSource) Uint64() uint64 {
	now := time.Now().UnixNano()
	if now != s.at {
		s.at, s.k = now, 0
	}
	v := mix64(s.seed^uint64(now)) + s.k*jitterPeriod
	s.k++
	return v
}

func (s *instantSource) Int63() int64 { return int64(s.Uint64() >> 1) }

func (s *instantSource) Seed(int64) {}

// mix64 is SplitMix64's finaliser.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
