package sim

import "flag"

// Seeds: -seed=N replays one schedule; otherwise -seeds=N schedules starting
// at -seed-base run. Every failure prints "reproduce: make sim SEED=N".
var (
	flagSeed     = flag.Int64("seed", 0, "run only this seed (0: use -seeds)")
	flagSeeds    = flag.Int("seeds", 5, "number of seeds to run")
	flagSeedBase = flag.Int64("seed-base", 1, "first seed when -seeds is used")
)

func seedsToRun() []int64 {
	if *flagSeed != 0 {
		return []int64{*flagSeed}
	}
	seeds := make([]int64, *flagSeeds)
	for i := range seeds {
		seeds[i] = *flagSeedBase + int64(i)
	}
	return seeds
}
