package fuzz

import (
	"bytes"
	"errors"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/core/partition"
)

// FuzzPartitionDecodeCommand (FuzzDecodeCommand is core/meta's): decoding arbitrary entry payloads never panics, errors
// wrap ErrBadCommand, and whatever decodes re-encodes to the same bytes
// (a version-1 produce, which EncodeProduce no longer writes, re-encodes
// as version 2 and decodes to the same command). Result decoding of
// arbitrary bytes never panics either.
func FuzzPartitionDecodeCommand(f *testing.F) {
	f.Add(partition.EncodeProduce(partition.Produce{LeaderEpoch: 3, LogAppendTimeMs: -1, Batches: []byte("abc")}))
	f.Add(partition.EncodeProduce(partition.Produce{LeaderEpoch: 3, BatchBytesMax: 1048588, LogAppendTimeMs: 1_700_000_000_000, Batches: []byte("abc")}))
	f.Add(partition.EncodeProduce(partition.Produce{BatchBytesMax: -1, LogAppendTimeMs: -2}))
	f.Add([]byte{1, 1, 0, 0, 0, 3, 'a', 'b', 'c'}) // version-1 produce
	f.Add([]byte{2, 1, 0, 0, 0, 3, 0, 0})          // version-2 produce, header cut
	f.Add([]byte{2, 2, 0, 0, 0, 0, 0, 0, 0, 1})    // delete-records has no version 2
	f.Add(partition.EncodeDeleteRecords(partition.DeleteRecords{Offset: -1}))
	f.Add(partition.EncodeMarker(partition.Marker{ProducerID: 7, ProducerEpoch: 2, Commit: true, CoordinatorEpoch: 3, TimestampMs: 1_700_000_000_000, LeaderEpoch: 4}))
	f.Add(partition.EncodeMarker(partition.Marker{ProducerID: 7}))
	f.Add([]byte{1, 3, 0, 0})
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 9, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = partition.DecodeProduceResult(sm.Result{Data: b})
		_, _ = partition.DecodeDeleteRecordsResult(sm.Result{Data: b})
		_, _ = partition.DecodeMarkerResult(sm.Result{Data: b})
		c, err := partition.DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, partition.ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		var again []byte
		switch c.Kind {
		case partition.KindProduce:
			again = partition.EncodeProduce(c.Produce)
		case partition.KindDeleteRecords:
			again = partition.EncodeDeleteRecords(c.DeleteRecords)
		case partition.KindMarker:
			again = partition.EncodeMarker(c.Marker)
		default:
			t.Fatalf("decoded kind %d", c.Kind)
		}
		if c.Kind == partition.KindProduce && b[0] == partition.CommandVersion {
			c2, err := partition.DecodeCommand(again)
			if err != nil || c2.Produce.LeaderEpoch != c.Produce.LeaderEpoch || c2.Produce.BatchBytesMax != 0 ||
				c2.Produce.LogAppendTimeMs != -1 || !bytes.Equal(c2.Produce.Batches, c.Produce.Batches) {
				t.Fatalf("version-1 produce %x re-encoded as %x decodes to %+v, %v", b, again, c2, err)
			}
			return
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gave %x", b, again)
		}
	})
}
