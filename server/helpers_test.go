package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testWait bounds every wait in a test.
const testWait = 10 * time.Second

// logSink is a concurrency-safe slog handler that keeps every message.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logSink) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testServer struct {
	srv  *Server
	addr string
	logs *logSink
}

// startServer serves cfg on a loopback listener; cleanup shuts it down and
// checks Serve returned ErrServerClosed.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ts := &testServer{logs: &logSink{}}
	if cfg.Logger == nil {
		cfg.Logger = ts.logs.logger()
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.srv, ts.addr = srv, ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logs)
		}
	})
	return ts
}

// withAPIs is a registry of the built-in APIs plus extra (test) ones.
// An extra API replaces the built-in one with the same key (wire-layer
// tests stand in test handlers for real API keys).
func withAPIs(extra ...API) *Registry {
	var apis []API
	for _, b := range BuiltinAPIs() {
		if !slices.ContainsFunc(extra, func(e API) bool { return e.Key == b.Key }) {
			apis = append(apis, b)
		}
	}
	return NewRegistry(append(apis, extra...)...)
}

// dial opens a raw client connection with every I/O bounded by testWait.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(testWait))
	t.Cleanup(func() { c.Close() })
	return c
}

// frameRequest encodes req as a request frame: size, header v1 or v2
// (flexible), body.
func frameRequest(req kmsg.Request, corr int32, clientID *string) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// rawFrame frames an arbitrary payload with its size prefix.
func rawFrame(payload []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}

func send(t *testing.T, c net.Conn, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := c.Write(f); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

// readFrame reads one response frame and returns its correlation id and the
// bytes after it (header tagged fields, if any, and body).
func readFrame(t *testing.T, c net.Conn) (int32, []byte) {
	t.Helper()
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("read response size: %v", err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		t.Fatalf("response size %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read response: %v", err)
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:]
}

// readAPIVersions reads an ApiVersions response (header v0, always).
func readAPIVersions(t *testing.T, c net.Conn, wantCorr int32, version int16) *kmsg.ApiVersionsResponse {
	t.Helper()
	corr, body := readFrame(t, c)
	if corr != wantCorr {
		t.Fatalf("correlation id %d, want %d", corr, wantCorr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = version
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode ApiVersions v%d response: %v", version, err)
	}
	return resp
}

// expectClosed checks the server closes c without sending anything more.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil {
		t.Fatalf("read %d bytes, err %v; want the connection closed", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", testWait)
	}
}

// apiVersionsOK runs one ApiVersions v3 exchange on a fresh connection.
func apiVersionsOK(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, addr)
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1.0"
	send(t, c, frameRequest(req, 7, nil))
	resp := readAPIVersions(t, c, 7, 3)
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
	c.Close()
}

func waitLog(t *testing.T, logs *logSink, substr string) {
	t.Helper()
	// The log line is written before the socket is closed, so a caller
	// that saw the close sees the line.
	if !strings.Contains(logs.String(), substr) {
		t.Fatalf("log lacks %q:\n%s", substr, logs)
	}
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testWait):
		t.Fatalf("no value after %v", testWait)
		panic("unreachable")
	}
}
