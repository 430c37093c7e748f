package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestServeStopsOnFullDisk runs the real binary with RLIMIT_FSIZE set (a
// write that would grow a file past the limit fails with EFBIG, as on a
// full disk). The process must stop with exit status 74 and one clear log
// line instead of going on or panicking, and after a restart without the
// limit it must serve every record it acknowledged, once and in order.
func TestServeStopsOnFullDisk(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("RLIMIT_FSIZE is set only on Linux")
	}
	const (
		limit    = 4 << 20
		topic    = "full"
		batch    = 64
		valueLen = 1024
		maxBytes = 16 * limit // far past the limit: the stop must come first
	)
	dir := filepath.Join(t.TempDir(), "data")
	raftAddr := freePort(t) // a data directory belongs to its Raft address
	p := launchProcessEnv(t, dir, []string{fileSizeLimitEnv + "=" + strconv.Itoa(limit)}, "--raft-addr", raftAddr)
	p.waitReady(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*processWait)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka), kgo.DefaultProduceTopic(topic),
		kgo.RecordDeliveryTimeout(5*time.Second), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // the values would compress to nothing
		// An idempotent producer retries an in-flight batch for as long as
		// the broker is away (failing it could break its sequence numbers);
		// this test wants the failures once the broker is gone.
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	value := func(seq int) []byte {
		v := fmt.Sprintf("v%09d-", seq)
		return []byte(v + strings.Repeat("x", valueLen-len(v)))
	}
	var acked []string
	seq, failed := 0, false
	for seq*valueLen < maxBytes && !failed {
		recs := make([]*kgo.Record, batch)
		for i := range recs {
			recs[i] = &kgo.Record{Value: value(seq)}
			seq++
		}
		for _, r := range cl.ProduceSync(ctx, recs...) {
			if r.Err != nil {
				failed = true
				continue
			}
			acked = append(acked, string(r.Record.Value))
		}
	}
	if !failed {
		t.Fatalf("wrote %d bytes through a %d-byte file size limit without an error", seq*valueLen, limit)
	}
	select {
	case <-p.exited:
	case <-time.After(processWait):
		t.Fatalf("the process did not stop within %v of the storage failure", processWait)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != exitStorageFailure {
		t.Fatalf("exit status %d after a full disk, want %d; output:\n%s", code, exitStorageFailure, p.out.String())
	}
	if !strings.Contains(p.out.String(), "storage failure") {
		t.Fatalf("no storage failure log line; output:\n%s", p.out.String())
	}
	if strings.Contains(p.out.String(), "panic") {
		t.Fatalf("the process panicked instead of stopping cleanly; output:\n%s", p.out.String())
	}
	t.Logf("acknowledged %d of %d records (%d KiB) before the stop", len(acked), seq, len(acked)*valueLen>>10)
	cl.Close()

	p2 := startProcess(t, dir, "--raft-addr", raftAddr)
	rd, err := kgo.NewClient(kgo.SeedBrokers(p2.kafka),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	// The partition elects its leader after /readyz (which covers the
	// controller and this node's registration): ask until it answers.
	var end kadm.ListedOffset
	for {
		ends, err := kadm.NewClient(rd).ListEndOffsets(ctx, topic)
		if err == nil {
			if e, ok := ends.Lookup(topic, 0); ok && e.Err == nil {
				end = e
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no end offset after restart: %v", err)
		case <-time.After(50 * time.Millisecond): // retry interval while the partition elects a leader
		}
	}
	if end.Offset < int64(len(acked)) {
		t.Fatalf("high watermark %d after restart < %d acknowledged records", end.Offset, len(acked))
	}
	var got []string
	for int64(len(got)) < end.Offset {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records after restart: %v", len(got), end.Offset, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch error (retried): %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	// Acknowledged records come first, in order; records whose answer was
	// lost in the stop may follow (written is not acknowledged).
	for i, v := range acked {
		if got[i] != v {
			t.Fatalf("offset %d holds %.10q after restart, want acknowledged %.10q", i, got[i], v)
		}
	}
	seen := map[string]bool{}
	for i, v := range got {
		if seen[v] {
			t.Fatalf("value %.10q twice (again at offset %d)", v, i)
		}
		seen[v] = true
	}
}
