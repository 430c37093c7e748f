package main

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// beMain makes the test binary act as the chronik binary when re-executed
// by startProcess, so these tests run the real main (flags, signals, exit
// codes) without a separate build step.
const beMainEnv = "CHRONIK_TEST_BE_MAIN"

// fileSizeLimitEnv, in a re-executed child, sets RLIMIT_FSIZE to its value
// in bytes before main runs (limitFileSize).
const fileSizeLimitEnv = "CHRONIK_TEST_FSIZE_LIMIT"

func TestMain(m *testing.M) {
	if os.Getenv(beMainEnv) == "1" {
		if v := os.Getenv(fileSizeLimitEnv); v != "" {
			limitFileSize(v)
		}
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

const processWait = 30 * time.Second

// handedOut holds every port freePort has returned in this process.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

type process struct {
	cmd    *exec.Cmd
	kafka  string
	http   string
	out    *strings.Builder
	exited chan error
}

// freePort returns a free loopback address whose port lies below the
// kernel's ephemeral range (32768-60999 on Linux): processes are killed and
// restarted on their ports, and an ephemeral port released meanwhile may be
// taken by any outgoing connection of a test running in parallel. The
// range [26000, 32000) is this package's; the server package's tests use
// [20000, 26000).
//
// No port is returned twice in one process: a returned port stays free
// until its process binds it, and two picks of one port would give two
// brokers one address.
func freePort(t testing.TB) string {
	t.Helper()
	for range 200 {
		port := 26000 + rand.IntN(6000)
		handedOut.Lock()
		taken := handedOut.ports[port]
		handedOut.ports[port] = true
		handedOut.Unlock()
		if taken {
			continue
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("no free port for a test process")
	return ""
}

// startProcess runs `chronik serve` as a child process on dataDir and waits
// until /readyz answers 200.
func startProcess(t testing.TB, dataDir string, extra ...string) *process {
	t.Helper()
	p := launchProcess(t, dataDir, extra...)
	p.waitReady(t)
	return p
}

// launchProcess runs `chronik serve` as a child process on dataDir without
// waiting for it to be ready (the nodes of a cluster are ready only once a
// quorum runs); extra flags override the defaults. The process is killed at
// cleanup.
func launchProcess(t testing.TB, dataDir string, extra ...string) *process {
	t.Helper()
	return launchProcessEnv(t, dataDir, nil, extra...)
}

// launchProcessEnv is launchProcess with extra environment variables.
func launchProcessEnv(t testing.TB, dataDir string, env []string, extra ...string) *process {
	t.Helper()
	p := &process{kafka: freePort(t), http: freePort(t), out: &strings.Builder{}, exited: make(chan error, 1)}
	args := append([]string{"serve", "--data-dir", dataDir, "--kafka-addr", p.kafka, "--raft-addr", freePort(t), "--http-addr", p.http, "--log-level", "warn"}, extra...)
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(append(os.Environ(), beMainEnv+"=1"), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			if os.Getenv("CHRONIK_CPUPROFILE") != "" || os.Getenv("CHRONIK_MEMPROFILE") != "" {
				// A profile is written on a graceful stop only.
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case err := <-p.exited:
					p.exited <- err
				case <-time.After(20 * time.Second):
				}
			}
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("process output:\n%s", p.out.String())
		}
	})
	return p
}

// waitReady waits until p's /readyz answers 200, failing if p exits first
// or is not ready within processWait.
func (p *process) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(processWait)
	for {
		resp, err := http.Get("http://" + p.http + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.exited:
			t.Fatalf("chronik exited before ready: %v", err)
		case <-time.After(50 * time.Millisecond): // poll interval for readiness, bounded by deadline
		}
		if time.Now().After(deadline) {
			t.Fatalf("chronik not ready within %v", processWait)
		}
	}
}

// signal sends sig and returns the exit code, failing if the process does
// not exit within processWait.
func (p *process) signal(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(processWait):
		t.Fatalf("no exit within %v of %v", processWait, sig)
		return -1
	}
}

func TestServeAnswersAndStopsOnSIGTERM(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startProcess(t, dir)

	cl, err := kgo.NewClient(kgo.SeedBrokers(p.kafka))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	resp, err := cl.Request(ctx, kmsg.NewPtrApiVersionsRequest())
	cl.Close()
	if err != nil || resp.(*kmsg.ApiVersionsResponse).ErrorCode != 0 {
		t.Fatalf("ApiVersions against the binary: %v %+v", err, resp)
	}

	m, err := http.Get("http://" + p.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	m.Body.Close()
	for _, want := range []string{`chronik_requests_total{api="ApiVersions"}`, "# TYPE chronik_raft_tick_batches_total counter", "chronik_raft_ticks_batched_total "} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if code := p.signal(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("data directory not created: %v", err)
	}
}
