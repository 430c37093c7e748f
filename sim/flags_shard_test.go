package sim

import (
	"slices"
	"testing"
)

// The shards of a range are disjoint and together are the range.
func TestShardSeeds(t *testing.T) {
	for _, count := range []int{0, 1, 5, 20} {
		for n := 1; n <= 4; n++ {
			var all []int64
			for i := range n {
				s := shardSeeds(7, count, i, n)
				for k := 1; k < len(s); k++ {
					if s[k]-s[k-1] != int64(n) {
						t.Fatalf("count %d shard %d/%d: %v not every n-th seed", count, i, n, s)
					}
				}
				all = append(all, s...)
			}
			slices.Sort(all)
			want := make([]int64, count)
			for k := range want {
				want[k] = 7 + int64(k)
			}
			if !slices.Equal(all, want) {
				t.Fatalf("count %d, %d shards: union %v, want %v", count, n, all, want)
			}
		}
	}
}
