package fuzz

import (
	"bytes"
	"errors"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/core/partition"
)

// FuzzPartitionDecodeCommand (FuzzDecodeCommand is core/meta's): decoding arbitrary entry payloads never panics, errors
// wrap ErrBadCommand, and whatever decodes re-encodes to the same bytes.
// Result decoding of arbitrary bytes never panics either.
func FuzzPartitionDecodeCommand(f *testing.F) {
	f.Add(partition.EncodeProduce(partition.Produce{LeaderEpoch: 3, Batches: []byte("abc")}))
	f.Add(partition.EncodeDeleteRecords(partition.DeleteRecords{Offset: -1}))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 9, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = partition.DecodeProduceResult(sm.Result{Data: b})
		_, _ = partition.DecodeDeleteRecordsResult(sm.Result{Data: b})
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
		default:
			t.Fatalf("decoded kind %d", c.Kind)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding %x gave %x", b, again)
		}
	})
}
