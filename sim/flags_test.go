package sim

import "flag"

// Seeds: -seed=N replays one schedule; otherwise -seeds=N schedules starting
// at -seed-base run. Every failure prints "reproduce: make sim SEED=N".
//
// -seed-shard=i -seed-shards=n keep only the seeds at positions i, i+n,
// i+2n, ... of that range, so that n processes (each GOMAXPROCS=1, which
// replay needs) share one range without overlap (make sim, SIM_PROCS).
var (
	flagSeed       = flag.Int64("seed", 0, "run only this seed (0: use -seeds)")
	flagSeeds      = flag.Int("seeds", 5, "number of seeds to run")
	flagSeedBase   = flag.Int64("seed-base", 1, "first seed when -seeds is used")
	flagSeedShard  = flag.Int("seed-shard", 0, "with -seed-shards: this process's shard, 0 <= i < n")
	flagSeedShards = flag.Int("seed-shards", 1, "number of processes sharing the -seeds range")
)

func seedsToRun() []int64 {
	if *flagSeed != 0 {
		return []int64{*flagSeed}
	}
	return shardSeeds(*flagSeedBase, *flagSeeds, *flagSeedShard, *flagSeedShards)
}

// shardSeeds returns shard i of n of the seeds base, base+1, ...,
// base+count-1: the seeds at positions i, i+n, i+2n, ...
func shardSeeds(base int64, count, i, n int) []int64 {
	if n < 1 || i < 0 || i >= n {
		panic("sim: -seed-shard must be in [0, -seed-shards)")
	}
	var seeds []int64
	for k := i; k < count; k += n {
		seeds = append(seeds, base+int64(k))
	}
	return seeds
}
