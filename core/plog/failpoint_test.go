//go:build failpoint

package plog

import (
	"context"
	"errors"
	"testing"

	"github.com/pingcap/failpoint"

	"github.com/chronik-go/chronik/diskio"
)

const fpPkg = "github.com/chronik-go/chronik/core/plog/"

func enableFailpoint(t *testing.T, name, term string) {
	t.Helper()
	if err := failpoint.Enable(fpPkg+name, term); err != nil {
		t.Fatalf("enable %s: %v", name, err)
	}
	t.Cleanup(func() { _ = failpoint.Disable(fpPkg + name) })
}

// TestFailpointSyncError: one injected fsync failure fails the waiter, the
// batch is never reported durable, later appends are refused, and after
// reopening the batches that were durable before are all there.
func TestFailpointSyncError(t *testing.T) {
	fs := diskio.NewSim(21)
	o := testOpts(fs)
	l := mustOpen(t, o)
	for i := range 3 {
		mustAppend(t, l, mkBatch(2, 50, 0), uint64(i+1), 0)
	}
	enableFailpoint(t, "syncError", "1*return")
	if _, err := l.AppendDurable(context.Background(), mkBatch(2, 50, 0), 4, 0); !errors.Is(err, ErrLogFailed) || !errors.Is(err, diskio.ErrInjected) {
		t.Fatalf("AppendDurable under syncError: %v, want ErrLogFailed wrapping ErrInjected", err)
	}
	if got := l.DurableNextOffset(); got != 6 {
		t.Fatalf("durable next offset %d after the failed fsync, want 6", got)
	}
	if _, err := l.Append(mkBatch(1, 50, 0), 5, 0); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append after failed fsync: %v, want ErrLogFailed", err)
	}
	l.Close()
	l = mustOpen(t, o)
	defer l.Close()
	if n := len(readAll(t, l)); n < 3 {
		t.Fatalf("after reopen %d batches, want at least the 3 durable ones", n)
	}
}

// TestFailpointWriteError: a failed write acknowledges nothing, leaves
// nothing readable, and the log carries on with the next append.
func TestFailpointWriteError(t *testing.T) {
	l := mustOpen(t, testOpts(diskio.NewSim(22)))
	defer l.Close()
	mustAppend(t, l, mkBatch(1, 50, 0), 1, 0)
	enableFailpoint(t, "writeError", "1*return")
	if _, err := l.Append(mkBatch(1, 50, 0), 2, 0); !errors.Is(err, diskio.ErrInjected) {
		t.Fatalf("Append under writeError: %v, want ErrInjected", err)
	}
	if l.NextOffset() != 1 {
		t.Fatalf("next offset %d after a failed write, want 1", l.NextOffset())
	}
	r := mustAppend(t, l, mkBatch(1, 50, 0), 3, 0)
	if r.BaseOffset != 1 {
		t.Fatalf("append after the failed write got offset %d, want 1", r.BaseOffset)
	}
	if n := len(readAll(t, l)); n != 2 {
		t.Fatalf("%d batches readable, want 2", n)
	}
}
