//go:build !linux && !darwin

package main

import "errors"

// diskSpace is unknown on this platform: DescribeLogDirs v4 reports -1.
func diskSpace(string) (totalBytes, usableBytes int64, err error) {
	return -1, -1, errors.New("disk space: not supported on this platform")
}
