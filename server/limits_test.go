package server

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// signal returns a hook that reports each call on a channel without ever
// blocking the server.
func signal() (func(), chan struct{}) {
	ch := make(chan struct{}, 1)
	return func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}, ch
}

func noneStarted(t *testing.T, g *gatedDescribeCluster) {
	t.Helper()
	select {
	case corr := <-g.started:
		t.Fatalf("request %d was dispatched past the limit", corr)
	default:
	}
}

// With MaxInFlightPerConn=2 the third pipelined request is not dispatched
// until the first is answered.
func TestInFlightLimit(t *testing.T) {
	g := newGated(1, 2, 3)
	waitHook, waiting := signal()
	ts := startServer(t, Config{Registry: withAPIs(g.api()), MaxInFlightPerConn: 2, hooks: testHooks{inFlightWait: waitHook}})
	c := dial(t, ts.addr)
	send(t, c, describeCluster(1), describeCluster(2), describeCluster(3))
	recv(t, g.started)
	recv(t, g.started)
	recv(t, waiting) // the reader holds request 3's size and waits
	noneStarted(t, g)

	close(g.gates[1])
	if corr, _ := readDescribeCluster(t, c); corr != 1 {
		t.Fatalf("got response %d, want 1", corr)
	}
	if corr := recv(t, g.started); corr != 3 {
		t.Fatalf("started %d, want 3", corr)
	}
	close(g.gates[2])
	close(g.gates[3])
	for want := int32(2); want <= 3; want++ {
		if corr, _ := readDescribeCluster(t, c); corr != want {
			t.Fatalf("got response %d, want %d", corr, want)
		}
	}
}

// Request memory is bounded across connections: a request waits for the
// bytes held by another connection's request, and a request larger than the
// whole budget closes its connection.
func TestRequestMemoryLimit(t *testing.T) {
	frameBytes := int64(len(describeCluster(1)) - 4)
	g := newGated(1)
	waitHook, waiting := signal()
	ts := startServer(t, Config{
		Registry:              withAPIs(g.api()),
		MaxRequestMemoryBytes: frameBytes + frameBytes/2,
		hooks:                 testHooks{memWait: waitHook},
	})
	a, b := dial(t, ts.addr), dial(t, ts.addr)
	send(t, a, describeCluster(1))
	recv(t, g.started)
	send(t, b, describeCluster(2))
	recv(t, waiting)
	noneStarted(t, g)

	close(g.gates[1])
	if corr, _ := readDescribeCluster(t, a); corr != 1 {
		t.Fatalf("a: response %d", corr)
	}
	if corr, _ := readDescribeCluster(t, b); corr != 2 {
		t.Fatalf("b: response %d", corr)
	}
	if avail := ts.srv.mem.available(); avail != ts.srv.mem.capacity {
		t.Fatalf("memory available %d after all handlers returned, want %d", avail, ts.srv.mem.capacity)
	}

	big := kmsg.NewPtrApiVersionsRequest()
	big.Version = 3
	big.ClientSoftwareName, big.ClientSoftwareVersion = strings.Repeat("k", 64), "1"
	c := dial(t, ts.addr)
	send(t, c, frameRequest(big, 3, nil))
	expectClosed(t, c)
	waitLog(t, ts.logs, "above MaxRequestMemoryBytes")
}

func TestIdleConnectionClosed(t *testing.T) {
	ts := startServer(t, Config{IdleTimeout: 20 * time.Millisecond})
	c := dial(t, ts.addr)
	expectClosed(t, c)
	waitLog(t, ts.logs, "closing idle connection")
}

// A request in flight longer than the idle timeout keeps its connection.
func TestNotIdleWhileRequestInFlight(t *testing.T) {
	g := newGated(1)
	timeoutHook, timedOut := signal()
	ts := startServer(t, Config{Registry: withAPIs(g.api()), IdleTimeout: 20 * time.Millisecond, hooks: testHooks{busyReadTimeout: timeoutHook}})
	c := dial(t, ts.addr)
	send(t, c, describeCluster(1))
	recv(t, g.started)
	recv(t, timedOut) // the idle deadline passed while the request ran
	close(g.gates[1])
	if corr, _ := readDescribeCluster(t, c); corr != 1 {
		t.Fatalf("response %d", corr)
	}
}

type servedServer struct {
	srv    *Server
	addr   string
	served chan error
}

func serveOnly(t *testing.T, cfg Config) servedServer {
	t.Helper()
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := servedServer{srv: srv, addr: ln.Addr().String(), served: make(chan error, 1)}
	go func() { s.served <- srv.Serve(ln) }()
	return s
}

// Shutdown stops accepting, lets the request in flight finish and be
// answered, then closes the connection.
func TestShutdownFinishesInFlight(t *testing.T) {
	g := newGated(1)
	s := serveOnly(t, Config{Registry: withAPIs(g.api())})
	c := dial(t, s.addr)
	send(t, c, describeCluster(1))
	recv(t, g.started)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		shut <- s.srv.Shutdown(ctx)
	}()
	if err := recv(t, s.served); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	if nc, err := net.Dial("tcp", s.addr); err == nil {
		nc.Close()
		t.Fatal("dial succeeded after Shutdown began")
	}
	close(g.gates[1])
	if corr, _ := readDescribeCluster(t, c); corr != 1 {
		t.Fatalf("response %d", corr)
	}
	expectClosed(t, c)
	if err := recv(t, shut); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := s.srv.Serve(mustListen(t)); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

// When Shutdown's context ends first, handlers are cancelled, connections
// closed, and Shutdown still waits for every goroutine.
func TestShutdownDeadlineAbortsHandlers(t *testing.T) {
	g := newGated(1)
	s := serveOnly(t, Config{Registry: withAPIs(g.api())})
	c := dial(t, s.addr)
	send(t, c, describeCluster(1))
	recv(t, g.started)

	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- s.srv.Shutdown(ctx) }()
	recv(t, s.served)
	cancel()
	if err := recv(t, shut); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v, want context.Canceled", err)
	}
	expectClosed(t, c)
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{MaxRequestBytes: 5},
		{MaxRequestBytes: -1},
		{MaxInFlightPerConn: -1},
		{MaxInFlightPerConn: 1025},
		{MaxRequestMemoryBytes: -1},
		{IdleTimeout: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxRequestBytes != DefaultMaxRequestBytes || s.cfg.MaxInFlightPerConn != DefaultMaxInFlightPerConn ||
		s.cfg.MaxRequestMemoryBytes != DefaultMaxRequestMemoryBytes || s.cfg.IdleTimeout != DefaultIdleTimeout {
		t.Fatalf("defaults not applied: %+v", s.cfg)
	}
}
