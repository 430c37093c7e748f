// Package clock is Chronik's time seam. Everything in core reads time through
// a Clock; nothing in core calls time.Now, time.Sleep or time.NewTimer
// directly.
//
// Two implementations: Real (the operating system's clock; the one place in
// core allowed to read it) and Sim, which adds a per-node offset and drift to
// the time of a testing/synctest bubble, so that nodes in one simulation can
// disagree about the time while every timer still fires in virtual time.
//
// Concurrency: every Clock and Timer method is safe for concurrent use.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes timers.
type Clock interface {
	// Now is the node's current wall-clock time (used for timestamps,
	// retention, segment age). It may jump; use Since for intervals.
	Now() time.Time
	// Since is the time elapsed since t, measured on this clock.
	Since(t time.Time) time.Duration
	// NewTimer fires once on its channel after d.
	NewTimer(d time.Duration) Timer
	// AfterFunc calls f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
	// Sleep waits for d or until ctx is done, returning ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

// Timer is a stoppable timer, as time.Timer.
type Timer interface {
	// C is the channel the timer fires on (nil for AfterFunc timers).
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped it.
	Stop() bool
	// Reset changes the timer to fire after d; it reports whether the timer
	// had been active.
	Reset(d time.Duration) bool
}

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

type osClock struct{}

// Real returns the operating system's clock.
func Real() Clock { return osClock{} }

func (osClock) Now() time.Time                            { return time.Now() }
func (osClock) Since(t time.Time) time.Duration           { return time.Since(t) }
func (osClock) NewTimer(d time.Duration) Timer            { return realTimer{time.NewTimer(d)} }
func (osClock) AfterFunc(d time.Duration, f func()) Timer { return realTimer{time.AfterFunc(d, f)} }
func (osClock) Sleep(ctx context.Context, d time.Duration) error {
	return sleep(ctx, time.NewTimer(d))
}

func sleep(ctx context.Context, t *time.Timer) error {
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
