package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kcat (librdkafka) against a single-node chronik binary: metadata,
// produce with every codec, consume and compare exactly, and a consumer
// group that consumes everything exactly once.
//
// Without kcat on PATH the tests skip, unless CHRONIK_REQUIRE_KCAT=1 (CI),
// which makes a missing kcat a failure.

const kcatTimeout = 60 * time.Second

func kcatPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"kcat", "kafkacat"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CHRONIK_REQUIRE_KCAT") == "1" {
		t.Fatal("kcat is not installed but CHRONIK_REQUIRE_KCAT=1 (install it: apt-get install -y kcat)")
	}
	t.Skip("kcat is not installed (apt-get install -y kcat); skipping the kcat compatibility tests. Set CHRONIK_REQUIRE_KCAT=1 to make this a failure.")
	return ""
}

// kcat runs kcat with args and stdin, bounded by kcatTimeout, and returns
// stdout; a non-zero exit or an error line on stderr fails the test.
func kcat(t *testing.T, bin string, stdin string, args ...string) string {
	t.Helper()
	return kcatRun(t, bin, stdin, kcatTimeout, args...)
}

func kcatBounded(t *testing.T, bin string, timeout time.Duration, args ...string) string {
	t.Helper()
	return kcatRun(t, bin, "", timeout, args...)
}

func kcatRun(t *testing.T, bin string, stdin string, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kcat %v: no exit within %v\nstdout:\n%s\nstderr:\n%s", args, timeout, stdout.String(), stderr.String())
	}
	if err != nil || strings.Contains(stderr.String(), "ERROR") || strings.Contains(stderr.String(), "failed") {
		t.Fatalf("kcat %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func startKcatBroker(t *testing.T) (*chaosCluster, string) {
	t.Helper()
	c := newChaosCluster(t, 1)
	c.startAll()
	requireAPIs(t, c.nodes[0].kafka, kmsg.Metadata.Int16(), kmsg.Produce.Int16(), kmsg.Fetch.Int16(),
		kmsg.ListOffsets.Int16(), kmsg.CreateTopics.Int16(), kmsg.FindCoordinator.Int16(), kmsg.JoinGroup.Int16(),
		kmsg.SyncGroup.Int16(), kmsg.Heartbeat.Int16(), kmsg.OffsetCommit.Int16(), kmsg.OffsetFetch.Int16())
	return c, c.nodes[0].kafka
}

func createTopic(t *testing.T, c *chaosCluster, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(c.client())
	if r, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
}

func kcatLines(prefix string, n int) (in string, lines []string) {
	var b strings.Builder
	for i := 0; i < n; i++ {
		l := fmt.Sprintf("%s-key-%03d:%s value %03d with some repeated text repeated text repeated text", prefix, i%7, prefix, i)
		lines = append(lines, l)
		b.WriteString(l + "\n")
	}
	return b.String(), lines
}

func TestKcat(t *testing.T) {
	if testing.Short() {
		t.Skip("kcat: real processes; skipped in -short")
	}
	bin := kcatPath(t)
	c, addr := startKcatBroker(t)

	t.Run("metadata", func(t *testing.T) {
		createTopic(t, c, "kcat-meta", 3)
		out := kcat(t, bin, "", "-L", "-J", "-b", addr)
		var md struct {
			Brokers []struct {
				ID   int32  `json:"id"`
				Name string `json:"name"`
			} `json:"brokers"`
			Topics []struct {
				Topic      string `json:"topic"`
				Partitions []struct {
					Partition int32 `json:"partition"`
					Leader    int32 `json:"leader"`
				} `json:"partitions"`
			} `json:"topics"`
		}
		if err := json.Unmarshal([]byte(out), &md); err != nil {
			t.Fatalf("kcat -L -J output: %v\n%s", err, out)
		}
		if len(md.Brokers) != 1 || md.Brokers[0].ID != 1 || md.Brokers[0].Name != addr {
			t.Fatalf("brokers %+v, want one: 1 at %s", md.Brokers, addr)
		}
		found := false
		for _, tp := range md.Topics {
			if tp.Topic != "kcat-meta" {
				continue
			}
			found = true
			if len(tp.Partitions) != 3 {
				t.Fatalf("kcat-meta partitions %+v", tp.Partitions)
			}
			for _, p := range tp.Partitions {
				if p.Leader != 1 {
					t.Fatalf("kcat-meta partition %d leader %d", p.Partition, p.Leader)
				}
			}
		}
		if !found {
			t.Fatalf("kcat -L does not list kcat-meta:\n%s", out)
		}
		plain := kcat(t, bin, "", "-L", "-b", addr)
		if !strings.Contains(plain, "broker 1 at "+addr) {
			t.Fatalf("kcat -L:\n%s", plain)
		}
	})

	// Produce with each codec, consume with kcat and compare exactly, and
	// check with kgo that the stored batches carry that codec (librdkafka
	// silently sends uncompressed when the advertised versions do not
	// allow the codec).
	codecs := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run("produce-consume-"+codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, c, topic, 1)
			in, lines := kcatLines(codec, 200)
			args := []string{"-P", "-b", addr, "-t", topic, "-K:", "-X", "linger.ms=20"}
			if codec != "none" {
				args = append(args, "-z", codec)
			}
			kcat(t, bin, in, args...)
			// -c bounds the run by the record count as well: -e alone
			// needs a partition EOF, which the consume-eof test checks.
			out := kcat(t, bin, "", "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-c", strconv.Itoa(len(lines)), "-q", "-f", "%k:%s\n")
			if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(lines, "\n") {
				t.Fatalf("kcat consumed %d lines, want %d; first difference: %s", len(got), len(lines), firstDiff(got, lines))
			}
			if got := storedCodecs(t, c, topic, len(lines)); len(got) != 1 || !got[codecs[codec]] {
				t.Errorf("produced with -z %s, but the stored batches use codecs %v (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd)", codec, got)
			}
		})
	}

	t.Run("group", func(t *testing.T) {
		topic, group := "kcat-group", "kcat-g"
		createTopic(t, c, topic, 3)
		in, lines := kcatLines("grp", 300)
		kcat(t, bin, in, "-P", "-b", addr, "-t", topic, "-K:")
		out := kcat(t, bin, "", "-b", addr, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-c", strconv.Itoa(len(lines)), "-q", "-f", "%k:%s\n", topic)
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		want := map[string]int{}
		for _, l := range lines {
			want[l]++
		}
		for _, l := range got {
			want[l]--
		}
		for l, n := range want {
			if n != 0 {
				t.Fatalf("group consumed %d lines; %q seen %d times too few", len(got), l, n)
			}
		}
		// Everything was committed: the group's offsets are at the end, and
		// a second run in the same group reads nothing.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		adm := kadm.NewClient(c.client())
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := offs.Lookup(topic, e.Partition); !ok || o.At != e.Offset {
				t.Errorf("partition %d: committed %+v, end %d", e.Partition, o, e.Offset)
			}
		})
	})

	// kcat -e exits at the end of every partition: librdkafka needs a
	// well-formed empty fetch answer (partition EOF) for that.
	t.Run("consume-eof", func(t *testing.T) {
		topic := "kcat-eof"
		createTopic(t, c, topic, 1)
		in, lines := kcatLines("eof", 10)
		kcat(t, bin, in, "-P", "-b", addr, "-t", topic, "-K:")
		out := kcatBounded(t, bin, 15*time.Second, "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k:%s\n")
		if got := strings.TrimSuffix(out, "\n"); got != strings.Join(lines, "\n") {
			t.Fatalf("kcat -C -e consumed %q", got)
		}
	})
}

func firstDiff(got, want []string) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("line %d: got %q want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d vs %d", len(got), len(want))
}

// storedCodecs reads n records of partition 0 with kgo and returns the
// compression codecs of their batches.
func storedCodecs(t *testing.T, c *chaosCluster, topic string, n int) map[uint8]bool {
	t.Helper()
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := map[uint8]bool{}
	for seen := 0; seen < n; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kgo read %d of %d records of %s", seen, n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Attrs.CompressionType()] = true
			seen++
		})
	}
	return got
}
