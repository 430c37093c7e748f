package metric

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	for _, ns := range []uint64{0, 1, 1023, 1024, 1279, 1280, 1500, 2047, 2048, 1e6, 1e9, 1 << 34, 1<<35 - 1, 1 << 35, 1 << 60} {
		i := bucketOf(ns)
		if ns < lowerNs(i) || (i < BucketCount-1 && ns >= upperNs(i)) {
			t.Fatalf("ns %d in bucket %d [%d, %d)", ns, i, lowerNs(i), upperNs(i))
		}
	}
	for i := 1; i < BucketCount-1; i++ {
		if lo, hi := lowerNs(i), upperNs(i); hi <= lo || float64(hi-lo) > 0.25*float64(hi) {
			t.Fatalf("bucket %d [%d, %d) too wide or empty", i, lo, hi)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Observe(time.Duration(i) * time.Microsecond)
	}
	s := h.Snapshot()
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}} {
		got := s.Quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.13 || d > 0.13 {
			t.Errorf("q%v = %v, want about %v", c.q, got, c.want)
		}
	}
	if (Snapshot{}).Quantile(0.5) != 0 || s.Sub(s).Count != 0 {
		t.Fatal("empty snapshot not zero")
	}
	if m := s.Mean(); m != 500500*time.Nanosecond {
		t.Fatalf("mean %v", m)
	}
}

func TestWritePrometheus(t *testing.T) {
	var h Histogram
	h.Observe(3 * time.Millisecond)
	h.Observe(-time.Second)
	var b bytes.Buffer
	if err := h.WritePrometheus(&b, "x_seconds", `stage="a"`); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{`x_seconds_bucket{stage="a",le="+Inf"} 2`, `x_seconds_count{stage="a"} 2`, `x_seconds_sum{stage="a"} 0.003000000`} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	var h Histogram
	if n := testing.AllocsPerRun(100, func() { h.Observe(time.Millisecond) }); n != 0 {
		t.Fatalf("%v allocations per Observe", n)
	}
}
