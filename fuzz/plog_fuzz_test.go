// Package fuzz holds Chronik's cross-package fuzz targets.
package fuzz

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// v2Batch hand-encodes a valid one-record v2 batch.
func v2Batch(value []byte) []byte {
	var rec []byte
	rec = append(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, 0)
	rec = binary.AppendVarint(rec, -1)
	rec = binary.AppendVarint(rec, int64(len(value)))
	rec = append(rec, value...)
	rec = binary.AppendVarint(rec, 0)
	b := make([]byte, 61)
	b[16] = 2
	binary.BigEndian.PutUint32(b[57:], 1) // recordCount; lastOffsetDelta 0
	b = binary.AppendVarint(b, int64(len(rec)))
	b = append(b, rec...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func batchCRCOK(b []byte) bool {
	return len(b) >= 61 && binary.BigEndian.Uint32(b[17:]) == crc32.Checksum(b[21:], castagnoli)
}

// validLogFiles builds a real log on a Sim and returns its segment, index
// and checkpoint bytes, to seed FuzzRecover.
func validLogFiles(tb testing.TB) (seg, idx, ckpt []byte) {
	fs := diskio.NewSim(1)
	l, err := plog.Open(plog.Options{FS: fs, Dir: "d", IndexIntervalBytes: 64})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range 8 {
		if _, err := l.AppendDurable(context.Background(), v2Batch(bytes.Repeat([]byte{byte(i)}, 20*i)), uint64(i), 0); err != nil {
			tb.Fatal(err)
		}
	}
	l.Close()
	seg, _ = fs.ReadFile("d/00000000000000000000.log")
	idx, _ = fs.ReadFile("d/00000000000000000000.index")
	ckpt, _ = fs.ReadFile("d/plog.checkpoint")
	return seg, idx, ckpt
}

// FuzzRecover writes arbitrary bytes as a segment (and optionally index and
// checkpoint files), opens the log and reads everything: it must never panic,
// and every batch it returns must carry a valid CRC-32C.
func FuzzRecover(f *testing.F) {
	seg, idx, ckpt := validLogFiles(f)
	f.Add(seg, []byte(nil), []byte(nil))
	f.Add(seg, idx, ckpt)
	f.Add(seg[:len(seg)-7], idx, ckpt)
	f.Add(append(bytes.Clone(seg), 0x43, 0x48, 0x4b, 0x31, 9, 9), []byte{1, 2, 3}, []byte(nil))
	f.Add([]byte{}, []byte{}, ckpt)
	f.Fuzz(func(t *testing.T, seg, idx, ckpt []byte) {
		fs := diskio.NewSim(2)
		write := func(name string, b []byte) {
			if b == nil {
				return
			}
			fs.MkdirAll("d")
			w, err := fs.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			w.WriteAt(b, 0)
			w.Sync()
			w.Close()
		}
		write("d/00000000000000000000.log", seg)
		write("d/00000000000000000000.index", idx)
		write("d/plog.checkpoint", ckpt)
		l, err := plog.Open(plog.Options{FS: fs, Dir: "d"})
		if err != nil {
			if !errors.Is(err, plog.ErrCorruptLog) {
				t.Fatalf("Open failed with a non-corruption error: %v", err)
			}
			return
		}
		defer l.Close()
		for off := l.StartOffset(); off < l.NextOffset(); {
			b, err := l.Read(off, 1<<16, l.NextOffset())
			if err != nil {
				if errors.Is(err, plog.ErrCorruptLog) {
					return
				}
				t.Fatalf("Read(%d): %v", off, err)
			}
			if len(b) == 0 {
				t.Fatalf("empty read at %d before end %d", off, l.NextOffset())
			}
			for len(b) > 0 {
				n := int(binary.BigEndian.Uint32(b[8:])) + 12
				if !batchCRCOK(b[:n]) {
					t.Fatalf("served a batch with a bad CRC at %d", off)
				}
				off = int64(binary.BigEndian.Uint64(b[0:])) + int64(binary.BigEndian.Uint32(b[23:])) + 1
				b = b[n:]
			}
		}
		if _, err := l.AppendDurable(context.Background(), v2Batch([]byte("x")), l.LastDurableRaftIndex(), 1<<30); err != nil {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}

// FuzzValidateBatch: ValidateBatches never panics, and whatever it accepts is
// a sequence of well-formed batches with valid CRCs and consistent counts.
func FuzzValidateBatch(f *testing.F) {
	b := v2Batch([]byte("hello"))
	f.Add(b, 1<<20)
	f.Add(append(bytes.Clone(b), b...), 1<<20)
	f.Add(b[:30], 100)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, buf []byte, maxBytes int) {
		n, err := plog.ValidateBatches(buf, maxBytes)
		if err != nil {
			if !errors.Is(err, plog.ErrCorruptBatch) && !errors.Is(err, plog.ErrInvalidRecord) && !errors.Is(err, plog.ErrBatchTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		for i := 0; i < n; i++ {
			size := int(binary.BigEndian.Uint32(buf[8:])) + 12
			if size > maxBytes || buf[16] != 2 || !batchCRCOK(buf[:size]) {
				t.Fatalf("accepted a bad batch %d", i)
			}
			if cnt, delta := int32(binary.BigEndian.Uint32(buf[57:])), int32(binary.BigEndian.Uint32(buf[23:])); cnt <= 0 || cnt != delta+1 {
				t.Fatalf("accepted count %d delta %d", cnt, delta)
			}
			buf = buf[size:]
		}
		if len(buf) != 0 {
			t.Fatalf("%d bytes left after %d batches", len(buf), n)
		}
	})
}
