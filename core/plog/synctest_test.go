package plog

import (
	"context"
	"path"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/diskio"
)

// TestGroupCommitUnderSynctest runs concurrent appenders against a Sim with
// fsync and write latency inside a synctest bubble: it must not deadlock
// (no mutex is held across I/O), and segments roll by age on the simulated
// clock.
func TestGroupCommitUnderSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := diskio.NewSim(21)
		fs.SetFaults(diskio.Faults{Latency: map[diskio.Op]time.Duration{diskio.OpSync: 2 * time.Millisecond, diskio.OpWrite: 100 * time.Microsecond}})
		o := Options{FS: fs, Dir: "log", Clock: clock.NewSim(time.Second, 50), SegmentAgeMax: 100 * time.Millisecond}
		l := mustOpen(t, o)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					if _, err := l.AppendDurable(context.Background(), mkBatch(1, 100, int64(i)), 0, int32(w/8)); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		if l.NextOffset() != 400 || l.DurableNextOffset() != 400 {
			t.Fatalf("next %d durable %d", l.NextOffset(), l.DurableNextOffset())
		}
		if len(l.segs) < 2 {
			t.Fatalf("no age roll after ~500ms of virtual time: %d segments", len(l.segs))
		}
		// A waiter whose context ends while another fsync is in flight gives up.
		ctx, cancel := context.WithTimeout(context.Background(), time.Microsecond)
		r, _ := l.Append(mkBatch(1, 10, 0), 0, 0)
		go l.Sync(context.Background())
		synctest.Wait()
		if err := l.WaitDurable(ctx, r.Ticket); err != nil && err != context.DeadlineExceeded {
			t.Fatalf("WaitDurable: %v", err)
		}
		cancel()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOSAppendReadRecover runs the core cycle on the real file system.
func TestOSAppendReadRecover(t *testing.T) {
	o := Options{FS: diskio.NewOS(), Dir: path.Join(t.TempDir(), "p0"), SegmentBytesMax: 8 << 10, IndexIntervalBytes: 512}
	l := mustOpen(t, o)
	for i := range 100 {
		mustAppend(t, l, mkBatch(2, 300, int64(i)), uint64(i+1), 3)
	}
	want := readAll(t, l)
	// Simulate a crash that left a torn partial frame at the tail.
	f, err := o.FS.OpenRW(l.active().path)
	if err != nil {
		t.Fatal(err)
	}
	// Drop the log without Close (no checkpoint update), then tear.
	for _, s := range l.segs {
		s.f.Close()
	}
	sz, _ := f.Size()
	f.WriteAt([]byte{0x43, 0x48, 0x4b, 0x31, 0, 0, 1}, sz)
	f.Close()
	l = mustOpen(t, o)
	defer l.Close()
	got := readAll(t, l)
	if len(got) != len(want) || l.LastDurableRaftIndex() != 100 {
		t.Fatalf("recovered %d of %d batches, raft %d", len(got), len(want), l.LastDurableRaftIndex())
	}
	if e, off := l.OffsetForLeaderEpoch(3); e != 3 || off != 200 {
		t.Fatalf("epoch cache: %d %d", e, off)
	}
}
