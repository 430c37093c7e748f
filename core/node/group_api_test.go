package node

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/core/meta"
)

// TestCoordinatorTerm: exactly the controller leader is the coordinator,
// in the controller's term; after the leader stops another node takes over
// in a higher term and sees the offsets committed before; OffsetGroups
// lists the groups with offsets.
func TestCoordinatorTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 7, 3)
		defer c.closeAll()
		ctx := context.Background()
		leader := func() (uint64, uint64) {
			var id, term uint64
			waitFor(t, 30*time.Second, "one coordinator", func() bool {
				id, term = 0, 0
				for _, nid := range c.ids() {
					if tm, ok := c.node(nid).CoordinatorTerm(ctx); ok {
						if id != 0 {
							return false
						}
						id, term = nid, tm
					}
				}
				return id != 0
			})
			return id, term
		}
		id, term := leader()
		c.createTopic("t", 1, -1)
		n := c.node(id)
		if codes := n.CommitOffsets(ctx, meta.CommitOffsets{Group: "g", Offsets: []meta.OffsetCommit{{Topic: "t", Offset: 5}}}); codes[0].Code != 0 {
			t.Fatalf("commit: %+v", codes)
		}
		if gs, err := n.OffsetGroups(); err != nil || !slices.Equal(gs, []string{"g"}) {
			t.Fatalf("OffsetGroups: %v %v", gs, err)
		}
		c.stop(id)
		if _, ok := n.CoordinatorTerm(ctx); ok {
			t.Fatal("closed node claims to coordinate")
		}
		id2, term2 := leader()
		if id2 == id || term2 <= term {
			t.Fatalf("new coordinator %d term %d after %d term %d", id2, term2, id, term)
		}
		got, err := c.node(id2).FetchOffsets("g")
		if err != nil || len(got) != 1 || got[0].Offset != 5 {
			t.Fatalf("offsets at the new coordinator: %+v %v", got, err)
		}
	})
}
