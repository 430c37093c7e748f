//go:build !linux

package main

import "syscall"

func childProcAttr() *syscall.SysProcAttr { return nil }

func limitFileSize(string) { panic("RLIMIT_FSIZE is set only on Linux") }
