package wal

import (
	"fmt"
	"sync"
	"testing"

	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/chronik-go/chronik/diskio"
)

// BenchmarkSaveRaftState: writers (one shard each, as dragonboat's step
// workers) save one entry of entryBytes per call on the real disk; the
// group commit shares fsyncs between them. Reports fsyncs per call.
func BenchmarkSaveRaftState(b *testing.B) {
	for _, writers := range []int{1, 8, 64} {
		for _, entryBytes := range []int{1 << 10, 16 << 10} {
			b.Run(fmt.Sprintf("writers=%d/entry=%d", writers, entryBytes), func(b *testing.B) {
				benchSave(b, writers, entryBytes)
			})
		}
	}
}

func benchSave(b *testing.B, writers, entryBytes int) {
	fs := diskio.NewOS()
	w, err := Open(fs, b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	cmd := make([]byte, entryBytes)
	per := b.N/writers + 1
	b.SetBytes(int64(entryBytes))
	b.ResetTimer()
	var wg sync.WaitGroup
	for s := 1; s <= writers; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= per; i++ {
				u := pb.Update{ShardID: uint64(s), ReplicaID: 1, State: pb.State{Term: 1, Commit: uint64(i)},
					EntriesToSave: []pb.Entry{{Index: uint64(i), Term: 1, Cmd: cmd}}}
				if err := w.SaveRaftState([]pb.Update{u}, uint64(s)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(w.seq)/float64(per*writers), "batches/call")
}
