package clock

import (
	"context"
	"time"
)

// Sim is a node's clock in the simulator. Under testing/synctest, time.Now
// and timers run on the bubble's virtual time; Sim skews that per node:
//
//	Now = base + Offset + (virtual elapsed since base) * (1 + DriftPPM/1e6)
//
// Timers and sleeps scale their durations by the same drift, so a node whose
// clock runs fast also times out early, as a real one would. Offset and drift
// are fixed at construction (the simulator draws them from its seed).
type Sim struct {
	base     time.Time
	offset   time.Duration
	driftPPM int64
}

// DriftPPMMax bounds the drift a Sim accepts: real crystals drift by tens of
// ppm; we allow far more to stress timeouts, but not enough to reverse time.
const DriftPPMMax = 100_000

// NewSim returns a clock skewed by offset and drifting by driftPPM parts per
// million, starting now (in the bubble's virtual time).
func NewSim(offset time.Duration, driftPPM int64) *Sim {
	if driftPPM > DriftPPMMax || driftPPM < -DriftPPMMax {
		panic("clock: drift out of range")
	}
	return &Sim{base: time.Now(), offset: offset, driftPPM: driftPPM}
}

func (s *Sim) skew(d time.Duration) time.Duration {
	return d + time.Duration(int64(d)/1_000_000*s.driftPPM)
}

// local converts a duration on this clock to virtual (bubble) time.
func (s *Sim) local(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return time.Duration(float64(d) * 1e6 / float64(1_000_000+s.driftPPM))
}

func (s *Sim) Now() time.Time {
	return s.base.Add(s.offset + s.skew(time.Since(s.base)))
}

func (s *Sim) Since(t time.Time) time.Duration { return s.Now().Sub(t) }

func (s *Sim) NewTimer(d time.Duration) Timer {
	return &simTimer{s: s, t: time.NewTimer(s.local(d))}
}

func (s *Sim) AfterFunc(d time.Duration, f func()) Timer {
	return &simTimer{s: s, t: time.AfterFunc(s.local(d), f)}
}

func (s *Sim) Sleep(ctx context.Context, d time.Duration) error {
	return sleep(ctx, time.NewTimer(s.local(d)))
}

type simTimer struct {
	s *Sim
	t *time.Timer
}

func (t *simTimer) C() <-chan time.Time        { return t.t.C }
func (t *simTimer) Stop() bool                 { return t.t.Stop() }
func (t *simTimer) Reset(d time.Duration) bool { return t.t.Reset(t.s.local(d)) }
