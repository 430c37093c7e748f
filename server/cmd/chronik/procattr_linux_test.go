package main

import (
	"strconv"
	"syscall"
)

// childProcAttr kills a chronik child when the test binary dies (for
// example on a test timeout), so no broker outlives its test.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// limitFileSize sets RLIMIT_FSIZE (bytes) for this process: a write that
// would grow any file past it fails with EFBIG, the closest thing to a full
// disk an unprivileged test can give a real process (Go ignores SIGXFSZ).
func limitFileSize(v string) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		panic(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		panic(err)
	}
}
