package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The real-process harness: a cluster of `chronik serve` child processes
// on loopback, each with fixed ports and a data directory kept across
// restarts, its output captured (in memory and in a log file per node).

// lockedBuffer is an io.Writer safe to read while the child writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	f   *os.File // a copy on disk, kept for post-mortems; may be nil
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f != nil {
		_, _ = b.f.Write(p)
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n lines.
func (b *lockedBuffer) tail(n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// chaosNode is one cluster member: fixed addresses, a data directory, and
// at most one running incarnation at a time.
type chaosNode struct {
	id                    uint64
	kafka, http, raft     string
	dir                   string
	out                   *lockedBuffer
	incarnation           int
	cmd                   *exec.Cmd
	exited                chan struct{} // closed when the current incarnation exits
	exitErr               error
	procMu                sync.Mutex
	extraArgs, clusterArg []string
}

type chaosCluster struct {
	t     *testing.T
	nodes []*chaosNode // index i holds node id i+1
}

// newChaosCluster allocates ports and data directories for n nodes (n=1:
// a single node with no --peers) without starting them.
func newChaosCluster(t *testing.T, n int) *chaosCluster {
	t.Helper()
	c := &chaosCluster{t: t}
	base := t.TempDir()
	logDir := base
	if d := os.Getenv("CHAOS_LOG_DIR"); d != "" {
		// Logs that outlive the test (the data directories do not).
		logDir = filepath.Join(d, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var peers []string
	for i := 1; i <= n; i++ {
		nd := &chaosNode{
			id: uint64(i), kafka: freePort(t), http: freePort(t), raft: freePort(t),
			dir: filepath.Join(base, fmt.Sprintf("n%d", i)), out: &lockedBuffer{},
		}
		f, err := os.Create(filepath.Join(logDir, fmt.Sprintf("n%d.log", i)))
		if err == nil {
			nd.out.f = f
		}
		c.nodes = append(c.nodes, nd)
		peers = append(peers, fmt.Sprintf("%d=%s", i, nd.raft))
	}
	if n > 1 {
		for _, nd := range c.nodes {
			nd.clusterArg = []string{"--peers", strings.Join(peers, ",")}
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.killIfRunning()
			if nd.out.f != nil {
				nd.out.f.Close()
			}
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				t.Logf("node %d output (%d incarnations; full log under %s):\n%s", nd.id, nd.incarnation, logDir, nd.out.tail(80))
			}
		}
	})
	return c
}

func (c *chaosCluster) node(id uint64) *chaosNode { return c.nodes[id-1] }

// addrs returns every node's Kafka address (seed brokers).
func (c *chaosCluster) addrs() []string {
	var a []string
	for _, nd := range c.nodes {
		a = append(a, nd.kafka)
	}
	return a
}

// start launches a new incarnation of node id on its data directory.
func (c *chaosCluster) start(id uint64) {
	c.t.Helper()
	nd := c.node(id)
	nd.procMu.Lock()
	defer nd.procMu.Unlock()
	if nd.cmd != nil && !nd.hasExited() {
		c.t.Fatalf("node %d already running", id)
	}
	nd.incarnation++
	fmt.Fprintf(nd.out, "===== node %d incarnation %d starting at %s\n", id, nd.incarnation, time.Now().Format(time.RFC3339Nano))
	args := []string{"serve", "--node-id", strconv.FormatUint(id, 10), "--data-dir", nd.dir,
		"--kafka-addr", nd.kafka, "--advertised-addr", nd.kafka, "--raft-addr", nd.raft,
		"--http-addr", nd.http, "--log-level", chaosLogLevel()}
	args = append(append(args, nd.clusterArg...), nd.extraArgs...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), beMainEnv+"=1")
	cmd.Stdout, cmd.Stderr = nd.out, nd.out
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	exited := make(chan struct{})
	nd.cmd, nd.exited, nd.exitErr = cmd, exited, nil
	go func() {
		err := cmd.Wait()
		nd.procMu.Lock()
		nd.exitErr = err
		nd.procMu.Unlock()
		fmt.Fprintf(nd.out, "===== node %d incarnation exited: %v\n", id, err)
		close(exited)
	}()
}

func chaosLogLevel() string {
	if l := os.Getenv("CHAOS_LOG_LEVEL"); l != "" {
		return l
	}
	return "warn"
}

func (nd *chaosNode) hasExited() bool {
	select {
	case <-nd.exited:
		return true
	default:
		return false
	}
}

func (nd *chaosNode) killIfRunning() {
	nd.procMu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.procMu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-exited:
	case <-time.After(processWait):
	}
}

// waitReady polls /readyz of node id until 200, failing on exit or after
// timeout.
func (c *chaosCluster) waitReady(id uint64, timeout time.Duration) {
	c.t.Helper()
	nd := c.node(id)
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 3 * time.Second}
	for {
		resp, err := hc.Get("http://" + nd.http + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		nd.procMu.Lock()
		exited := nd.exited
		nd.procMu.Unlock()
		select {
		case <-exited:
			c.t.Fatalf("node %d exited before ready: %v", id, nd.exitErr)
		case <-time.After(50 * time.Millisecond): // poll interval, bounded by the deadline
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d not ready within %v", id, timeout)
		}
	}
}

// startAll starts every node at once (a quorum is needed before any is
// ready) and waits until all are ready.
func (c *chaosCluster) startAll() {
	c.t.Helper()
	for _, nd := range c.nodes {
		c.start(nd.id)
	}
	for _, nd := range c.nodes {
		c.waitReady(nd.id, 60*time.Second)
	}
}

// kill sends SIGKILL and waits for the exit.
func (c *chaosCluster) kill(id uint64) {
	c.t.Helper()
	if code := c.signal(id, syscall.SIGKILL); code != -1 {
		c.t.Logf("node %d exit code %d after SIGKILL", id, code)
	}
}

// signal sends sig to node id and returns its exit code (-1 when killed by
// a signal), failing if it does not exit within processWait.
func (c *chaosCluster) signal(id uint64, sig syscall.Signal) int {
	c.t.Helper()
	nd := c.node(id)
	nd.procMu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.procMu.Unlock()
	if cmd == nil {
		c.t.Fatalf("node %d never started", id)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal node %d: %v", id, err)
	}
	select {
	case <-exited:
		return cmd.ProcessState.ExitCode()
	case <-time.After(processWait):
		c.t.Fatalf("node %d did not exit within %v of %v", id, processWait, sig)
		return -2
	}
}

// restart starts node id again on the same data directory and waits for it.
func (c *chaosCluster) restart(id uint64) {
	c.t.Helper()
	c.start(id)
	c.waitReady(id, 60*time.Second)
}

// client returns a kgo client seeded with every node, closed at cleanup.
func (c *chaosCluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs()...)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// apiVersions asks one broker directly for its ApiVersions.
func apiVersions(ctx context.Context, addr string) (map[int16][2]int16, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	resp, err := cl.Request(ctx, kmsg.NewPtrApiVersionsRequest())
	if err != nil {
		return nil, err
	}
	r := resp.(*kmsg.ApiVersionsResponse)
	if r.ErrorCode != 0 {
		return nil, fmt.Errorf("ApiVersions error code %d", r.ErrorCode)
	}
	m := map[int16][2]int16{}
	for _, k := range r.ApiKeys {
		m[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	return m, nil
}

// requireAPIs skips the test when the broker at addr does not advertise
// every key: the Kafka handlers land on other branches, and a scenario that
// needs one cannot run before it exists.
func requireAPIs(t *testing.T, addr string, keys ...int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), processWait)
	defer cancel()
	m, err := apiVersions(ctx, addr)
	if err != nil {
		t.Fatalf("ApiVersions from %s: %v", addr, err)
	}
	var missing []string
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			missing = append(missing, kmsg.NameForKey(k))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Skipf("broker does not advertise %v yet (handlers not merged); skipping", missing)
	}
}
