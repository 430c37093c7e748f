package sim

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// Seeds: -seed=N replays one schedule; otherwise -seeds=N schedules starting
// at -seed-base run. Every failure prints "reproduce: make sim SEED=N".
//
// -seed-shard=i -seed-shards=n keep only the seeds at positions i, i+n,
// i+2n, ... of that range, so that n processes (each GOMAXPROCS=1, which
// replay needs) share one range without overlap (make sim, SIM_PROCS).
var (
	flagLogLevel   = flag.String("sim-log-level", "warn", "nodes' log level (debug | info | warn | error), kept in memory and written beside a failing seed's trace (seed-N.log)")
	flagSeed       = flag.Int64("seed", 0, "run only this seed (0: use -seeds)")
	flagSeeds      = flag.Int("seeds", 5, "number of seeds to run")
	flagSeedBase   = flag.Int64("seed-base", 1, "first seed when -seeds is used")
	flagSeedShard  = flag.Int("seed-shard", 0, "with -seed-shards: this process's shard, 0 <= i < n")
	flagSeedShards = flag.Int("seed-shards", 1, "number of processes sharing the -seeds range")
	flagSeedClaims = flag.String("seed-claims", "", "directory shared by processes running one -seeds range: each seed runs in the first process to claim it (a file created there), so shards balance themselves; overrides -seed-shard")
)

func seedsToRun() []int64 {
	if *flagSeed != 0 {
		return []int64{*flagSeed}
	}
	if *flagSeedClaims != "" {
		return shardSeeds(*flagSeedBase, *flagSeeds, 0, 1)
	}
	return shardSeeds(*flagSeedBase, *flagSeeds, *flagSeedShard, *flagSeedShards)
}

// claimSeed reports whether this process runs test's seed: always without
// -seed-claims; with it, only if this process is the first to create the
// seed's claim file.
func claimSeed(test string, seed int64) bool {
	if *flagSeedClaims == "" || *flagSeed != 0 {
		return true
	}
	f, err := os.OpenFile(filepath.Join(*flagSeedClaims, fmt.Sprintf("%s-%d", test, seed)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false
	}
	if err != nil {
		panic(fmt.Sprintf("sim: -seed-claims: %v", err))
	}
	f.Close()
	return true
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

// simLogLevel is -sim-log-level (warn if it does not parse).
func simLogLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(*flagLogLevel)); err != nil {
		return slog.LevelWarn
	}
	return l
}
