package partition

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/dragonboat/v4/config"
	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
)

// produceV1 is the version-1 layout, as written before version 2 existed.
func produceV1(epoch int32, batches []byte) []byte {
	b := []byte{CommandVersion, KindProduce, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[2:], uint32(epoch))
	return append(b, batches...)
}

func TestDecodeProduceV1AndV2(t *testing.T) {
	batch := tb{pid: -1, records: 2}.encode()
	c, err := DecodeCommand(produceV1(7, batch))
	if err != nil || c.Kind != KindProduce || c.Produce.LeaderEpoch != 7 || c.Produce.BatchBytesMax != 0 ||
		c.Produce.LogAppendTimeMs != -1 || !bytes.Equal(c.Produce.Batches, batch) {
		t.Fatalf("v1: %+v %v", c.Produce, err)
	}
	want := Produce{LeaderEpoch: 9, BatchBytesMax: 4096, LogAppendTimeMs: 1_700_000_123_456, Batches: batch}
	enc := EncodeProduce(want)
	if enc[0] != ProduceVersion2 || len(enc) != produce2HeaderBytes+len(batch) {
		t.Fatalf("EncodeProduce wrote version %d, %d bytes", enc[0], len(enc))
	}
	c, err = DecodeCommand(enc)
	if err != nil || c.Kind != KindProduce || c.Produce.LeaderEpoch != want.LeaderEpoch || c.Produce.BatchBytesMax != want.BatchBytesMax ||
		c.Produce.LogAppendTimeMs != want.LogAppendTimeMs || !bytes.Equal(c.Produce.Batches, batch) {
		t.Fatalf("v2: %+v %v", c.Produce, err)
	}
	if c, err := DecodeCommand(EncodeProduce(Produce{LogAppendTimeMs: -1})); err != nil || len(c.Produce.Batches) != 0 || c.Produce.LogAppendTimeMs != -1 {
		t.Fatalf("v2 without batches: %+v %v", c.Produce, err)
	}
	negLimit := EncodeProduce(Produce{BatchBytesMax: -1, LogAppendTimeMs: -1})
	badTime := EncodeProduce(Produce{LogAppendTimeMs: -2})
	delV2 := EncodeDeleteRecords(DeleteRecords{Offset: 3})
	delV2[0] = ProduceVersion2
	for name, b := range map[string][]byte{
		"v2 header cut":           enc[:produce2HeaderBytes-1],
		"v2 negative limit":       negLimit,
		"v2 time below -1":        badTime,
		"delete-records at v2":    delV2,
		"version 3":               append([]byte{3}, enc[1:]...),
		"v1 header cut":           produceV1(1, nil)[:produceHeaderBytes-1],
		"v2 kind unknown":         {ProduceVersion2, 9, 0, 0},
		"v2 with only the header": {ProduceVersion2},
	} {
		if _, err := DecodeCommand(b); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v, want ErrBadCommand", name, err)
		}
	}
}

// TestApplyEnforcesCommandLimit: apply checks exactly the command's
// BatchBytesMax, whatever this replica's template says; a version-1
// command falls back to the template.
func TestApplyEnforcesCommandLimit(t *testing.T) {
	opts := testOptions(diskio.NewSim(41))
	opts.Log.BatchBytesMax = 100 // smaller than any batch below
	h, _ := openHarness(t, opts)
	defer h.close()
	batch := tb{pid: -1, records: 5}.encode()
	size := int32(len(batch))
	produce := func(cmd []byte) ProduceResult { return decodeP(t, h.apply(cmd)) }
	mustCode(t, produce(EncodeProduce(Produce{BatchBytesMax: size - 1, LogAppendTimeMs: -1, Batches: batch})), kerr.MessageTooLarge.Code)
	mustOK(t, produce(EncodeProduce(Produce{BatchBytesMax: size, LogAppendTimeMs: -1, Batches: batch})), 0, 4)
	mustCode(t, produce(produceV1(0, batch)), kerr.MessageTooLarge.Code)
	// Above the template and plog's own default: the log was opened with
	// plog.BatchBytesLimit, so it does not second-guess the command.
	big := bigBatch(t, plog.DefaultBatchBytesMax+1000)
	mustOK(t, produce(EncodeProduce(Produce{BatchBytesMax: int32(len(big)), LogAppendTimeMs: -1, Batches: big})), 5, 5)
	if r := h.replica(); r.HighWatermark() != 6 {
		t.Fatalf("hw %d", r.HighWatermark())
	}
}

// bigBatch is one valid single-record batch of at least n bytes.
func bigBatch(t *testing.T, n int) []byte {
	t.Helper()
	b := tb{pid: -1, records: 1}.encode()
	// Grow the record's value: rebuild with a long value by hand.
	val := bytes.Repeat([]byte{'v'}, n)
	var r []byte
	r = append(r, 0)
	r = binary.AppendVarint(r, 0)
	r = binary.AppendVarint(r, 0)
	r = binary.AppendVarint(r, -1)
	r = binary.AppendVarint(r, int64(len(val)))
	r = append(r, val...)
	r = binary.AppendVarint(r, 0)
	out := append([]byte(nil), b[:batchHeaderBytes]...)
	out = binary.AppendVarint(out, int64(len(r)))
	out = append(out, r...)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[offBatchCRC:], crc32.Checksum(out[offAttributes:], castagnoli))
	if _, err := plog.ValidateBatches(out, plog.BatchBytesLimit); err != nil {
		t.Fatalf("bigBatch: %v", err)
	}
	return out
}

func TestStampLogAppendTime(t *testing.T) {
	const ts = 1_700_000_999_000
	var batches []byte
	var base int64
	for i := range 3 {
		b := tb{pid: -1, records: 2 + i, seed: byte(i)}.encode()
		binary.BigEndian.PutUint64(b, uint64(base)) // as the log stamps them (outside the CRC)
		base += int64(2 + i)
		batches = append(batches, b...)
	}
	orig := bytes.Clone(batches)
	if err := StampLogAppendTime(batches, ts); err != nil {
		t.Fatal(err)
	}
	if _, err := plog.ValidateBatches(batches, plog.BatchBytesLimit); err != nil {
		t.Fatalf("stamped batches fail plog validation: %v", err)
	}
	var recs int
	for b, o := batches, orig; len(b) > 0; {
		var kb kmsg.RecordBatch
		if err := kb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		n := int(kb.Length) + 12
		if uint32(kb.CRC) != crc32.Checksum(b[offAttributes:n], castagnoli) {
			t.Fatal("kmsg: CRC mismatch")
		}
		if kb.Attributes&attrLogAppendTime == 0 || kb.MaxTimestamp != ts {
			t.Fatalf("attributes %#x, max timestamp %d", kb.Attributes, kb.MaxTimestamp)
		}
		// Only the attribute bit, MaxTimestamp and the CRC changed.
		if !bytes.Equal(b[:offBatchCRC], o[:offBatchCRC]) || !bytes.Equal(b[offMaxTimestamp+8:n], o[offMaxTimestamp+8:n]) ||
			!bytes.Equal(b[23:offMaxTimestamp], o[23:offMaxTimestamp]) {
			t.Fatal("bytes outside attributes, MaxTimestamp and CRC changed")
		}
		recs += int(kb.NumRecords)
		b, o = b[n:], o[n:]
	}
	// A consumer (franz-go) sees the append time as every record's timestamp.
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "t"},
		&kmsg.FetchResponseTopicPartition{HighWatermark: 100, RecordBatches: batches}, nil, nil)
	if fp.Err != nil || len(fp.Records) != recs {
		t.Fatalf("kgo: %d records (want %d), %v", len(fp.Records), recs, fp.Err)
	}
	for _, r := range fp.Records {
		if r.Timestamp.UnixMilli() != ts || r.Attrs.TimestampType() != 1 {
			t.Fatalf("kgo record timestamp %v type %d", r.Timestamp.UnixMilli(), r.Attrs.TimestampType())
		}
	}
	// Stamping again with the same time changes nothing.
	again := bytes.Clone(batches)
	if err := StampLogAppendTime(again, ts); err != nil || !bytes.Equal(again, batches) {
		t.Fatalf("restamp: %v", err)
	}
	// A corrupt batch is refused and left as it was: recomputing its CRC
	// would launder the corruption.
	bad := bytes.Clone(orig)
	bad[len(bad)-1] ^= 1
	keep := bytes.Clone(bad)
	if err := StampLogAppendTime(bad, ts); !errors.Is(err, plog.ErrCorruptBatch) || !bytes.Equal(bad, keep) {
		t.Fatalf("corrupt batch: %v, changed %v", err, !bytes.Equal(bad, keep))
	}
}

// TestLogAppendTimeResult: the result carries the command's stamp; -1 for
// CreateTime.
func TestLogAppendTimeResult(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(42)))
	defer h.close()
	b := tb{pid: 3, records: 2}.encode()
	if err := StampLogAppendTime(b, 1234); err != nil {
		t.Fatal(err)
	}
	r := decodeP(t, h.apply(EncodeProduce(Produce{LogAppendTimeMs: 1234, Batches: b})))
	if r.ErrorCode != 0 || r.LogAppendTimeMs != 1234 {
		t.Fatalf("%+v", r)
	}
	if r := h.produce(0, tb{pid: -1}); r.LogAppendTimeMs != -1 {
		t.Fatalf("CreateTime: %+v", r)
	}
	// The time index indexes the append time.
	if off, ok, err := h.replica().OffsetForTimestamp(1234); err != nil || !ok || off != 0 {
		t.Fatalf("OffsetForTimestamp(1234) = %d %v %v", off, ok, err)
	}
}

// segmentCount counts the .log files of shard 1's log.
func segmentCount(t *testing.T, fs diskio.FS, dir string) int {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range names {
		if strings.HasSuffix(s, ".log") {
			n++
		}
	}
	return n
}

// TestTuningOnOpenAndLive: Options.Tuning sets the segment size when the
// log opens (also by snapshot recovery); SetTuning changes it live.
func TestTuningOnOpenAndLive(t *testing.T) {
	fs := diskio.NewSim(43)
	opts := testOptions(fs) // template: 4 KiB segments
	opts.Tuning = func(shard uint64) Tuning {
		if shard != 1 {
			t.Errorf("Tuning asked for shard %d", shard)
		}
		return Tuning{SegmentBytesMax: 1 << 20} // age: the template's
	}
	h, _ := openHarness(t, opts)
	const logDir = "/data/partitions/1/log"
	for i := range 60 {
		mustCode(t, h.produce(0, tb{pid: -1, records: 3, seed: byte(i)}), 0)
	}
	if n := segmentCount(t, fs, logDir); n != 1 {
		t.Fatalf("with 1 MiB segments: %d segment files", n)
	}
	r := h.replica()
	if err := r.SetTuning(Tuning{SegmentBytesMax: 4096}); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		mustCode(t, h.produce(0, tb{pid: -1, records: 3, seed: byte(i)}), 0)
	}
	if n := segmentCount(t, fs, logDir); n < 3 {
		t.Fatalf("after SetTuning(4 KiB): %d segment files", n)
	}
	// Below plog's floor (the controller accepts segment.bytes >= 14):
	// clamped, not refused.
	if err := r.SetTuning(Tuning{SegmentBytesMax: 14, SegmentAgeMax: -1}); err != nil {
		t.Fatalf("SetTuning below plog's floor: %v", err)
	}
	before := segmentCount(t, fs, logDir)
	for i := range 30 { // about 3.5 KiB: at least two rolls at 1 KiB

		mustCode(t, h.produce(0, tb{pid: -1, records: 3, seed: byte(i)}), 0)
	}
	if n := segmentCount(t, fs, logDir); n < before+2 {
		t.Fatalf("with segments clamped to the floor: %d segment files after %d", n, before)
	}
	// A Tuning plog would refuse does not stop a replica from opening.
	bad := testOptions(diskio.NewSim(45))
	bad.Tuning = func(uint64) Tuning { return Tuning{SegmentBytesMax: 14, SegmentAgeMax: -time.Hour} }
	hb, _ := openHarness(t, bad)
	mustCode(t, hb.produce(0, tb{pid: -1}), 0)
	hb.close()
	// Snapshot recovery reopens through Options.Tuning: one big segment.
	fs2 := diskio.NewSim(44)
	opts2 := testOptions(fs2)
	opts2.Tuning = opts.Tuning
	b, _ := openHarness(t, opts2)
	if err := b.sm.RecoverFromSnapshot(bytes.NewReader(snapshotOf(t, h)), nil); err != nil {
		t.Fatal(err)
	}
	if n := segmentCount(t, fs2, logDir); n != 1 {
		t.Fatalf("recovered with 1 MiB segments: %d segment files", n)
	}
	sameState(t, "recovered", stateOf(t, b), stateOf(t, h))
	b.close()
	h.close()
	if err := r.SetTuning(Tuning{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetTuning after close: %v", err)
	}
	if _, err := r.RetentionStart(-1, -1); !errors.Is(err, ErrClosed) {
		t.Fatalf("RetentionStart after close: %v", err)
	}
}

// proposeCmd sends one command through the current leader until it is
// applied, and returns its result.
func (c *raftCluster) proposeCmd(cmd []byte) sm.Result {
	c.t.Helper()
	for range 50 {
		l, _ := c.leader()
		nh := c.host(l)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := nh.SyncPropose(ctx, nh.GetNoOPSession(partShard), cmd)
		cancel()
		if err == nil {
			return res
		}
		time.Sleep(100 * time.Millisecond) // virtual time: retry backoff
	}
	c.t.Fatal("propose: no success after 50 attempts")
	return sm.Result{}
}

func (c *raftCluster) replica(id uint64) *Replica {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	rep, ok := c.regs[id].Get(partShard)
	if !ok {
		c.t.Fatalf("node %d: replica not registered", id)
	}
	return rep
}

// TestRaftConfigsSameOnEveryReplica: on three replicas, a batch over the
// command's limit is refused everywhere (the replicas' templates differ
// from the command: only the command counts); a LogAppendTime batch is
// stored with identical bytes everywhere; and retention computed on the
// leader and proposed as DeleteRecords moves every replica's start to the
// same offset.
func TestRaftConfigsSameOnEveryReplica(t *testing.T) {
	quietRaft(t)
	synctest.Test(t, func(t *testing.T) {
		c := newRaftCluster(t, 3, 5, config.Config{SnapshotEntries: 1000, CompactionOverhead: 100})
		defer c.closeAll()
		for i := range 40 {
			if r := c.produce(tb{pid: -1, records: 4, seed: byte(i)}); r.ErrorCode != 0 {
				t.Fatalf("produce %d: %+v", i, r)
			}
		}
		big := tb{pid: -1, records: 20}.encode()
		res := c.proposeCmd(EncodeProduce(Produce{BatchBytesMax: int32(len(big) - 1), LogAppendTimeMs: -1, Batches: big}))
		if r, err := DecodeProduceResult(res); err != nil || r.ErrorCode != kerr.MessageTooLarge.Code {
			t.Fatalf("over the command's limit: %+v %v", r, err)
		}
		const ts = 1_700_000_500_000
		stamped := tb{pid: 8, records: 3}.encode()
		if err := StampLogAppendTime(stamped, ts); err != nil {
			t.Fatal(err)
		}
		res = c.proposeCmd(EncodeProduce(Produce{BatchBytesMax: int32(len(stamped)), LogAppendTimeMs: ts, Batches: stamped}))
		r, err := DecodeProduceResult(res)
		if err != nil || r.ErrorCode != 0 || r.LogAppendTimeMs != ts || r.BaseOffset != 160 {
			t.Fatalf("LogAppendTime produce: %+v %v", r, err)
		}
		hw0, data0 := c.state(1)
		for id := uint64(2); id <= 3; id++ {
			if hw, d := c.state(id); hw != hw0 || !bytes.Equal(d, data0) {
				t.Fatalf("node %d: hw %d, %d bytes; node 1: hw %d, %d bytes", id, hw, len(d), hw0, len(data0))
			}
		}
		if hw0 != 163 {
			t.Fatalf("hw %d: the refused batch was appended somewhere", hw0)
		}
		hdrs, _ := parseBatchHeaders(data0, nil)
		if last := hdrs[len(hdrs)-1]; last.maxTimestampMs != ts {
			t.Fatalf("stored max timestamp %d", last.maxTimestampMs)
		}

		// Replicated retention: the leader decides, every replica follows.
		l, _ := c.leader()
		x, err := c.replica(l).RetentionStart(0, -1) // every sealed segment goes
		if err != nil || x == 0 {
			t.Fatalf("RetentionStart: %d %v", x, err)
		}
		res = c.proposeCmd(EncodeDeleteRecords(DeleteRecords{Offset: x}))
		if dr, err := DecodeDeleteRecordsResult(res); err != nil || dr.ErrorCode != 0 || dr.LogStartOffset != x {
			t.Fatalf("delete records to %d: %+v %v", x, dr, err)
		}
		for id := uint64(1); id <= 3; id++ {
			c.state(id) // read barrier: applied up to the commit
			if s := c.replica(id).LogStartOffset(); s != x {
				t.Fatalf("node %d: log start %d, want %d", id, s, x)
			}
		}
	})
}
