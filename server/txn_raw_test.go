package server

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnRawVersions runs one transaction per version of the transaction
// APIs on the wire (rawRoundTrip), each request at that version (capped
// at each API's maximum): InitProducerId, AddPartitionsToTxn,
// AddOffsetsToTxn, TxnOffsetCommit, EndTxn, then DescribeTransactions,
// ListTransactions and WriteTxnMarkers, checking the answers' fields.
func TestTxnRawVersions(t *testing.T) {
	c := startCluster(t, 1, nil)
	c.createTopic("rawtx", 2)
	addr := c.addrs[1]
	for v := int16(0); v <= 5; v++ {
		id := fmt.Sprintf("raw-%d", v)
		ipr := kmsg.NewPtrInitProducerIDRequest()
		ipr.SetVersion(v)
		ipr.TransactionalID, ipr.TransactionTimeoutMillis = &id, 30_000
		ip := rawRoundTrip(t, addr, ipr).(*kmsg.InitProducerIDResponse)
		if ip.ErrorCode != 0 || ip.ProducerEpoch != 0 {
			t.Fatalf("InitProducerId v%d: %+v", v, ip)
		}
		pid, epoch := ip.ProducerID, ip.ProducerEpoch

		apr := kmsg.NewPtrAddPartitionsToTxnRequest()
		apr.SetVersion(min(v, 3))
		apr.TransactionalID, apr.ProducerID, apr.ProducerEpoch = id, pid, epoch
		at := kmsg.NewAddPartitionsToTxnRequestTopic()
		at.Topic, at.Partitions = "rawtx", []int32{0, 1}
		apr.Topics = append(apr.Topics, at)
		ap := rawRoundTrip(t, addr, apr).(*kmsg.AddPartitionsToTxnResponse)
		if len(ap.Topics) != 1 || len(ap.Topics[0].Partitions) != 2 || ap.Topics[0].Partitions[1].ErrorCode != 0 || ap.Topics[0].Partitions[1].Partition != 1 {
			t.Fatalf("AddPartitionsToTxn v%d: %+v", apr.Version, ap)
		}
		apr.ProducerEpoch = epoch + 1
		fenced := kerr.ProducerFenced.Code
		if apr.Version < 2 {
			fenced = kerr.InvalidProducerEpoch.Code // KIP-588
		}
		if ap := rawRoundTrip(t, addr, apr).(*kmsg.AddPartitionsToTxnResponse); ap.Topics[0].Partitions[0].ErrorCode != fenced {
			t.Fatalf("AddPartitionsToTxn v%d, other epoch: %+v", apr.Version, ap)
		}

		aor := kmsg.NewPtrAddOffsetsToTxnRequest()
		aor.SetVersion(min(v, 3))
		aor.TransactionalID, aor.ProducerID, aor.ProducerEpoch, aor.Group = id, pid, epoch, "rawg"
		if ao := rawRoundTrip(t, addr, aor).(*kmsg.AddOffsetsToTxnResponse); ao.ErrorCode != 0 {
			t.Fatalf("AddOffsetsToTxn v%d: %+v", aor.Version, ao)
		}

		tor := kmsg.NewPtrTxnOffsetCommitRequest()
		tor.SetVersion(min(v, 3))
		tor.TransactionalID, tor.ProducerID, tor.ProducerEpoch, tor.Group = id, pid, epoch, "rawg"
		tt := kmsg.NewTxnOffsetCommitRequestTopic()
		tt.Topic = "rawtx"
		tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		tp.Partition, tp.Offset = 1, int64(v)
		tt.Partitions = append(tt.Partitions, tp)
		tor.Topics = append(tor.Topics, tt)
		to := rawRoundTrip(t, addr, tor).(*kmsg.TxnOffsetCommitResponse)
		if len(to.Topics) != 1 || to.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("TxnOffsetCommit v%d: %+v", tor.Version, to)
		}

		// KIP-447: the staged offset makes RequireStable fetches unstable.
		of := kmsg.NewPtrOffsetFetchRequest()
		of.SetVersion(7)
		of.Group, of.RequireStable = "rawg", true
		ot := kmsg.NewOffsetFetchRequestTopic()
		ot.Topic, ot.Partitions = "rawtx", []int32{1}
		of.Topics = append(of.Topics, ot)
		if r := rawRoundTrip(t, addr, of).(*kmsg.OffsetFetchResponse); r.Topics[0].Partitions[0].ErrorCode != kerr.UnstableOffsetCommit.Code {
			t.Fatalf("OffsetFetch RequireStable during transaction %d: %+v", v, r)
		}
		of.RequireStable = false
		if r := rawRoundTrip(t, addr, of).(*kmsg.OffsetFetchResponse); r.Topics[0].Partitions[0].ErrorCode != 0 || r.Topics[0].Partitions[0].Offset != int64(v)-1 {
			t.Fatalf("OffsetFetch during transaction %d: %+v", v, r)
		}

		er := kmsg.NewPtrEndTxnRequest()
		er.SetVersion(min(v, 4))
		er.TransactionalID, er.ProducerID, er.ProducerEpoch, er.Commit = id, pid, epoch, true
		if e := rawRoundTrip(t, addr, er).(*kmsg.EndTxnResponse); e.ErrorCode != 0 {
			t.Fatalf("EndTxn v%d: %+v", er.Version, e)
		}
		er.Commit = false
		if e := rawRoundTrip(t, addr, er).(*kmsg.EndTxnResponse); e.ErrorCode != kerr.InvalidTxnState.Code {
			t.Fatalf("EndTxn v%d abort after commit: %+v", er.Version, e)
		}
	}
	ofr := kmsg.NewPtrOffsetFetchRequest()
	ofr.SetVersion(5)
	ofr.Group = "rawg"
	of := rawRoundTrip(t, addr, ofr).(*kmsg.OffsetFetchResponse)
	if len(of.Topics) != 1 || of.Topics[0].Partitions[0].Offset != 5 {
		t.Fatalf("committed offset after the transactions: %+v", of)
	}

	dr := kmsg.NewPtrDescribeTransactionsRequest()
	dr.TransactionalIDs = []string{"raw-0", "nope"}
	d := rawRoundTrip(t, addr, dr).(*kmsg.DescribeTransactionsResponse)
	if len(d.TransactionStates) != 2 || d.TransactionStates[0].State != "CompleteCommit" || d.TransactionStates[0].ErrorCode != 0 ||
		d.TransactionStates[1].ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("DescribeTransactions: %+v", d)
	}
	for v := int16(0); v <= 1; v++ {
		lr := kmsg.NewPtrListTransactionsRequest()
		lr.SetVersion(v)
		lr.StateFilters = []string{"CompleteCommit", "Bogus"}
		l := rawRoundTrip(t, addr, lr).(*kmsg.ListTransactionsResponse)
		if l.ErrorCode != 0 || len(l.TransactionStates) != 6 || fmt.Sprint(l.UnknownStateFilters) != "[Bogus]" {
			t.Fatalf("ListTransactions v%d: %+v", v, l)
		}
	}
	for v := int16(0); v <= 1; v++ {
		wr := kmsg.NewPtrWriteTxnMarkersRequest()
		wr.SetVersion(v)
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed = 999, 0, false
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = "rawtx", []int32{0, 9}
		m.Topics = append(m.Topics, mt)
		wr.Markers = append(wr.Markers, m)
		w := rawRoundTrip(t, addr, wr).(*kmsg.WriteTxnMarkersResponse)
		ps := w.Markers[0].Topics[0].Partitions
		if len(ps) != 2 || ps[0].ErrorCode != 0 || ps[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("WriteTxnMarkers v%d: %+v", v, w)
		}
	}
}
