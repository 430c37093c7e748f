package partition

import (
	"errors"
	"testing"

	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

// TestReplicaSizeBytes: a replica's size grows with every applied batch by
// the batch's framed bytes, is kept across a reopen, and a closed replica
// answers ErrClosed.
func TestReplicaSizeBytes(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(21)))
	r := h.replica()
	if n, err := r.SizeBytes(); err != nil || n != 0 {
		t.Fatalf("empty replica: %d, %v", n, err)
	}
	var want int64
	for i := range 8 {
		b := tb{pid: -1, records: 3, seed: byte(i)}
		mustOK(t, h.produce(1, b), int64(3*i), int64(3*i+2))
		want += int64(len(b.encode()) + plog.FrameHeaderBytes)
		if n, err := r.SizeBytes(); err != nil || n != want {
			t.Fatalf("after %d batches: %d, %v; want %d", i+1, n, err, want)
		}
	}
	h.close()
	if _, err := r.SizeBytes(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed replica: %v, want ErrClosed", err)
	}
	h.open()
	defer h.close()
	if n, err := h.replica().SizeBytes(); err != nil || n != want {
		t.Fatalf("after reopen: %d, %v; want %d", n, err, want)
	}
}
