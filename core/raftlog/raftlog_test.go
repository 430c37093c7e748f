package raftlog

import (
	"bytes"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	dblogger "github.com/lni/dragonboat/v4/logger"

	"github.com/chronik-go/chronik/core/clock"
)

func TestInstallRoutesAndFilters(t *testing.T) {
	var buf bytes.Buffer
	Install(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn)
	l := dblogger.GetLogger("raftlog-test")
	l.Infof("hidden %d", 1)
	l.Warningf("shown %d", 2)
	out := buf.String()
	if strings.Contains(out, "hidden") || !strings.Contains(out, "shown 2") || !strings.Contains(out, "pkg=raftlog-test") {
		t.Fatalf("unexpected output: %q", out)
	}
	// A second Install swaps the destination and level.
	var buf2 bytes.Buffer
	Install(slog.New(slog.NewTextHandler(&buf2, nil)), slog.LevelInfo)
	l.Infof("now shown")
	if !strings.Contains(buf2.String(), "now shown") {
		t.Fatalf("second Install not in effect: %q", buf2.String())
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "boom 3") {
			t.Fatalf("Panicf did not panic with its message: %v", r)
		}
	}()
	l.Panicf("boom %d", 3)
}

// TestPanicHook: the hook sees Panicf's message first; a hook that does
// not return keeps Panicf from panicking.
func TestPanicHook(t *testing.T) {
	var got string
	SetPanicHook(func(pkg, msg string) { got = pkg + ": " + msg; runtime.Goexit() })
	defer SetPanicHook(nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkgLogger{pkg: "p"}.Panicf("boom %d", 4)
	}()
	<-done
	if got != "p: boom 4" {
		t.Fatalf("hook saw %q", got)
	}
}

// TestLocalTickBatchesCountedAndRateLimited: dragonboat's tick-batch
// warning is counted per node and logged at most once per node per
// TickLogEvery, the next line carrying what was suppressed.
func TestLocalTickBatchesCountedAndRateLimited(t *testing.T) {
	synctest.Test(t, testLocalTickBatches)
}

func testLocalTickBatches(t *testing.T) {
	var buf bytes.Buffer
	Install(slog.New(slog.NewTextHandler(&buf, nil)), slog.LevelWarn)
	SetClock(clock.Real()) // the bubble's virtual time
	defer SetClock(nil)
	l := dblogger.GetLogger("dragonboat")
	b0, t0 := TickBatches(77)
	for i := range 5 {
		l.Warningf(localTickFormat, fmt.Sprintf("[%05d:%05d]", 1000+i, 77), uint64(11+i))
	}
	l.Warningf(localTickFormat, "[01000:00078]", uint64(12)) // another node
	if b, n := TickBatches(77); b-b0 != 5 || n-t0 != 11+12+13+14+15 {
		t.Fatalf("node 77: %d batches, %d ticks counted", b-b0, n-t0)
	}
	if got := strings.Count(buf.String(), "ticks batched"); got != 2 {
		t.Fatalf("%d lines within TickLogEvery for two nodes, want 2:\n%s", got, buf.String())
	}
	time.Sleep(TickLogEvery)
	l.Warningf(localTickFormat, "[01000:00077]", uint64(20))
	out := buf.String()
	if got := strings.Count(out, "ticks batched"); got != 3 || !strings.Contains(out, "suppressed_batches=4 suppressed_max_ticks=15") {
		t.Fatalf("after TickLogEvery: want a third line with 4 suppressed (max 15):\n%s", out)
	}
	if strings.Contains(out, "LocalTick msgs") {
		t.Fatalf("dragonboat's own line got through:\n%s", out)
	}
}
