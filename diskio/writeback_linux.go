package diskio

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback is sync_file_range(SYNC_FILE_RANGE_WRITE): it starts
// write-out of the range's dirty pages not already under write-out and
// returns (it may wait for the device's request queue, never for the
// write-out). Its error is ignored: a hint.
func startWriteback(f *os.File, off, n int64) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
	})
}
