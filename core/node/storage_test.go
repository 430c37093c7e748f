package node

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/diskio"
)

// TestStorageFailureOnReplicaOpen: a partition replica whose segment reads
// fail their checksums while it opens calls the node's fail-stop hook
// (Config.OnStorageFailure) instead of panicking the process through
// dragonboat; the node keeps running until its owner stops it, and once
// the disk reads clean a restart serves everything.
func TestStorageFailureOnReplicaOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Stopped cleanly, then plog's recovery checkpoint removed (as if
		// a crash came before it was written): the replica's open
		// re-verifies every segment.
		c, before := stoppedNodeWithData(t, 4)
		defer c.closeAll()
		if err := c.disks[1].Remove("data/partitions/1000/log/plog.checkpoint"); err != nil {
			t.Fatalf("remove plog checkpoint: %v", err)
		}

		var mu sync.Mutex
		var failures []error
		cfg := c.config(1)
		cfg.OnStorageFailure = func(err error) {
			mu.Lock()
			failures = append(failures, err)
			mu.Unlock()
		}
		c.disks[1].SetFaults(diskio.Faults{ReadBitFlipProbability: 1, ReadBitFlipPattern: "data/partitions/*/log/*.log"})
		n, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		waitFor(t, 20*time.Second, "the fail-stop hook", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(failures) > 0
		})
		mu.Lock()
		t.Logf("fail-stop: %v", failures[0])
		if !strings.Contains(failures[0].Error(), "corrupt") {
			t.Errorf("hook error %v does not name the corruption", failures[0])
		}
		mu.Unlock()
		c.disks[1].SetFaults(diskio.Faults{})
		if err := n.Close(context.Background()); err != nil {
			t.Logf("close after a fail-stop: %v", err)
		}

		c.start(1)
		waitFor(t, 20*time.Second, "the partition back", func() bool {
			got, _, code := tryFetchAll(t, c.node(1), "t", 0)
			return code == 0 && bytes.Equal(got, before)
		})
	})
}
