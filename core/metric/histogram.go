package metric

import (
	"fmt"
	"io"
	"math/bits"
	"sync/atomic"
	"time"
)

// Bucket layout: log-linear, subBuckets per power of two of nanoseconds,
// from minExp (1,024 ns) to maxExp (2^35 ns, about 34 s): each bucket is at
// most 25% wide, so a quantile read off it (interpolated) is within about
// 12% of the true value. Bucket 0 holds everything below 2^minExp ns; the
// last holds everything at or above 2^maxExp ns.
const (
	minExp      = 10
	maxExp      = 35
	subBits     = 2
	subBuckets  = 1 << subBits
	BucketCount = (maxExp-minExp)*subBuckets + 2
)

// Histogram counts durations in fixed log-linear buckets. The zero value
// is ready to use.
type Histogram struct {
	buckets [BucketCount]atomic.Uint64
	count   atomic.Uint64
	sumNs   atomic.Uint64
}

// bucketOf returns the bucket index of ns.
func bucketOf(ns uint64) int {
	if ns < 1<<minExp {
		return 0
	}
	e := bits.Len64(ns) - 1 // 2^e <= ns < 2^(e+1)
	if e >= maxExp {
		return BucketCount - 1
	}
	sub := int(ns>>(e-subBits)) & (subBuckets - 1)
	return 1 + (e-minExp)*subBuckets + sub
}

// upperNs is the exclusive upper bound of bucket i in nanoseconds (the
// last bucket has none: math.MaxUint64).
func upperNs(i int) uint64 {
	if i == 0 {
		return 1 << minExp
	}
	if i >= BucketCount-1 {
		return ^uint64(0)
	}
	e := minExp + (i-1)/subBuckets
	sub := uint64((i-1)%subBuckets) + 1
	return (subBuckets + sub) << (e - subBits)
}

// lowerNs is the inclusive lower bound of bucket i.
func lowerNs(i int) uint64 {
	if i == 0 {
		return 0
	}
	return upperNs(i - 1)
}

// Observe counts one duration; negative durations count as zero.
func (h *Histogram) Observe(d time.Duration) {
	ns := uint64(max(d, 0))
	h.buckets[bucketOf(ns)].Add(1)
	h.count.Add(1)
	h.sumNs.Add(ns)
}

// Snapshot is a copy of a Histogram's counters at one moment.
type Snapshot struct {
	Buckets [BucketCount]uint64
	Count   uint64
	SumNs   uint64
}

// Snapshot copies the counters (each read atomically; the copy as a whole
// is not a single instant under concurrent Observe calls).
func (h *Histogram) Snapshot() Snapshot {
	var s Snapshot
	for i := range h.buckets {
		s.Buckets[i] = h.buckets[i].Load()
	}
	s.Count, s.SumNs = h.count.Load(), h.sumNs.Load()
	return s
}

// Sub returns the observations made between earlier and s.
func (s Snapshot) Sub(earlier Snapshot) Snapshot {
	out := Snapshot{Count: s.Count - earlier.Count, SumNs: s.SumNs - earlier.SumNs}
	for i := range s.Buckets {
		out.Buckets[i] = s.Buckets[i] - earlier.Buckets[i]
	}
	return out
}

// Quantile estimates the q-quantile (0 < q <= 1) by linear interpolation
// inside the bucket that holds it; 0 for an empty snapshot.
func (s Snapshot) Quantile(q float64) time.Duration {
	var total uint64
	for _, c := range s.Buckets {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen uint64
	for i, c := range s.Buckets {
		if c == 0 || float64(seen+c) < rank {
			seen += c
			continue
		}
		lo, hi := float64(lowerNs(i)), float64(upperNs(i))
		if i == BucketCount-1 {
			hi = lo // unbounded: report the bound
		}
		frac := (rank - float64(seen)) / float64(c)
		return time.Duration(lo + frac*(hi-lo))
	}
	return time.Duration(lowerNs(BucketCount - 1))
}

// Mean is the average observation; 0 for an empty snapshot.
func (s Snapshot) Mean() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return time.Duration(s.SumNs / s.Count)
}

// BucketUpperSeconds is the Prometheus "le" bound of bucket i.
func BucketUpperSeconds(i int) float64 { return float64(upperNs(i)) / 1e9 }

// WritePrometheus writes h as one series of the Prometheus histogram name
// (cumulative buckets, sum in seconds, count); labels is "" or the inner
// text of a label set (`stage="apply"`). Empty buckets after the last
// non-empty one are skipped (only +Inf is written), which Prometheus
// accepts.
func (h *Histogram) WritePrometheus(w io.Writer, name, labels string) error {
	s := h.Snapshot()
	sep := ""
	if labels != "" {
		sep = ","
	}
	last := 0
	for i, c := range s.Buckets {
		if c > 0 {
			last = i
		}
	}
	var cum uint64
	for i := 0; i <= last && i < BucketCount-1; i++ {
		cum += s.Buckets[i]
		if _, err := fmt.Fprintf(w, "%s_bucket{%s%sle=\"%g\"} %d\n", name, labels, sep, BucketUpperSeconds(i), cum); err != nil {
			return err
		}
	}
	cum = 0
	for _, c := range s.Buckets {
		cum += c
	}
	braces := ""
	if labels != "" {
		braces = "{" + labels + "}"
	}
	_, err := fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n%s_sum%s %.9f\n%s_count%s %d\n",
		name, labels, sep, cum, name, braces, float64(s.SumNs)/1e9, name, braces, cum)
	return err
}
