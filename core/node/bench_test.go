package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/plog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
)

// countingFS counts File.Sync and SyncDir calls (fsyncs) on an FS.
type countingFS struct {
	diskio.FS
	syncs *atomic.Int64
}

type countingFile struct {
	diskio.File
	syncs *atomic.Int64
}

func (f countingFile) Sync() error { f.syncs.Add(1); return f.File.Sync() }

func (c countingFS) wrap(f diskio.File, err error) (diskio.File, error) {
	if err != nil {
		return nil, err
	}
	return countingFile{f, c.syncs}, nil
}
func (c countingFS) Create(n string) (diskio.File, error) { return c.wrap(c.FS.Create(n)) }
func (c countingFS) CreateExclusive(n string) (diskio.File, error) {
	return c.wrap(c.FS.CreateExclusive(n))
}
func (c countingFS) Open(n string) (diskio.File, error)   { return c.wrap(c.FS.Open(n)) }
func (c countingFS) OpenRW(n string) (diskio.File, error) { return c.wrap(c.FS.OpenRW(n)) }
func (c countingFS) SyncDir(d string) error               { c.syncs.Add(1); return c.FS.SyncDir(d) }

func freePort(b *testing.B) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const (
	benchRecordBytes  = 1024
	benchBatchRecords = 16
	benchProducers    = 16
)

func BenchmarkProduce(b *testing.B) {
	for _, size := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", size), func(b *testing.B) { benchProduce(b, size) })
	}
}

func benchProduce(b *testing.B, size int) {
	captureRaftLog(b)
	peers := map[uint64]string{}
	for id := uint64(1); id <= uint64(size); id++ {
		peers[id] = fmt.Sprintf("127.0.0.1:%d", freePort(b))
	}
	var syncs atomic.Int64
	osfs := diskio.NewOS()
	dir := b.TempDir()
	nodes := map[uint64]*Node{}
	for id := uint64(1); id <= uint64(size); id++ {
		n, err := Start(context.Background(), Config{
			NodeID: id, RaftAddr: peers[id], Host: "127.0.0.1", Port: int32(9092 + id), Peers: peers,
			DataDir: fmt.Sprintf("%s/n%d", dir, id), FS: countingFS{osfs, &syncs}, Net: netio.NewOS(),
			Clock: clock.Real(), Logger: slog.New(slog.DiscardHandler),
			Log: plog.Options{SegmentBytesMax: 64 << 20},
		})
		if err != nil {
			b.Fatal(err)
		}
		nodes[id] = n
		defer n.Close(context.Background())
	}
	n1 := nodes[1]
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		r := n1.CreateTopics(ctx, []TopicSpec{{Name: "bench", Partitions: 1, ReplicationFactor: int16(size)}}, false)[0]
		cancel()
		if r.ErrorCode == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	leader := func() *Node {
		for _, id := range sortedIDs(nodes) {
			if pt, ok := partitionOf(nodes[id].view(), "bench", 0); ok {
				if _, ok := nodes[id].leaderTerm(pt.ShardID); ok {
					return nodes[id]
				}
			}
		}
		return nil
	}
	payload := batch(-1, 0, benchBatchRecords, benchRecordBytes, time.Now().UnixMilli())
	var l *Node
	for l == nil || l.Produce(context.Background(), "bench", 0, payload).ErrorCode != 0 {
		if time.Now().After(deadline) {
			b.Fatal("no partition leader")
		}
		time.Sleep(50 * time.Millisecond)
		l = leader()
	}

	var failures atomic.Int64
	var next atomic.Int64
	syncs.Store(0)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range benchProducers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if r := l.Produce(ctx, "bench", 0, payload); r.ErrorCode != 0 {
					failures.Add(1)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed, "entries/s")
	b.ReportMetric(float64(b.N*benchBatchRecords)/elapsed, "records/s")
	b.ReportMetric(float64(b.N)*float64(len(payload))/elapsed/(1<<20), "MiB/s")
	b.ReportMetric(float64(syncs.Load())/elapsed, "fsyncs/s")
	b.ReportMetric(float64(failures.Load()), "failed")
}
