// Package raftlog routes dragonboat's logging into log/slog.
//
// dragonboat keeps its logger factory in package-level state that can be set
// once per process, so Install is idempotent: the first call wins and later
// calls only change the level and the destination, which are swapped
// atomically. This is the one place where Chronik touches a global logger,
// and only because dragonboat offers no per-NodeHost logger.
package raftlog

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	dblogger "github.com/lni/dragonboat/v4/logger"
)

var (
	once      sync.Once
	target    atomic.Pointer[sink]
	panicHook atomic.Pointer[func(pkg, msg string)]
)

// SetPanicHook (tests only) installs f, called by dragonboat's Panicf
// after logging and before panicking; nil removes it. If f does not return
// (runtime.Goexit), neither does Panicf: the simulator uses this to turn a
// storage fail-stop of one simulated node into a crash of that node rather
// than of the whole test process.
func SetPanicHook(f func(pkg, msg string)) {
	if f == nil {
		panicHook.Store(nil)
		return
	}
	panicHook.Store(&f)
}

type sink struct {
	logger *slog.Logger
	level  slog.Level
}

// Install sends dragonboat's log lines at or above level to l (tagged with
// component=dragonboat and pkg=<dragonboat package>). Safe to call many
// times and concurrently; the newest call's logger and level are used.
func Install(l *slog.Logger, level slog.Level) {
	target.Store(&sink{logger: l, level: level})
	resetTickLog()
	once.Do(func() {
		dblogger.SetLoggerFactory(func(pkg string) dblogger.ILogger { return pkgLogger{pkg: pkg} })
	})
}

type pkgLogger struct{ pkg string }

// SetLevel is ignored: Install's level governs every package, so that one
// package cannot turn itself up behind the operator's back.
func (pkgLogger) SetLevel(dblogger.LogLevel) {}

func (p pkgLogger) log(level slog.Level, format string, args []interface{}) {
	s := target.Load()
	if s == nil || level < s.level {
		return
	}
	s.logger.Log(context.Background(), level, fmt.Sprintf(format, args...),
		"component", "dragonboat", "pkg", p.pkg)
}

func (p pkgLogger) Debugf(f string, a ...interface{}) { p.log(slog.LevelDebug, f, a) }
func (p pkgLogger) Infof(f string, a ...interface{})  { p.log(slog.LevelInfo, f, a) }
func (p pkgLogger) Warningf(f string, a ...interface{}) {
	if f == localTickFormat && len(a) == 2 {
		p.localTicks(a)
		return
	}
	p.log(p.warnLevel(), f, a)
}

// warnLevel: dragonboat's raft package reports routine elections and
// dropped proposals at warning level, and config warns that TLS is off on
// every start; to an operator those are information, not warnings.
func (p pkgLogger) warnLevel() slog.Level {
	if p.pkg == "raft" || p.pkg == "config" {
		return slog.LevelInfo
	}
	return slog.LevelWarn
}
func (p pkgLogger) Errorf(f string, a ...interface{}) { p.log(slog.LevelError, f, a) }

// Panicf logs and panics, as dragonboat expects: it calls Panicf only on
// broken invariants of its own.
func (p pkgLogger) Panicf(f string, a ...interface{}) {
	msg := fmt.Sprintf(f, a...)
	p.log(slog.LevelError, "%s", []interface{}{msg})
	if f := panicHook.Load(); f != nil {
		(*f)(p.pkg, msg)
	}
	panic(fmt.Sprintf("dragonboat/%s: %s", p.pkg, msg))
}
