//go:build failpoint

package partition

import (
	"bytes"
	"errors"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/pingcap/failpoint"

	"github.com/chronik-go/chronik/diskio"
)

const fpPkg = "github.com/chronik-go/chronik/core/partition/"

func enableFailpoint(t *testing.T, name, term string) {
	t.Helper()
	if err := failpoint.Enable(fpPkg+name, term); err != nil {
		t.Fatalf("enable %s: %v", name, err)
	}
	t.Cleanup(func() { _ = failpoint.Disable(fpPkg + name) })
}

// TestFailpointApplyFailStop: an Update or Sync that fails is fatal for the
// replica (dragonboat panics). The entry it failed on is never
// acknowledged; after a crash, the reopened replica reports an index at or
// above the last successful Sync, and replaying from there gives exactly
// the results and the state of an uninterrupted run: every acknowledged
// entry is still there, at its offset, and nothing is applied twice.
func TestFailpointApplyFailStop(t *testing.T) {
	cmds := workloadOpts(60, false)
	want, wantResults := reference(t, cmds)
	const acked, syncedAt = 30, 20
	for _, fp := range []string{"beforeApply", "afterApply", "syncError"} {
		t.Run(fp, func(t *testing.T) {
			fs := diskio.NewSim(7)
			h, _ := openHarness(t, bigSegments(testOptions(fs)))
			for i, c := range cmds[:acked] {
				if got := h.apply(c); !bytes.Equal(got.Data, wantResults[i].Data) {
					t.Fatalf("entry %d: %x, want %x", i+1, got.Data, wantResults[i].Data)
				}
				if i+1 == syncedAt {
					if err := h.sm.Sync(); err != nil {
						t.Fatal(err)
					}
				}
			}
			hw := h.replica().HighWatermark()
			enableFailpoint(t, fp, "1*return")
			var err error
			if fp == "syncError" {
				err = h.sm.Sync()
			} else {
				_, err = h.sm.Update([]sm.Entry{{Index: acked + 1, Cmd: cmds[acked]}})
			}
			if !errors.Is(err, diskio.ErrInjected) {
				t.Fatalf("%s: %v, want ErrInjected", fp, err)
			}
			if got := h.replica().HighWatermark(); got != hw {
				t.Fatalf("%s: high watermark %d published after the failure, want %d", fp, got, hw)
			}
			fs.Freeze()
			_ = h.sm.Close()
			h2, idx := openHarness(t, bigSegments(testOptions(fs.CrashImage(diskio.CrashSyncedOnly))))
			defer h2.close()
			if idx < syncedAt {
				t.Fatalf("reopened at %d, below the synced index %d", idx, syncedAt)
			}
			for i := idx; i < uint64(len(cmds)); i++ {
				if got := h2.applyAt(i+1, cmds[i]); !bytes.Equal(got.Data, wantResults[i].Data) {
					t.Fatalf("replayed entry %d: %x, want %x", i+1, got.Data, wantResults[i].Data)
				}
			}
			sameState(t, "after fail-stop and replay", stateOf(t, h2), want)
		})
	}
}

// TestFailpointSnapshotSave: a snapshot whose save fails midway is a
// truncated stream; a replica refuses it and keeps its state; the next
// save (the retry) is whole and installs the sender's state.
func TestFailpointSnapshotSave(t *testing.T) {
	a, _ := openHarness(t, testOptions(diskio.NewSim(3)))
	defer a.close()
	for _, c := range workload(120) {
		a.apply(c)
	}
	enableFailpoint(t, "snapshotSaveError", "1*return")
	ctx, err := a.sm.PrepareSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	var partial bytes.Buffer
	if err := a.sm.SaveSnapshot(ctx, &partial, nil); !errors.Is(err, diskio.ErrInjected) {
		t.Fatalf("SaveSnapshot: %v, want ErrInjected", err)
	}
	b, _ := openHarness(t, testOptions(diskio.NewSim(4)))
	defer b.close()
	b.produce(9, tb{pid: 77, records: 5})
	before := stateOf(t, b)
	if err := b.sm.RecoverFromSnapshot(bytes.NewReader(partial.Bytes()), nil); err == nil {
		t.Fatal("a partial snapshot was installed")
	}
	sameState(t, "after refusing a partial snapshot", stateOf(t, b), before)
	if err := b.sm.RecoverFromSnapshot(bytes.NewReader(snapshotOf(t, a)), nil); err != nil {
		t.Fatalf("retried snapshot: %v", err)
	}
	sameState(t, "after the retried snapshot", stateOf(t, b), stateOf(t, a))
}

// TestFailpointSnapshotRecover: a recovery that fails after staging leaves
// the old state intact and serving (appends included); the retry installs
// the snapshot, and the replica reopens at the snapshot's index.
func TestFailpointSnapshotRecover(t *testing.T) {
	cmds := workload(120)
	a, _ := openHarness(t, testOptions(diskio.NewSim(3)))
	for _, c := range cmds {
		a.apply(c)
	}
	snap, want := snapshotOf(t, a), stateOf(t, a)
	a.close()

	b, _ := openHarness(t, testOptions(diskio.NewSim(5)))
	for _, c := range workload(30) {
		b.apply(c)
	}
	before := stateOf(t, b)
	enableFailpoint(t, "snapshotRecoverError", "1*return")
	if err := b.sm.RecoverFromSnapshot(bytes.NewReader(snap), nil); !errors.Is(err, diskio.ErrInjected) {
		t.Fatalf("RecoverFromSnapshot: %v, want ErrInjected", err)
	}
	sameState(t, "after the failed recovery", stateOf(t, b), before)
	if r := b.produce(3, tb{pid: -1, records: 2}); r.ErrorCode != 0 || r.BaseOffset != before.hw {
		t.Fatalf("append after the failed recovery: %+v, want base %d", r, before.hw)
	}
	if err := b.sm.RecoverFromSnapshot(bytes.NewReader(snap), nil); err != nil {
		t.Fatalf("retried recovery: %v", err)
	}
	sameState(t, "after the retried recovery", stateOf(t, b), want)
	b.close()
	if idx := b.open(); idx != uint64(len(cmds)) {
		t.Fatalf("reopened at %d, want the snapshot's %d", idx, len(cmds))
	}
	sameState(t, "reopened", stateOf(t, b), want)
	b.close()
}
