package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// wireLog is a kgo.Logger that records the "wrote <Request> v<N>" lines
// kgo logs at debug level: which API versions a client sent.
type wireLog struct {
	mu   sync.Mutex
	sent map[string]bool
}

func newWireLog() *wireLog { return &wireLog{sent: map[string]bool{}} }

func (w *wireLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (w *wireLog) Log(_ kgo.LogLevel, msg string, _ ...any) {
	if s, ok := strings.CutPrefix(msg, "wrote "); ok {
		w.mu.Lock()
		w.sent[s] = true
		w.mu.Unlock()
	}
}

// has reports whether the client sent api at version v.
func (w *wireLog) has(api string, v int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sent[fmt.Sprintf("%s v%d", api, v)]
}

// sentAny reports whether the client sent api at any version.
func (w *wireLog) sentAny(api string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := range w.sent {
		if strings.HasPrefix(s, api+" ") {
			return true
		}
	}
	return false
}

func (w *wireLog) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for s := range w.sent {
		out = append(out, s)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// txnEpoch is the producer epoch DescribeTransactions reports for id.
func txnEpoch(t *testing.T, c *testCluster, id string) int16 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	dt, err := c.admin().DescribeTransactions(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return dt[id].ProducerEpoch
}

// TestTxnKIP890Part2Kgo: with transaction.version 2 finalized, kgo's
// transactional producer runs KIP-890 part 2 (Produce v12 adds the
// partitions, EndTxn v5 bumps the epoch at every end, no
// AddPartitionsToTxn), on 1 and 3 nodes; a client capped below those
// versions still runs the classic protocol (AddPartitionsToTxn, EndTxn v4,
// one epoch) against the same brokers.
func TestTxnKIP890Part2Kgo(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			c := startCluster(t, n, nil)
			c.createTopic("tx2", 3)
			wl := newWireLog()
			cl := txnClient(c, "tx2-new", kgo.WithLogger(wl))
			txnProduce(t, cl, "tx2", true, "c1", "c2", "c3")
			txnProduce(t, cl, "tx2", false, "a1", "a2", "a3")
			txnProduce(t, cl, "tx2", true, "c4", "c5")
			if !wl.has("EndTxn", 5) || !wl.has("Produce", 12) || wl.sentAny("AddPartitionsToTxn") {
				t.Fatalf("kgo sent %s; want EndTxn v5, Produce v12 and no AddPartitionsToTxn", wl)
			}
			if e := txnEpoch(t, c, "tx2-new"); e != 3 {
				t.Fatalf("epoch after three transactions %d, want 3 (one bump per end)", e)
			}

			old := newWireLog()
			mv := kversion.Stable()
			mv.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
			classic := txnClient(c, "tx2-classic", kgo.WithLogger(old), kgo.MaxVersions(mv))
			txnProduce(t, classic, "tx2", true, "k1")
			txnProduce(t, classic, "tx2", false, "ka")
			txnProduce(t, classic, "tx2", true, "k2")
			if !old.has("EndTxn", 4) || !old.sentAny("AddPartitionsToTxn") || old.has("Produce", 12) {
				t.Fatalf("capped kgo sent %s; want the classic protocol", old)
			}
			if e := txnEpoch(t, c, "tx2-classic"); e != 0 {
				t.Fatalf("classic epoch %d, want 0", e)
			}
			got := consumeValues(t, c, "tx2", 7, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if fmt.Sprint(got) != "[c1 c2 c3 c4 c5 k1 k2]" {
				t.Fatalf("read_committed got %v", got)
			}
		})
	}
}

// txnRawBatch is rawBatch with the transactional attribute.
func txnRawBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	b := rawBatch(pid, epoch, seq, values...)
	b[22] |= batchAttrTxn
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoliTable))
	return b
}

// TestTxnLateProduceFenced is the gap KIP-890 part 2 closes. A
// transactional produce checked against the coordinator before its
// client ended the transaction can reach the partition's log after the
// marker (the check runs before proposing). Under EndTxn v5 the marker
// carries the bumped epoch, so the late batch (old epoch) is refused in
// apply with INVALID_PRODUCER_EPOCH and the partition stays stable. Under
// EndTxn v4 (no bump) the same late batch lands and opens a transaction
// the producer never ends there: the LSO stays behind. The late produce
// is proposed through the node, skipping the handler's check, which is
// exactly the state such a produce is in.
func TestTxnLateProduceFenced(t *testing.T) {
	c := startCluster(t, 1, nil)
	c.createTopic("gap", 1)
	addr := c.addrs[1]
	nd := c.brokers[1].Node
	for _, endVersion := range []int16{5, 4} {
		id := fmt.Sprintf("gap-v%d", endVersion)
		ipr := kmsg.NewPtrInitProducerIDRequest()
		ipr.TransactionalID, ipr.TransactionTimeoutMillis = &id, 60_000
		ip := rawRoundTrip(t, addr, ipr).(*kmsg.InitProducerIDResponse)
		if ip.ErrorCode != 0 {
			t.Fatalf("InitProducerId: %+v", ip)
		}
		pid, epoch := ip.ProducerID, ip.ProducerEpoch
		apr := kmsg.NewPtrAddPartitionsToTxnRequest()
		apr.SetVersion(3)
		apr.TransactionalID, apr.ProducerID, apr.ProducerEpoch = id, pid, epoch
		at := kmsg.NewAddPartitionsToTxnRequestTopic()
		at.Topic, at.Partitions = "gap", []int32{0}
		apr.Topics = append(apr.Topics, at)
		if ap := rawRoundTrip(t, addr, apr).(*kmsg.AddPartitionsToTxnResponse); ap.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("AddPartitionsToTxn: %+v", ap)
		}
		preq := rawProduceReq(11, -1, "gap", 0, txnRawBatch(pid, epoch, 0, "in-txn"))
		preq.TransactionID = &id
		if r := rawRoundTrip(t, addr, preq).(*kmsg.ProduceResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("produce: %+v", r)
		}
		er := kmsg.NewPtrEndTxnRequest()
		er.SetVersion(endVersion)
		er.TransactionalID, er.ProducerID, er.ProducerEpoch, er.Commit = id, pid, epoch, true
		e := rawRoundTrip(t, addr, er).(*kmsg.EndTxnResponse)
		if e.ErrorCode != 0 {
			t.Fatalf("EndTxn v%d: %+v", endVersion, e)
		}
		if endVersion >= 5 && (e.ProducerID != pid || e.ProducerEpoch != epoch+1) {
			t.Fatalf("EndTxn v5 answered %d/%d, want %d/%d", e.ProducerID, e.ProducerEpoch, pid, epoch+1)
		}
		eventually(t, testWait, func() bool {
			tx, ok := nd.Txn(id)
			return ok && !tx.State.Preparing()
		}, "transaction %s complete", id)
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		late := nd.Produce(ctx, "gap", 0, txnRawBatch(pid, epoch, 1, "late"))
		lso, code := nd.LastStableOffset(ctx, "gap", 0)
		hw := nd.ListOffsets(ctx, "gap", 0, -1).Offset
		cancel()
		switch endVersion {
		case 5:
			if late.ErrorCode != kerr.InvalidProducerEpoch.Code {
				t.Fatalf("late produce after EndTxn v5: code %d, want INVALID_PRODUCER_EPOCH", late.ErrorCode)
			}
			if code != 0 || lso != hw {
				t.Fatalf("LSO %d (code %d), HW %d: the partition must stay stable", lso, code, hw)
			}
			// A retried EndTxn with the old epoch is answered with the
			// bumped identity; a request at the old epoch is fenced.
			if r := rawRoundTrip(t, addr, er).(*kmsg.EndTxnResponse); r.ErrorCode != 0 || r.ProducerEpoch != epoch+1 {
				t.Fatalf("retried EndTxn v5: %+v", r)
			}
			apr.SetVersion(3)
			if ap := rawRoundTrip(t, addr, apr).(*kmsg.AddPartitionsToTxnResponse); ap.Topics[0].Partitions[0].ErrorCode != kerr.ProducerFenced.Code {
				t.Fatalf("AddPartitionsToTxn at the old epoch: %+v", ap)
			}
		case 4:
			// The gap as it is for clients of the classic protocol.
			if late.ErrorCode != 0 || code != 0 || lso >= hw {
				t.Fatalf("late produce after EndTxn v4: code %d, LSO %d, HW %d; want it appended and the LSO held", late.ErrorCode, lso, hw)
			}
		}
	}
}

// TestTxnAddPartitionsBatched: AddPartitionsToTxn v4 and v5 (the batched
// form): several transactions per request, each added or, with
// VerifyOnly, only checked against the ongoing transaction.
func TestTxnAddPartitionsBatched(t *testing.T) {
	c := startCluster(t, 1, nil)
	c.createTopic("batched", 2)
	addr := c.addrs[1]
	for v := int16(4); v <= 5; v++ {
		type prod struct {
			id    string
			pid   int64
			epoch int16
		}
		var ps []prod
		for _, name := range []string{"a", "b"} {
			id := fmt.Sprintf("batched-%s-v%d", name, v)
			ipr := kmsg.NewPtrInitProducerIDRequest()
			ipr.TransactionalID, ipr.TransactionTimeoutMillis = &id, 60_000
			ip := rawRoundTrip(t, addr, ipr).(*kmsg.InitProducerIDResponse)
			if ip.ErrorCode != 0 {
				t.Fatalf("InitProducerId: %+v", ip)
			}
			ps = append(ps, prod{id, ip.ProducerID, ip.ProducerEpoch})
		}
		txn := func(p prod, epoch int16, verify bool, parts ...int32) kmsg.AddPartitionsToTxnRequestTransaction {
			tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
			tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = p.id, p.pid, epoch, verify
			tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
			tt.Topic, tt.Partitions = "batched", parts
			tx.Topics = append(tx.Topics, tt)
			return tx
		}
		codes := func(txns ...kmsg.AddPartitionsToTxnRequestTransaction) string {
			req := kmsg.NewPtrAddPartitionsToTxnRequest()
			req.SetVersion(v)
			req.Transactions = txns
			r := rawRoundTrip(t, addr, req).(*kmsg.AddPartitionsToTxnResponse)
			if r.ErrorCode != 0 || len(r.Transactions) != len(txns) {
				t.Fatalf("v%d: %+v", v, r)
			}
			var out []string
			for i, tx := range r.Transactions {
				if tx.TransactionalID != txns[i].TransactionalID {
					t.Fatalf("v%d: result %d is %q", v, i, tx.TransactionalID)
				}
				for _, p := range tx.Topics[0].Partitions {
					out = append(out, fmt.Sprintf("%d:%d", p.Partition, p.ErrorCode))
				}
			}
			return strings.Join(out, " ")
		}
		a, b := ps[0], ps[1]
		txnState, fenced := kerr.InvalidTxnState.Code, kerr.ProducerFenced.Code
		// a adds partition 0; b, verified only, has no transaction.
		if got, want := codes(txn(a, a.epoch, false, 0), txn(b, b.epoch, true, 0)), fmt.Sprintf("0:0 0:%d", txnState); got != want {
			t.Fatalf("v%d add+verify: %s, want %s", v, got, want)
		}
		if got, want := codes(txn(a, a.epoch, true, 0, 1), txn(a, a.epoch+1, true, 0)), fmt.Sprintf("0:0 1:%d 0:%d", txnState, fenced); got != want {
			t.Fatalf("v%d verify: %s, want %s", v, got, want)
		}
		// Verification changed nothing: b still has no transaction.
		if tx, ok := c.brokers[1].Node.Txn(b.id); !ok || tx.State.String() != "Empty" {
			t.Fatalf("v%d: b after VerifyOnly: %+v", v, tx)
		}
	}
}
