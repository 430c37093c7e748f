//go:build unix

package netio

import (
	"io/fs"
	"syscall"
)

// inode returns fi's inode number (0 if unknown): a file replaced by a
// rename has a new one even when its size and time look the same.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
