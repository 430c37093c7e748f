package node

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/core/meta"
)

// TestOffsetExpiryPass: the coordinator expires the offsets of a group
// GroupActive calls empty once they are older than OffsetsRetention, not
// before it has coordinated for OffsetsExpirySettle, keeps an active
// group's older offsets, and reports the group whose last offset went.
func TestOffsetExpiryPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var expired []string
		var expiredAt time.Time
		t0 := time.Now()
		c := newClusterWith(t, 11, 1, func(cfg *Config) {
			cfg.OffsetsRetention = 5 * time.Second
			cfg.OffsetsRetentionCheckInterval = time.Second
			cfg.OffsetsExpirySettle = 30 * time.Second
			cfg.GroupActive = func(g string) bool { return g == "active" }
			cfg.GroupExpired = func(g string) {
				mu.Lock()
				defer mu.Unlock()
				expired = append(expired, g)
				expiredAt = time.Now()
			}
		})
		defer c.closeAll()
		c.createTopic("t", 2, 1)
		n := c.node(1)
		ctx := context.Background()
		for _, g := range []string{"active", "gone"} {
			waitFor(t, 20*time.Second, "commit "+g, func() bool {
				codes := n.CommitOffsets(ctx, meta.CommitOffsets{Group: g, Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 5}}})
				return codes[0].Code == 0
			})
		}
		waitFor(t, 2*time.Minute, "gone's offsets expired", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(expired) > 0
		})
		mu.Lock()
		defer mu.Unlock()
		if got, err := n.FetchOffsets("gone"); err != nil || len(got) != 0 {
			t.Fatalf("gone's offsets after expiry %+v %v", got, err)
		}
		if !slices.Equal(expired, []string{"gone"}) {
			t.Fatalf("GroupExpired calls %v, want [gone]", expired)
		}
		if d := expiredAt.Sub(t0); d < 30*time.Second {
			t.Fatalf("expired %v after start, before the 30 s settle", d)
		}
		if got, err := n.FetchOffsets("active"); err != nil || len(got) != 1 || got[0].Offset != 5 {
			t.Fatalf("active group's offsets %+v %v", got, err)
		}
	})
}

// TestOffsetExpiryKnownGroup: a group whose membership the coordinator
// knows in its tenure (GroupKnown: loaded from its replicated record)
// has its offsets expired without waiting OffsetsExpirySettle; a group it
// does not know keeps them until the settle has passed.
func TestOffsetExpiryKnownGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var expired []string
		var knownTerm uint64
		c := newClusterWith(t, 11, 1, func(cfg *Config) {
			cfg.OffsetsRetention = 5 * time.Second
			cfg.OffsetsRetentionCheckInterval = time.Second
			cfg.OffsetsExpirySettle = time.Hour
			cfg.GroupActive = func(string) bool { return false }
			cfg.GroupKnown = func(term uint64, g string) bool {
				mu.Lock()
				defer mu.Unlock()
				knownTerm = term
				return g != "unknown"
			}
			cfg.GroupExpired = func(g string) {
				mu.Lock()
				defer mu.Unlock()
				expired = append(expired, g)
			}
		})
		defer c.closeAll()
		c.createTopic("t", 1, 1)
		n := c.node(1)
		ctx := context.Background()
		// The pass walks groups in name order: "unknown" comes between.
		for _, g := range []string{"known", "unknown", "zknown"} {
			waitFor(t, 20*time.Second, "commit "+g, func() bool {
				codes := n.CommitOffsets(ctx, meta.CommitOffsets{Group: g, Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 5}}})
				return codes[0].Code == 0
			})
		}
		waitFor(t, 2*time.Minute, "known groups' offsets expired", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(expired, "zknown")
		})
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(expired, []string{"known", "zknown"}) {
			t.Fatalf("GroupExpired calls %v, want [known zknown]", expired)
		}
		if term, ok := n.CoordinatorTerm(ctx); !ok || knownTerm != term {
			t.Fatalf("GroupKnown asked about term %d, coordinator term %d %v", knownTerm, term, ok)
		}
		if got, err := n.FetchOffsets("unknown"); err != nil || len(got) != 1 {
			t.Fatalf("unknown group's offsets %+v %v", got, err)
		}
	})
}
