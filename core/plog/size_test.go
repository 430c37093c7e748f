package plog

import (
	"testing"

	"github.com/chronik-go/chronik/diskio"
)

// TestSizeBytes: SizeBytes is the sum of the segment files' lengths on
// disk, grows by each framed batch, spans rolled segments, survives a
// reopen, shrinks with DeletePrefix, and is 0 once closed.
func TestSizeBytes(t *testing.T) {
	fs := diskio.NewSim(11)
	o := testOpts(fs)
	o.SegmentBytesMax = 4096
	l := mustOpen(t, o)
	if got := l.SizeBytes(); got != 0 {
		t.Fatalf("empty log: %d bytes", got)
	}
	onDisk := func() int64 {
		t.Helper()
		var total int64
		for _, s := range l.segs {
			fi, err := fs.Stat(s.path)
			if err != nil {
				t.Fatal(err)
			}
			total += fi.Size
		}
		return total
	}
	var want int64
	for i := 0; i < 10; i++ {
		b := mkBatch(1, 1000, 0)
		mustAppend(t, l, b, uint64(i+1), 0)
		want += int64(len(b) + FrameHeaderBytes)
		if got := l.SizeBytes(); got != want {
			t.Fatalf("after %d batches: %d bytes, want %d", i+1, got, want)
		}
	}
	if len(l.segs) < 2 {
		t.Fatalf("expected rolled segments, have %d", len(l.segs))
	}
	if got, disk := l.SizeBytes(), onDisk(); got != disk {
		t.Fatalf("SizeBytes %d, segment files %d", got, disk)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.SizeBytes(); got != 0 {
		t.Fatalf("closed log: %d bytes", got)
	}
	l = mustOpen(t, o)
	defer l.Close()
	if got := l.SizeBytes(); got != want {
		t.Fatalf("after reopen: %d bytes, want %d", got, want)
	}
	if err := l.DeletePrefix(l.NextOffset() - 1); err != nil {
		t.Fatal(err)
	}
	if got, disk := l.SizeBytes(), onDisk(); got >= want || got != disk {
		t.Fatalf("after DeletePrefix: %d bytes (files %d), want below %d", got, disk, want)
	}
}
