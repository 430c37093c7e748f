package main

import "syscall"

// childProcAttr kills a chronik child when the test binary dies (for
// example on a test timeout), so no broker outlives its test.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
