package clock

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestSimSkewAndDrift(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := NewSim(5*time.Second, 10_000) // +5 s, 1% fast
		if got := c.Now().Sub(start); got != 5*time.Second {
			t.Fatalf("offset: got %v want 5s", got)
		}
		t0 := c.Now()
		time.Sleep(100 * time.Second) // virtual
		if got := c.Since(t0); got != 101*time.Second {
			t.Fatalf("drift: 100s virtual read as %v, want 101s", got)
		}
		// A 101 s timer on a 1% fast clock fires after 100 s of virtual time.
		v0 := time.Now()
		tm := c.NewTimer(101 * time.Second)
		<-tm.C()
		if got := time.Since(v0); got != 100*time.Second {
			t.Fatalf("timer: fired after %v of virtual time, want 100s", got)
		}
	})
}

func TestSleepHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, c := range []Clock{Real(), NewSim(0, -5000)} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := c.Sleep(ctx, time.Hour)
			cancel()
			if err != context.DeadlineExceeded {
				t.Fatalf("%T: Sleep returned %v, want DeadlineExceeded", c, err)
			}
		}
	})
}

func TestAfterFuncAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewSim(0, 0)
		fired := make(chan time.Time, 1)
		v0 := time.Now()
		tm := c.AfterFunc(time.Minute, func() { fired <- time.Now() })
		if !tm.Reset(2 * time.Minute) {
			t.Fatal("Reset of an active timer reported inactive")
		}
		if got := (<-fired).Sub(v0); got != 2*time.Minute {
			t.Fatalf("AfterFunc fired after %v, want 2m", got)
		}
		if tm.Stop() {
			t.Fatal("Stop after firing reported it stopped the timer")
		}
	})
}
