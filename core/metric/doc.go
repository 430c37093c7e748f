// Package metric holds the latency histograms of the produce path (the
// per-stage breakdown in DESIGN.md, "Where a produce's time goes") and
// writes them in the Prometheus text format.
//
// Concurrency: every method of Histogram is safe for concurrent use;
// Observe is lock-free (atomic adds on a fixed array) and allocates
// nothing, so it may sit on the produce path.
//
// Invariant: a Histogram's count equals the sum of its buckets once
// concurrent Observe calls have returned. Observing never changes the
// behaviour of the code it measures: it reads no clock of its own (the
// caller passes a duration taken from its Clock) and has no effect other
// than the counters.
package metric
