//go:build !linux

package diskio

import "os"

// startWriteback is a no-op where sync_file_range does not exist.
func startWriteback(*os.File, int64, int64) {}

// datasync is fsync where fdatasync is not used.
func datasync(f *os.File) error { return f.Sync() }
