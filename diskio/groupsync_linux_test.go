package diskio

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkGroupSync measures, on the real disk, what it costs to make a
// round of writes durable when the round is spread over several files (a
// layout with one log per partition, each the partition's Raft log and
// its Kafka log) against the same bytes in one file (one log per node):
//
//   - one-file: every byte to one file, one fdatasync;
//   - fdatasync-serial: each file its share, fdatasync file by file;
//   - fdatasync-parallel: the same with one goroutine per file;
//   - syncfs: the writes, then one syncfs(2) of the file system
//     (everything dirty on it, one journal commit and one cache flush).
//
// Files are written in place (over blocks written before, as a reused
// segment) or appended (new blocks). Reports p50 and p99 per round.
// Not part of `make test`: go test ./diskio -run '^$' -bench GroupSync.
func BenchmarkGroupSync(b *testing.B) {
	for _, mode := range []string{"inplace", "append"} {
		for _, files := range []int{8, 64} {
			for _, round := range []int{64 << 10, 1 << 20} {
				for _, method := range []string{"one-file", "fdatasync-serial", "fdatasync-parallel", "syncfs"} {
					if method == "one-file" && files != 8 {
						continue // the same for every file count
					}
					b.Run(fmt.Sprintf("%s/files=%d/round=%dKiB/%s", mode, files, round>>10, method), func(b *testing.B) {
						benchGroupSync(b, mode == "inplace", files, round, method)
					})
				}
			}
		}
	}
}

func benchGroupSync(b *testing.B, inplace bool, nfiles, round int, method string) {
	dir := b.TempDir()
	n := nfiles
	if method == "one-file" {
		n = 1
	}
	const fileBytes = 4 << 20 // written over and over (in place) or cut back to 0 (append)
	share := round / n
	buf := make([]byte, share)
	for i := range buf {
		buf[i] = byte(i)
	}
	files := make([]*os.File, n)
	for i := range files {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if inplace {
			for off := 0; off < fileBytes; off += len(buf) {
				if _, err := f.WriteAt(buf, int64(off)); err != nil {
					b.Fatal(err)
				}
			}
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				b.Fatal(err)
			}
		}
		files[i] = f
	}
	dirf, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer dirf.Close()
	if err := unix.Syncfs(int(dirf.Fd())); err != nil {
		b.Fatal(err)
	}
	sync1 := func(f *os.File) {
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Error(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	off := int64(0)
	b.SetBytes(int64(round))
	b.ResetTimer()
	for range b.N {
		if off+int64(share) > fileBytes {
			off = 0
			if !inplace {
				b.StopTimer()
				for _, f := range files {
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
		}
		start := time.Now()
		for _, f := range files {
			if _, err := f.WriteAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
		off += int64(share)
		switch method {
		case "one-file", "fdatasync-serial":
			for _, f := range files {
				sync1(f)
			}
		case "fdatasync-parallel":
			var wg sync.WaitGroup
			for _, f := range files {
				wg.Go(func() { sync1(f) })
			}
			wg.Wait()
		case "syncfs":
			if err := unix.Syncfs(int(dirf.Fd())); err != nil {
				b.Fatal(err)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}
