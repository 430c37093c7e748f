package partition

import (
	"bytes"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"
	"github.com/twmb/franz-go/pkg/kerr"
	"pgregory.net/rapid"

	"github.com/chronik-go/chronik/diskio"
)

func TestCodecRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := Produce{
			LeaderEpoch:     rapid.Int32().Draw(t, "epoch"),
			BatchBytesMax:   rapid.Int32Min(0).Draw(t, "batchBytesMax"),
			LogAppendTimeMs: rapid.Int64Min(-1).Draw(t, "logAppendTimeMs"),
			Batches:         rapid.SliceOf(rapid.Byte()).Draw(t, "batches"),
		}
		c, err := DecodeCommand(EncodeProduce(p))
		if err != nil || c.Kind != KindProduce || c.Produce.LeaderEpoch != p.LeaderEpoch || c.Produce.BatchBytesMax != p.BatchBytesMax ||
			c.Produce.LogAppendTimeMs != p.LogAppendTimeMs || !bytes.Equal(c.Produce.Batches, p.Batches) {
			t.Fatalf("produce round trip: %+v %v", c, err)
		}
		d := DeleteRecords{Offset: rapid.Int64().Draw(t, "offset")}
		c, err = DecodeCommand(EncodeDeleteRecords(d))
		if err != nil || c.Kind != KindDeleteRecords || c.DeleteRecords != d {
			t.Fatalf("delete round trip: %+v %v", c, err)
		}
		pr := ProduceResult{
			ErrorCode: rapid.Int16().Draw(t, "code"), BaseOffset: rapid.Int64().Draw(t, "base"),
			LastOffset: rapid.Int64().Draw(t, "last"), LogAppendTimeMs: rapid.Int64().Draw(t, "ts"),
			LogStartOffset: rapid.Int64().Draw(t, "start"), Duplicate: rapid.Bool().Draw(t, "dup"),
			Index: rapid.Uint64().Draw(t, "index"),
		}
		res := encodeProduceResult(pr)
		if got, err := DecodeProduceResult(res); err != nil || got != pr || res.Value != uint64(uint16(pr.ErrorCode)) {
			t.Fatalf("produce result: %+v %v", got, err)
		}
		if _, err := DecodeDeleteRecordsResult(res); err == nil {
			t.Fatal("produce result decoded as delete-records result")
		}
		dr := DeleteRecordsResult{ErrorCode: pr.ErrorCode, LogStartOffset: pr.LogStartOffset}
		if got, err := DecodeDeleteRecordsResult(encodeDeleteRecordsResult(dr)); err != nil || got != dr {
			t.Fatalf("delete result: %+v %v", got, err)
		}
		tab := newProducerTable(ProducersMax)
		for i := range rapid.IntRange(0, 8).Draw(t, "producers") {
			for j := range rapid.IntRange(1, 7).Draw(t, "batches") {
				tab.record(int64(rapid.IntRange(0, 5).Draw(t, "pid")), int16(i%2), batchMeta{firstSeq: int32(j), lastSeq: int32(j), baseOffset: int64(j)}, int64(i))
			}
		}
		enc := tab.appendTo(nil)
		back, n, err := decodeProducerTable(enc, ProducersMax)
		if err != nil || n != len(enc) || !bytes.Equal(back.appendTo(nil), enc) {
			t.Fatalf("producer table round trip: %v", err)
		}
	})
}

// modelProducer is the model's view of one idempotent producer.
type modelProducer struct {
	epoch   int16
	lastSeq int32
	recent  []modelBatch // last 5
}

type modelBatch struct {
	first, last int32
	base, end   int64
	n           int
}

// TestStateMachineVsModel drives the state machine with random produces
// (new, duplicate retries of any recent batch, gaps, epoch bumps, fenced
// epochs, non-idempotent) interleaved with Sync, reopen and crash+replay,
// against a model of Kafka's rules.
func TestStateMachineVsModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		fs := diskio.NewSim(rapid.Int64().Draw(rt, "seed"))
		h, _ := openHarness(t, bigSegments(testOptions(fs)))
		defer func() { _ = h.sm.Close() }()
		model := map[int64]*modelProducer{}
		var next int64
		var history [][]byte // every command, by index-1, for replay after a crash
		apply := func(cmd []byte) ProduceResult {
			history = append(history, cmd)
			return decodeP(t, h.applyAt(uint64(len(history)), cmd))
		}
		pidGen := rapid.Int64Range(0, 3)
		rt.Repeat(map[string]func(*rapid.T){
			"new": func(rt *rapid.T) {
				pid, n := pidGen.Draw(rt, "pid"), rapid.IntRange(1, 4).Draw(rt, "n")
				m := model[pid]
				epoch, seq := int16(0), int32(0)
				if m != nil {
					epoch, seq = m.epoch, m.lastSeq+1
				}
				r := apply(produceCmd(1, tb{pid: pid, epoch: epoch, seq: seq, records: n}))
				if r.ErrorCode != 0 || r.Duplicate || r.BaseOffset != next || r.LastOffset != next+int64(n)-1 {
					rt.Fatalf("new batch: %+v, want [%d, %d]", r, next, next+int64(n)-1)
				}
				if m == nil {
					m = &modelProducer{epoch: epoch}
					model[pid] = m
				}
				m.lastSeq = seq + int32(n) - 1
				m.recent = append(m.recent, modelBatch{seq, m.lastSeq, next, next + int64(n) - 1, n})
				if len(m.recent) > BatchesPerProducerMax {
					m.recent = m.recent[1:]
				}
				next += int64(n)
			},
			"retry": func(rt *rapid.T) {
				pid := pidGen.Draw(rt, "pid")
				m := model[pid]
				if m == nil || len(m.recent) == 0 {
					rt.Skip("no batch to retry")
				}
				b := m.recent[rapid.IntRange(0, len(m.recent)-1).Draw(rt, "which")]
				r := apply(produceCmd(1, tb{pid: pid, epoch: m.epoch, seq: b.first, records: b.n}))
				if !r.Duplicate || r.ErrorCode != 0 || r.BaseOffset != b.base || r.LastOffset != b.end {
					rt.Fatalf("retry: %+v, want duplicate [%d, %d]", r, b.base, b.end)
				}
			},
			"gap": func(rt *rapid.T) {
				pid := pidGen.Draw(rt, "pid")
				m := model[pid]
				if m == nil {
					rt.Skip("unknown producers accept any sequence")
				}
				r := apply(produceCmd(1, tb{pid: pid, epoch: m.epoch, seq: m.lastSeq + rapid.Int32Range(2, 9).Draw(rt, "ahead")}))
				if r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
					rt.Fatalf("gap: %+v", r)
				}
			},
			"bump": func(rt *rapid.T) {
				pid := pidGen.Draw(rt, "pid")
				m := model[pid]
				if m == nil {
					rt.Skip("unknown")
				}
				fromZero := rapid.Bool().Draw(rt, "fromZero")
				seq := int32(0)
				if !fromZero {
					seq = m.lastSeq + 1
				}
				r := apply(produceCmd(1, tb{pid: pid, epoch: m.epoch + 1, seq: seq}))
				if !fromZero {
					if r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
						rt.Fatalf("new epoch not from 0: %+v", r)
					}
					return
				}
				if r.ErrorCode != 0 || r.BaseOffset != next {
					rt.Fatalf("new epoch from 0: %+v", r)
				}
				m.epoch, m.lastSeq = m.epoch+1, 0
				m.recent = []modelBatch{{0, 0, next, next, 1}}
				next++
			},
			"fenced": func(rt *rapid.T) {
				pid := pidGen.Draw(rt, "pid")
				m := model[pid]
				if m == nil || m.epoch == 0 {
					rt.Skip("no older epoch")
				}
				r := apply(produceCmd(1, tb{pid: pid, epoch: m.epoch - 1, seq: 0}))
				if r.ErrorCode != kerr.InvalidProducerEpoch.Code {
					rt.Fatalf("fenced: %+v", r)
				}
			},
			"plain": func(rt *rapid.T) {
				n := rapid.IntRange(1, 3).Draw(rt, "n")
				r := apply(produceCmd(1, tb{pid: -1, records: n}))
				if r.ErrorCode != 0 || r.BaseOffset != next {
					rt.Fatalf("plain: %+v", r)
				}
				next += int64(n)
			},
			"sync": func(rt *rapid.T) {
				if err := h.sm.Sync(); err != nil {
					rt.Fatal(err)
				}
			},
			"reopen": func(rt *rapid.T) {
				h.close()
				if idx := h.open(); idx != uint64(len(history)) {
					rt.Fatalf("reopen returned %d, applied %d", idx, len(history))
				}
			},
			"crash": func(rt *rapid.T) {
				mode := diskio.CrashMode(rapid.IntRange(0, 2).Draw(rt, "mode"))
				fs.Freeze()
				_ = h.sm.Close()
				fs = fs.CrashImage(mode)
				h.opts.FS = fs
				idx := h.open()
				for i := idx; i < uint64(len(history)); i++ {
					h.sm.Update([]sm.Entry{{Index: i + 1, Cmd: history[i]}})
				}
				h.next = uint64(len(history)) + 1
			},
			"": func(rt *rapid.T) {
				r := h.replica()
				if r.HighWatermark() != next {
					rt.Fatalf("hw %d, model %d", r.HighWatermark(), next)
				}
				for _, p := range r.Producers() {
					m := model[p.ProducerID]
					if m == nil || m.epoch != p.ProducerEpoch || m.lastSeq != p.LastSequence {
						rt.Fatalf("producer %+v, model %+v", p, m)
					}
				}
				if len(r.Producers()) != len(model) {
					rt.Fatalf("%d producers, model %d", len(r.Producers()), len(model))
				}
			},
		})
	})
}
