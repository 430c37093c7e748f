package node

import (
	"bytes"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// TestProduceReadBackIdentical: produce proposals are encoded into pooled
// buffers that go back to the pool when SyncPropose returns (dragonboat
// copies the command into its entry). Were a buffer still referenced
// (by dragonboat, or by our own code) when the next produce reuses it,
// entries in flight would change under Raft: the batches read back would
// differ from those produced. Two partitions produced to concurrently,
// batches of varying sizes and contents, compared byte for byte outside
// the base offset and leader epoch the log stamps.
func TestProduceReadBackIdentical(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, 1)
		defer c.closeAll()
		const parts, produces = 2, 60
		c.createTopic("t", parts, -1)
		want := make([][][]byte, parts)
		var wg sync.WaitGroup
		for p := range int32(parts) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range produces {
					b := batch(-1, int32(i*7+int(p)*1000), 1+i%4, 50+(i*389+int(p)*97)%6000, int64(i))
					want[p] = append(want[p], bytes.Clone(b))
					if res := c.produce("t", p, b, 20*time.Second); res.ErrorCode != 0 {
						t.Errorf("produce %d/%d: code %d", p, i, res.ErrorCode)
						return
					}
				}
			}()
		}
		wg.Wait()
		for p := range int32(parts) {
			got, _ := fetchAll(t, c.node(1), "t", p)
			for i, w := range want[p] {
				if len(got) < len(w) {
					t.Fatalf("partition %d: batch %d missing (%d bytes left)", p, i, len(got))
				}
				g := got[:len(w)]
				if !bytes.Equal(g[8:12], w[8:12]) || !bytes.Equal(g[16:], w[16:]) {
					t.Fatalf("partition %d: batch %d differs from the one produced", p, i)
				}
				got = got[len(w):]
			}
			if len(got) != 0 {
				t.Fatalf("partition %d: %d bytes beyond the batches produced", p, len(got))
			}
		}
	})
}
