package plog

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"testing"

	"github.com/chronik-go/chronik/diskio"
)

// TestGroupCommitSharesFsync: many concurrent appenders, far fewer fsyncs.
func TestGroupCommitSharesFsync(t *testing.T) {
	fs := diskio.NewSim(11)
	o := testOpts(fs)
	o.SegmentBytesMax = 1 << 20
	l := mustOpen(t, o)
	defer l.Close()
	before := fs.Stats().Syncs
	var wg sync.WaitGroup
	const writers, each = 16, 50
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := l.AppendDurable(context.Background(), mkBatch(2, 100, int64(w)), 0, 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if l.NextOffset() != 2*writers*each || l.DurableNextOffset() != l.NextOffset() {
		t.Fatalf("next %d durable %d", l.NextOffset(), l.DurableNextOffset())
	}
	syncs := fs.Stats().Syncs - before
	if syncs > writers*each {
		t.Fatalf("%d fsyncs for %d appends", syncs, writers*each)
	}
	t.Logf("%d appends, %d fsyncs", writers*each, syncs)
}

// TestFsyncFailureFailsLog: a failed fsync fails every waiter it covered and
// every later call; reopening recovers.
func TestFsyncFailureFailsLog(t *testing.T) {
	fs := diskio.NewSim(12)
	o := testOpts(fs)
	l := mustOpen(t, o)
	for range 5 {
		mustAppend(t, l, mkBatch(1, 100, 0), 1, 0)
	}
	var tickets []Ticket
	for range 10 {
		r, err := l.Append(mkBatch(1, 100, 0), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		tickets = append(tickets, r.Ticket)
	}
	fs.SetFaults(diskio.Faults{Rules: []diskio.FaultRule{{Op: diskio.OpSync, PathPattern: "log/*.log", Probability: 1}}})
	var wg sync.WaitGroup
	for _, tk := range tickets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.WaitDurable(context.Background(), tk); !errors.Is(err, ErrLogFailed) || !errors.Is(err, diskio.ErrInjected) {
				t.Errorf("waiter %d: %v", tk, err)
			}
		}()
	}
	wg.Wait()
	fs.SetFaults(diskio.Faults{}) // even with a healthy disk, the log stays failed
	if _, err := l.Append(mkBatch(1, 100, 0), 3, 0); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append after failed fsync: %v", err)
	}
	if err := l.Sync(context.Background()); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("sync after failed fsync: %v", err)
	}
	if l.DurableNextOffset() != 5 {
		t.Fatalf("durable next %d", l.DurableNextOffset())
	}
	l.Close()
	l = mustOpen(t, o)
	defer l.Close()
	if n := len(readAll(t, l)); n < 5 {
		t.Fatalf("lost durable batches: %d", n)
	}
	mustAppend(t, l, mkBatch(1, 100, 0), 4, 0)
}

// TestNoSpace: ENOSPC fails the append, nothing of it is acknowledged or
// readable, and the log carries on once space is back.
func TestNoSpace(t *testing.T) {
	fs := diskio.NewSim(13)
	o := testOpts(fs)
	l := mustOpen(t, o)
	defer l.Close()
	mustAppend(t, l, mkBatch(1, 100, 0), 1, 0)
	used := int64(0)
	for _, n := range []string{"log/" + segmentName(0) + segmentSuffix, "log/" + checkpointName, "log/" + segmentName(0) + indexSuffix, "log/" + segmentName(0) + timeIndexSuffix} {
		b, _ := fs.ReadFile(n)
		used += int64(len(b))
	}
	fs.SetFaults(diskio.Faults{CapacityBytes: used + 500})
	_, err := l.Append(mkBatch(4, 200, 0), 2, 0)
	if !errors.Is(err, diskio.ErrNoSpace) || errors.Is(err, ErrLogFailed) {
		t.Fatalf("append on full disk: %v", err)
	}
	if l.NextOffset() != 1 {
		t.Fatalf("next %d after failed append", l.NextOffset())
	}
	mustAppend(t, l, mkBatch(1, 10, 0), 2, 0) // fits
	fs.SetFaults(diskio.Faults{})
	mustAppend(t, l, mkBatch(4, 200, 0), 3, 0)
	if n := len(readAll(t, l)); n != 3 {
		t.Fatalf("%d batches", n)
	}
}

// flipByte flips one byte of a file through the FS (as a bad disk would).
func flipByte(t *testing.T, fs diskio.FS, name string, off int64) {
	t.Helper()
	f, err := fs.OpenRW(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x10
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestBitFlipSealedSegment: a flipped byte in a sealed segment is reported as
// ErrCorruptLog on read, never served, before and after reopen.
func TestBitFlipSealedSegment(t *testing.T) {
	fs := diskio.NewSim(14)
	o := testOpts(fs)
	o.SegmentBytesMax = 4096
	l := mustOpen(t, o)
	for i := range 20 {
		mustAppend(t, l, mkBatch(1, 500, 0), uint64(i+1), 0)
	}
	seg0 := "log/" + segmentName(0) + segmentSuffix
	flipByte(t, fs, seg0, FrameHeaderBytes+100) // inside batch 0's records
	for _, l := range []*Log{l, nil} {
		if l == nil {
			l = mustOpen(t, o)
		}
		if _, err := l.Read(0, 1<<20, 100); !errors.Is(err, ErrCorruptLog) {
			t.Fatalf("read of flipped batch: %v", err)
		}
		if b, err := l.Read(1, 1<<20, 100); err != nil || len(b) == 0 {
			t.Fatalf("read past the flipped batch: %d bytes, %v", len(b), err)
		}
		l.Close()
	}
	// A flip in a frame header of a sealed segment that has no index entry
	// check: detected on read too.
	// The cheap index check reads the first frame of each sealed segment, so
	// this one is caught by Open.
	flipByte(t, fs, seg0, FrameHeaderBytes+offLeaderEpoch)
	if _, err := Open(o); !errors.Is(err, ErrCorruptLog) {
		t.Fatalf("open with flipped header: %v", err)
	}
}

// TestMidLogCorruptionStopsOpen: a bad batch in the unverified tail followed
// by valid batches of later writes is corruption, not a torn tail.
func TestMidLogCorruptionStopsOpen(t *testing.T) {
	fs := diskio.NewSim(15)
	o := testOpts(fs)
	l := mustOpen(t, o)
	for i := range 10 {
		mustAppend(t, l, mkBatch(1, 200, 0), uint64(i+1), 0)
	}
	// Crash without Close: the checkpoint's verified position is 0.
	img := fs.CrashImage(diskio.CrashSyncedOnly)
	l.Close()
	flipByte(t, img, "log/"+segmentName(0)+segmentSuffix, 3*int64(FrameHeaderBytes+len(mkBatch(1, 200, 0)))+100)
	_, err := Open(testOpts(img))
	if !errors.Is(err, ErrCorruptLog) {
		t.Fatalf("Open: %v, want ErrCorruptLog", err)
	}
	t.Log(err)
}

// TestReadBitFlipsNeverServed: with random bit flips on the read path, Read
// returns correct data or ErrCorruptLog, nothing else.
func TestReadBitFlipsNeverServed(t *testing.T) {
	fs := diskio.NewSim(16)
	o := testOpts(fs)
	l := mustOpen(t, o)
	defer l.Close()
	var want []byte
	for i := range 50 {
		b := mkBatch(2, 300, 0)
		mustAppend(t, l, b, uint64(i), 0)
		want = append(want, stamp(b, int64(2*i), 0)...)
	}
	fs.SetFaults(diskio.Faults{ReadBitFlipProbability: 0.3})
	detected := 0
	for range 200 {
		got, err := l.Read(0, 1<<20, 100)
		if errors.Is(err, ErrCorruptLog) {
			detected++
			continue
		}
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("served bad data: err %v, %d bytes", err, len(got))
		}
	}
	if detected == 0 {
		t.Fatal("no flip detected")
	}
}

// TestFormatGolden freezes the on-disk constants and the encoding of a frame,
// an index, a time index and a checkpoint.
func TestFormatGolden(t *testing.T) {
	if FrameHeaderBytes != 24 || FrameMagic != 0x43484b31 || IndexEntryBytes != 8 || TimeIndexEntryBytes != 12 ||
		CheckpointMagic != 0x43484b43 || CheckpointVersion != 1 || checkpointFixedBytes != 80 || segmentName(42) != "00000000000000000042" {
		t.Fatal("on-disk constants changed: bump the format version instead")
	}
	batch := stamp(mkBatch(1, 3, 1000), 7, 2)
	fr := make([]byte, FrameHeaderBytes)
	putFrameHeader(fr, frameHeader{batchLen: uint32(len(batch)), raftIndex: 9, writeOffset: 0}, batch)
	golden := map[string]struct {
		got  []byte
		want string
	}{
		"frame":     {fr, "43484b310000004700000000000000090000000008c2c918"},
		"index":     {encodeIndex([]indexEntry{{1, 2}, {3, 4096}}), "00000001000000020000000300001000"},
		"timeindex": {encodeTimeIndex([]timeEntry{{1000, 5}}), "00000000000003e800000005"},
		"checkpoint": {encodeCheckpoint(checkpoint{logStart: 1, activeBase: 2, verifiedPos: 3, nextOffset: 4, raftIndex: 5, maxTs: -1, maxTsOffset: -1, indexEntries: 6, timeEntries: 7, epochs: []epochEntry{{1, 2}}}),
			"43484b430001000000000000000000010000000000000002000000000000000300000000000000040000000000000005ffffffffffffffffffffffffffffffff0000000600000007000000010000000000000001000000000000000216cddd06"},
	}
	for name, g := range golden {
		if h := hex.EncodeToString(g.got); h != g.want {
			t.Errorf("%s encoding changed:\n got %s\nwant %s", name, h, g.want)
		}
	}
	c, err := decodeCheckpoint(golden["checkpoint"].got)
	if err != nil || c.raftIndex != 5 || len(c.epochs) != 1 {
		t.Fatalf("checkpoint round trip: %+v %v", c, err)
	}
}

// TestIndexRebuildAndTailOnlyRecovery: a missing sealed index is rebuilt on
// Open; the active segment's checkpointed prefix is not re-verified (recovery
// cost is the unverified tail), so a flip there is caught by Read instead.
func TestIndexRebuildAndTailOnlyRecovery(t *testing.T) {
	fs := diskio.NewSim(17)
	o := testOpts(fs)
	o.SegmentBytesMax = 4096
	l := mustOpen(t, o)
	for i := range 12 {
		mustAppend(t, l, mkBatch(1, 700, 0), uint64(i+1), 0)
	}
	act := l.active().path
	l.Close()
	if err := fs.Remove("log/" + segmentName(0) + indexSuffix); err != nil {
		t.Fatal(err)
	}
	flipByte(t, fs, act, FrameHeaderBytes+200)
	l = mustOpen(t, o)
	defer l.Close()
	if _, err := fs.Stat("log/" + segmentName(0) + indexSuffix); err != nil {
		t.Fatalf("index not rebuilt: %v", err)
	}
	if got, err := l.Read(0, 1<<20, l.active().base); err != nil || len(splitBatches(got)) == 0 {
		t.Fatalf("read sealed: %v", err)
	}
	if _, err := l.Read(l.active().base, 1<<20, 100); !errors.Is(err, ErrCorruptLog) {
		t.Fatalf("flip in checkpointed active prefix: %v", err)
	}
}
