package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

// txnProduce runs one transaction of values on topic and ends it.
func txnProduce(t *testing.T, cl *kgo.Client, topic string, commit bool, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// consumeValues reads topic from the start until want values arrived (or
// the partitions' ends, for read_committed, are reached) and returns the
// values, sorted.
func consumeValues(t *testing.T, c *testCluster, topic string, want int, opts ...kgo.Opt) []string {
	t.Helper()
	cl := c.client(append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	// Generous: after restarts a client may first be sent to a node that
	// does not serve the partition yet, and kgo backs off for seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 3*testWait)
	defer cancel()
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			dumpTxnState(t, c, topic)
			t.Fatalf("consumed %d of %d: %v", len(got), want, got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	// Nothing more should come.
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	cl.PollFetches(short).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	sort.Strings(got)
	return got
}

func txnClient(c *testCluster, id string, opts ...kgo.Opt) *kgo.Client {
	return c.client(append([]kgo.Opt{kgo.TransactionalID(id), kgo.TransactionTimeout(10 * time.Second), kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, opts...)...)
}

// TestTxnCommitAbortReadCommitted: committed transactions are visible to
// read_committed consumers, aborted ones only to read_uncommitted; the
// LSO stops read_committed at an open transaction.
func TestTxnCommitAbortReadCommitted(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			c := startCluster(t, n, nil)
			c.createTopic("tx", 3)
			cl := txnClient(c, "tx-1")
			txnProduce(t, cl, "tx", true, "c1", "c2", "c3")
			txnProduce(t, cl, "tx", false, "a1", "a2", "a3")
			txnProduce(t, cl, "tx", true, "c4")
			got := consumeValues(t, c, "tx", 4, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if fmt.Sprint(got) != "[c1 c2 c3 c4]" {
				t.Fatalf("read_committed got %v", got)
			}
			got = consumeValues(t, c, "tx", 7)
			if fmt.Sprint(got) != "[a1 a2 a3 c1 c2 c3 c4]" {
				t.Fatalf("read_uncommitted got %v", got)
			}
			// An open transaction holds the LSO: read_committed ListOffsets
			// answers below the high watermark until it commits.
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			if err := cl.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "tx", Partition: 0, Value: []byte("open")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			adm := c.admin()
			committed, err := adm.ListCommittedOffsets(ctx, "tx")
			if err != nil {
				t.Fatal(err)
			}
			ends, err := adm.ListEndOffsets(ctx, "tx")
			if err != nil {
				t.Fatal(err)
			}
			lagging := 0
			ends.Each(func(o kadm.ListedOffset) {
				if lc, _ := committed.Lookup("tx", o.Partition); lc.Offset < o.Offset {
					lagging++
				}
			})
			if lagging != 1 {
				t.Fatalf("%d partitions with LSO < HW, want 1 (committed %v, end %v)", lagging, committed, ends)
			}
			if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				t.Fatal(err)
			}
			got = consumeValues(t, c, "tx", 5, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			if fmt.Sprint(got) != "[c1 c2 c3 c4 open]" {
				t.Fatalf("read_committed after commit got %v", got)
			}
			// DescribeTransactions / ListTransactions.
			dt, err := adm.DescribeTransactions(ctx, "tx-1")
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := dt["tx-1"]; !ok || d.State != "CompleteCommit" || d.Err != nil {
				t.Fatalf("describe %+v", dt)
			}
			lt, err := adm.ListTransactions(ctx, nil, nil)
			if err != nil || len(lt) != 1 {
				t.Fatalf("list %+v %v", lt, err)
			}
		})
	}
}

// TestTxnFencing: a second producer with the same transactional id fences
// the first, whose transaction is aborted.
func TestTxnFencing(t *testing.T) {
	c := startCluster(t, 1, nil)
	c.createTopic("fence", 1)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	old := txnClient(c, "fenced-id")
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, &kgo.Record{Topic: "fence", Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := txnClient(c, "fenced-id")
	txnProduce(t, fresh, "fence", true, "fresh")
	err := old.ProduceSync(ctx, &kgo.Record{Topic: "fence", Value: []byte("zombie2")}).FirstErr()
	if err == nil {
		err = old.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.InvalidProducerEpoch) && !errors.Is(err, kerr.ProducerFenced) {
		t.Fatalf("old producer: %v, want fenced", err)
	}
	got := consumeValues(t, c, "fence", 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if fmt.Sprint(got) != "[fresh]" {
		t.Fatalf("read_committed got %v", got)
	}
}

// TestTxnTimeoutAbort: a transaction left open past its timeout is aborted
// by the coordinator; its records never show to read_committed and its
// producer cannot commit it.
func TestTxnTimeoutAbort(t *testing.T) {
	c := startCluster(t, 1, func(nc *node.Config) { nc.TxnTimeoutCheckInterval = 100 * time.Millisecond })
	c.createTopic("slow", 1)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	cl := txnClient(c, "slow-id", kgo.TransactionTimeout(time.Second))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "slow", Value: []byte("late")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := c.admin()
	eventually(t, testWait, func() bool {
		dt, err := adm.DescribeTransactions(ctx, "slow-id")
		return err == nil && dt["slow-id"].State == "CompleteAbort"
	}, "the coordinator aborts the timed-out transaction")
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("commit of a timed-out transaction succeeded")
	}
	w := c.client()
	if err := w.ProduceSync(ctx, &kgo.Record{Topic: "slow", Value: []byte("plain")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeValues(t, c, "slow", 1, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if fmt.Sprint(got) != "[plain]" {
		t.Fatalf("read_committed got %v", got)
	}
	// DescribeConfigs shows the coordinator's settings (chronik serve
	// flags), the one set here as static.
	rc, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(rc) != 1 || rc[0].Err != nil {
		t.Fatalf("describe broker: %+v %v", rc, err)
	}
	want := map[string]string{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "100", "transactional.id.expiration.ms": "604800000"}
	for _, cf := range rc[0].Configs {
		if v, ok := want[cf.Key]; ok {
			src := kmsg.ConfigSourceDefaultConfig
			if cf.Key == "transaction.abort.timed.out.transaction.cleanup.interval.ms" {
				src = kmsg.ConfigSourceStaticBrokerConfig
			}
			if cf.Value == nil || *cf.Value != v || cf.Source != src {
				t.Errorf("%s: %+v, want %s from %v", cf.Key, cf, v, src)
			}
			delete(want, cf.Key)
		}
	}
	if len(want) != 0 {
		t.Errorf("not described: %v", want)
	}
}

// TestTxnConsumeTransformProduce: kgo's GroupTransactSession reads
// "in", writes "out" and commits the consumed offsets in the same
// transaction (AddOffsetsToTxn, TxnOffsetCommit); every input record
// appears exactly once in read_committed output, and the group's
// committed offsets cover the input.
func TestTxnConsumeTransformProduce(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.createTopic("in", 2)
	c.createTopic("out", 2)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	p := c.client()
	const n = 40
	for i := range n {
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte(fmt.Sprintf("v%02d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	wl := newWireLog()
	sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.WithLogger(wl)},
		kgo.TransactionalID("ctp"), kgo.TransactionTimeout(10*time.Second),
		kgo.ConsumerGroup("ctp-group"), kgo.ConsumeTopics("in"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done := 0
	for round := 0; done < n; round++ {
		if ctx.Err() != nil {
			t.Fatalf("transformed %d of %d", done, n)
		}
		fs := sess.PollFetches(ctx)
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		var batch int
		fs.EachRecord(func(r *kgo.Record) {
			batch++
			sess.Produce(ctx, &kgo.Record{Topic: "out", Value: append([]byte("t-"), r.Value...)}, nil)
		})
		// Abort every third round: its input is read again.
		commit := round%3 != 2
		committed, err := sess.End(ctx, kgo.TransactionEndTry(commit))
		if err != nil {
			t.Fatalf("round %d: end: %v", round, err)
		}
		if committed {
			done += batch
		}
	}
	got := consumeValues(t, c, "out", n, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	for i, v := range got {
		if want := fmt.Sprintf("t-v%02d", i); v != want {
			t.Fatalf("output %d is %q, want %q (all: %v)", i, v, want, got)
		}
	}
	// KIP-890 part 2: the group joins the transaction with the offset
	// commit itself, and every end bumps the epoch.
	if !wl.has("TxnOffsetCommit", 5) || wl.sentAny("AddOffsetsToTxn") || !wl.has("EndTxn", 5) {
		t.Fatalf("session sent %s; want TxnOffsetCommit v5, EndTxn v5, no AddOffsetsToTxn", wl)
	}
	offs, err := c.admin().FetchOffsets(ctx, "ctp-group")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Fatalf("committed offsets sum to %d, want %d: %v", sum, n, offs)
	}
}

// TestTxnFailover: on 3 nodes, the transaction coordinator (controller
// leader) and then a partition leader stop in the middle of transactions;
// each transaction still commits whole, and read_committed readers see
// every committed record once.
func TestTxnFailover(t *testing.T) {
	// A quick timeout pass: an EndTxn lost with the coordinator leaves the
	// transaction ongoing until its timeout aborts it.
	c := startCluster(t, 3, func(nc *node.Config) { nc.TxnTimeoutCheckInterval = 200 * time.Millisecond })
	c.createTopic("fo", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 6*testWait)
	defer cancel()
	cl := txnClient(c, "fo-id", kgo.RequestRetries(50), kgo.TransactionTimeout(time.Minute))
	begin := func(tag string) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "fo", Value: []byte(fmt.Sprintf("%s%d", tag, i))}).FirstErr(); err != nil {
				t.Fatalf("%s%d: %v", tag, i, err)
			}
		}
	}
	// 1: the coordinator stops between the produces and EndTxn.
	begin("a")
	coord := controllerOf(t, c)
	c.stop(coord)
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit after the coordinator stopped: %v", err)
	}
	c.restart(coord)
	c.waitBrokers(3)
	// 2: a partition leader (not the coordinator: that was case 1) stops
	// between the produces and EndTxn.
	begin("b")
	leader := c.leaderOf("fo", 0)
	if coord := controllerOf(t, c); leader == coord {
		leader = coord%3 + 1 // another replica (rf 3), maybe leading other partitions
	}
	c.stop(leader)
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit after a partition leader stopped: %v", err)
	}
	c.restart(leader)
	c.waitBrokers(3)
	for p := int32(0); p < 3; p++ {
		c.leaderOf("fo", p)
	}
	// 3: the coordinator stops while EndTxn is in flight (before, during
	// or after the decision is replicated): all of the transaction or
	// none of it, and all of it if the client was told it committed.
	begin("c")
	coord = controllerOf(t, c)
	ended := make(chan error, 1)
	go func() { ended <- cl.EndTransaction(ctx, kgo.TryCommit) }()
	time.Sleep(2 * time.Millisecond)
	c.stop(coord)
	endErr := <-ended
	c.restart(coord)
	c.waitBrokers(3)
	all, none := "[a0 a1 a2 a3 a4 a5 b0 b1 b2 b3 b4 b5 c0 c1 c2 c3 c4 c5]", "[a0 a1 a2 a3 a4 a5 b0 b1 b2 b3 b4 b5]"
	if endErr == nil {
		if got := consumeValues(t, c, "fo", 18, kgo.FetchIsolationLevel(kgo.ReadCommitted())); fmt.Sprint(got) != all {
			t.Fatalf("read_committed got %v, want %s", got, all)
		}
		return
	}
	// The outcome is unknown to the client. A new instance fences it and
	// aborts the transaction if it was not decided; either way it must be
	// whole.
	t.Logf("EndTxn while the coordinator stopped: %v", endErr)
	txnProduce(t, txnClient(c, "fo-id"), "fo", false, "d0")
	got := consumeValues(t, c, "fo", 12, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if s := fmt.Sprint(got); s != all && s != none {
		t.Fatalf("read_committed got %v: part of a transaction", got)
	}
}

// BenchmarkTxnCommit measures committed transactions per second through
// kgo on one node and three (one record per transaction, to 3
// partitions), with producers transacting in parallel, each under its
// own transactional id: the coordinator's cost is what it measures.
func BenchmarkTxnCommit(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, producers := range []int{1, 8} {
			b.Run(fmt.Sprintf("nodes=%d/producers=%d", nodes, producers), func(b *testing.B) {
				c := startCluster(b, nodes, nil)
				c.createTopic("bench", 3)
				ctx := context.Background()
				cls := make([]*kgo.Client, producers)
				for i := range cls {
					cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID(fmt.Sprintf("bench-%d", i)),
						kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
					if err != nil {
						b.Fatal(err)
					}
					defer cl.Close()
					cls[i] = cl
				}
				b.ResetTimer()
				errs := make(chan error, producers)
				for i, cl := range cls {
					go func() {
						for j := i; j < b.N; j += producers {
							if err := cl.BeginTransaction(); err != nil {
								errs <- err
								return
							}
							if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "bench", Value: []byte("x")}).FirstErr(); err != nil {
								errs <- err
								return
							}
							if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
								errs <- err
								return
							}
						}
						errs <- nil
					}()
				}
				for range cls {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
			})
		}
	}
}

// dumpTxnState logs every replica's high watermark, last stable offset
// and producers of topic's partitions (for a failing test).
func dumpTxnState(t *testing.T, c *testCluster, topic string) {
	for id := uint64(1); id <= uint64(len(c.addrs)); id++ {
		b := c.broker(id)
		if b == nil {
			continue
		}
		for p := int32(0); p < 3; p++ {
			r := b.Node.FetchLocal(topic, p, 0, 1)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ps, code := b.Node.Producers(ctx, topic, p)
			cancel()
			t.Logf("b%d %s/%d: code %d hw %d lso %d start %d producers(code %d) %+v", id, topic, p, r.ErrorCode, r.HighWatermark, r.LastStableOffset, r.LogStartOffset, code, ps)
			ctx, cancel = context.WithTimeout(context.Background(), time.Second)
			fc := b.Node.FetchCommitted(ctx, topic, p, 0, 1<<20)
			md := b.Node.Metadata(ctx, []string{topic})
			cancel()
			t.Logf("  read_committed: code %d records %d bytes aborted %+v lso %d; metadata %+v", fc.ErrorCode, len(fc.Records), fc.AbortedTxns, fc.LastStableOffset, md.Topics)
		}
	}
}

// controllerOf waits until the cluster names a controller leader.
func controllerOf(t *testing.T, c *testCluster) uint64 {
	var id int32 = -1
	eventually(t, testWait, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		id = c.anyBroker().Node.Metadata(ctx, nil).ControllerID
		return id >= 0
	}, "a controller leader")
	return uint64(id)
}

// TestTxnIDExpiry: an idle transactional id is forgotten after
// transactional.id.expiration.ms; its next producer starts afresh.
func TestTxnIDExpiry(t *testing.T) {
	c := startCluster(t, 1, func(nc *node.Config) {
		nc.TxnTimeoutCheckInterval = 100 * time.Millisecond
		nc.TxnIDExpiration = time.Second
	})
	c.createTopic("exp", 1)
	cl := txnClient(c, "idle-id")
	txnProduce(t, cl, "exp", true, "e1")
	cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	adm := c.admin()
	eventually(t, testWait, func() bool {
		dt, err := adm.DescribeTransactions(ctx, "idle-id")
		return err == nil && errors.Is(dt["idle-id"].Err, kerr.TransactionalIDNotFound)
	}, "the idle transactional id expires")
	txnProduce(t, txnClient(c, "idle-id"), "exp", true, "e2")
	if got := consumeValues(t, c, "exp", 2, kgo.FetchIsolationLevel(kgo.ReadCommitted())); fmt.Sprint(got) != "[e1 e2]" {
		t.Fatalf("read_committed got %v", got)
	}
}
