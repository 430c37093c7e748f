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

// datasync is fdatasync(2): the file's data and the metadata needed to
// read it back (its size, its blocks) are durable when it returns nil; its
// timestamps need not be. fsync(2) also journals the modification time
// every write changes, so on ext4 each fsync of a file written in place
// (a reused WAL segment, whose size and blocks do not change) committed
// the journal, and with it whatever other files' writes ordered mode
// ties to that commit. Databases' logs (PostgreSQL's wal_sync_method,
// etcd's WAL) use fdatasync on Linux for the same reason.
func datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = unix.Fdatasync(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return serr
}
