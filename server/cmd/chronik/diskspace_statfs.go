//go:build linux || darwin

package main

import "syscall"

// diskSpace reports the total bytes of the filesystem holding dir and the
// bytes an unprivileged process may still use there (statfs f_bavail, as
// Kafka's usable space): node.Config.DiskSpace, DescribeLogDirs v4.
func diskSpace(dir string) (totalBytes, usableBytes int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1, err
	}
	bs := int64(st.Bsize)
	return int64(st.Blocks) * bs, int64(st.Bavail) * bs, nil
}
