package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/chronik-go/chronik/diskio"
)

// tanChunkBytes encodes one legacy full chunk the way tan's writer does.
func tanChunkBytes(payload []byte) []byte {
	b := make([]byte, tanHeaderSize+len(payload))
	binary.LittleEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = 1 // full chunk
	copy(b[7:], payload)
	binary.LittleEndian.PutUint32(b[0:], uint32(xxhash.Sum64(b[6:])))
	return b
}

// tanLog lays records out as tan does: chunks packed in 32 KiB blocks, a
// block's unused tail zero-padded when the next chunk does not fit.
func tanLog(records ...[]byte) []byte {
	var out []byte
	for _, r := range records {
		c := tanChunkBytes(r)
		if left := tanBlockSize - len(out)%tanBlockSize; left < len(c) {
			out = append(out, make([]byte, left)...)
		}
		out = append(out, c...)
	}
	return out
}

func TestTornTailOffset(t *testing.T) {
	rec := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	clean := tanLog(rec(100, 'a'), rec(2000, 'b'), rec(30000, 'c'), rec(500, 'd'))
	lastStart := int64(len(clean) - tanHeaderSize - 500)

	torn := slices.Clone(clean)
	torn[len(torn)-1] ^= 0xff // the last payload byte never made it

	garbage := slices.Clone(clean)
	copy(garbage[lastStart:], []byte{0xde, 0xad, 0xbe, 0xef, 0x10, 0x00, 0x01}) // a header of noise, length 16

	zeroed := append(slices.Clone(clean), make([]byte, 64)...)

	short := append(slices.Clone(clean), tanChunkBytes(rec(300, 'e'))[:50]...)

	midLog := tanLog(rec(100, 'a'), rec(30000, 'b'), rec(30000, 'c'), rec(100, 'd'))
	midLog[200] ^= 0xff // inside the second record, block 0; block 1 starts with a valid chunk

	cases := []struct {
		name    string
		data    []byte
		want    int64
		corrupt bool
	}{
		{"clean", clean, -1, false},
		{"empty", nil, -1, false},
		{"torn last chunk", torn, lastStart, false},
		{"garbage header", garbage, lastStart, false},
		{"zeroed tail (tan drops it)", zeroed, -1, false},
		{"short chunk (tan drops it)", short, -1, false},
		{"checksum failure before valid data", midLog, -1, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tornTailOffset(tc.data)
			if tc.corrupt != errors.Is(err, errCorruptRaftLog) {
				t.Fatalf("err = %v, corrupt want %v", err, tc.corrupt)
			}
			if got != tc.want {
				t.Fatalf("offset = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestRepairRaftLogTails: only the newest log of each directory is
// truncated, at the torn chunk, and durably.
func TestRepairRaftLogTails(t *testing.T) {
	disk := diskio.NewSim(1)
	write := func(name string, data []byte) {
		if err := disk.MkdirAll(path.Dir(name)); err != nil {
			t.Fatal(err)
		}
		f, err := disk.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Append(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	good := tanLog([]byte("one"), []byte("two"))
	torn := append(slices.Clone(good), tanChunkBytes([]byte("three"))...)
	torn[len(torn)-1] ^= 1
	write("nh/tandb/node-1-1/000001.log", torn) // older file: not the tail, left alone
	write("nh/tandb/node-1-1/000002.log", torn)
	write("nh/tandb/node-2-1/000005.log", good)
	var logs strings.Builder
	if err := repairRaftLogTails(disk, "nh", slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{
		"nh/tandb/node-1-1/000001.log": torn,
		"nh/tandb/node-1-1/000002.log": good,
		"nh/tandb/node-2-1/000005.log": good,
	} {
		got, err := disk.DurableFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d durable bytes (err %v), want %d", name, len(got), err, len(want))
		}
	}
	if !strings.Contains(logs.String(), "truncating a torn tail") {
		t.Errorf("no log line for the repair: %q", logs.String())
	}
	if err := repairRaftLogTails(disk, "missing", slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("a missing NodeHost directory: %v", err)
	}
}

// TestRestartAfterTornRaftLogTail: a node whose newest Raft log ends in a
// chunk with a failing checksum (a power cut mid-write) restarts and
// serves everything it had; without the repair dragonboat refuses to open
// the log (tan: crc mismatch) and the node can never start again.
func TestRestartAfterTornRaftLogTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, before := stoppedNodeWithData(t, 3)
		defer c.closeAll()

		disk := c.disks[1]
		var tails []string
		for dir, logs := range tanLogsByDir(t, disk, "data/nodehost") {
			name := logs[len(logs)-1]
			f, err := disk.OpenRW(name)
			if err != nil {
				t.Fatal(err)
			}
			torn := tanChunkBytes(bytes.Repeat([]byte{'x'}, 200))
			torn[len(torn)-1] ^= 0xff
			if _, err := f.Append(torn); err != nil {
				t.Fatal(err)
			}
			f.Close()
			tails = append(tails, dir)
		}
		if len(tails) == 0 {
			t.Fatal("no tan log files found under data/nodehost")
		}
		c.start(1)
		c.produce("t", 0, batch(-1, 0, 1, 10, 9), 20*time.Second)
		after, _ := fetchAll(t, c.node(1), "t", 0)
		if !bytes.HasPrefix(after, before) || len(after) <= len(before) {
			t.Fatalf("after restart: %d bytes, before %d", len(after), len(before))
		}
	})
}

// tanLogsByDir maps each directory under root holding tan log files to
// them, sorted.
func tanLogsByDir(t *testing.T, fs diskio.FS, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var walk func(dir string)
	walk = func(dir string) {
		names, err := fs.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			p := path.Join(dir, name)
			if st, err := fs.Stat(p); err == nil && st.IsDir {
				walk(p)
			} else if strings.HasSuffix(name, tanLogSuffix) {
				out[dir] = append(out[dir], p)
			}
		}
		slices.Sort(out[dir])
	}
	walk(root)
	return out
}

// stoppedNodeWithData runs a one-node cluster, writes 15 records to
// partition t/0 (shard 1000), stops the node cleanly and returns the
// cluster and the partition's bytes as served before the stop.
func stoppedNodeWithData(t *testing.T, seed int64) (*cluster, []byte) {
	t.Helper()
	c := newCluster(t, seed, 1)
	c.createTopic("t", 1, 1)
	for i := range 5 {
		c.produce("t", 0, batch(-1, 0, 3, 100, int64(i)), 20*time.Second)
	}
	before, _ := fetchAll(t, c.node(1), "t", 0)
	c.stop(1)
	return c, before
}
