package raftlog

import (
	"bytes"
	"log/slog"
	"runtime"
	"strings"
	"testing"

	dblogger "github.com/lni/dragonboat/v4/logger"
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
