package plog

import (
	"context"
	"fmt"
	"hash/crc32"
	"path"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-go/chronik/diskio"
)

// syncCountingFS counts File.Sync calls on files it opened.
type syncCountingFS struct {
	diskio.FS
	syncs atomic.Int64
}

type syncCountingFile struct {
	diskio.File
	n *atomic.Int64
}

func (f syncCountingFile) Sync() error { f.n.Add(1); return f.File.Sync() }

func (c *syncCountingFS) wrap(f diskio.File, err error) (diskio.File, error) {
	if err != nil {
		return nil, err
	}
	return syncCountingFile{f, &c.syncs}, nil
}
func (c *syncCountingFS) Create(n string) (diskio.File, error) { return c.wrap(c.FS.Create(n)) }
func (c *syncCountingFS) OpenRW(n string) (diskio.File, error) { return c.wrap(c.FS.OpenRW(n)) }

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10} {
		for _, appenders := range []int{1, 64} {
			b.Run(fmt.Sprintf("batch=%dKiB/appenders=%d", size>>10, appenders), func(b *testing.B) {
				benchAppend(b, size, appenders)
			})
		}
	}
}

func benchAppend(b *testing.B, size, appenders int) {
	fs := &syncCountingFS{FS: diskio.NewOS()}
	l, err := Open(Options{FS: fs, Dir: b.TempDir(), SegmentBytesMax: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	batch := mkBatch(1, size-batchHeaderBytes-8, time.Now().UnixMilli())
	b.SetBytes(int64(len(batch)))
	var next atomic.Int64
	var wg sync.WaitGroup
	syncs0 := fs.syncs.Load()
	b.ResetTimer()
	start := time.Now()
	for range appenders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := l.AppendDurable(context.Background(), batch, 0, 0); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(fs.syncs.Load()-syncs0)/secs, "fsyncs/s")
}

// BenchmarkRawCeiling: sequential 1 MiB writes, each followed by fsync,
// through diskio.OS: the device's group-commit ceiling.
func BenchmarkRawCeiling(b *testing.B) {
	fs := diskio.NewOS()
	f, err := fs.Create(path.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.WriteAt(chunk, int64(i)*int64(len(chunk))); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}

// BenchmarkReadSealed reads 64 MiB of sealed segments sequentially in 1 MiB
// fetches (CRC-32C verified per batch); BenchmarkCRC32C is the verification
// cost alone for comparison.
func BenchmarkReadSealed(b *testing.B) {
	dir := b.TempDir()
	o := Options{FS: diskio.NewOS(), Dir: dir, SegmentBytesMax: 16 << 20}
	l, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	batch := mkBatch(16, 1000, time.Now().UnixMilli())
	var total int64
	for total < 64<<20 {
		r, err := l.Append(batch, 0, 0)
		if err != nil {
			b.Fatal(err)
		}
		_ = r
		total += int64(len(batch))
	}
	l.Close()
	if l, err = Open(o); err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	// Sealed segments only: stop before the active one.
	end := l.segs[len(l.segs)-1].base
	var sealedBytes int64
	for _, s := range l.segs[:len(l.segs)-1] {
		sealedBytes += s.size
	}
	b.SetBytes(sealedBytes)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for off := l.StartOffset(); off < end; {
			got, err := l.Read(off, 1<<20, end)
			if err != nil || len(got) == 0 {
				b.Fatalf("read %d: %d bytes, %v", off, len(got), err)
			}
			last := splitBatches(got)
			bi, _ := parseBatchHeader(last[len(last)-1])
			off = bi.lastOffset() + 1
		}
	}
}

func BenchmarkCRC32C(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		crc32.Checksum(buf, castagnoli)
	}
}
