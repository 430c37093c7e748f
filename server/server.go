package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// Defaults for Config's zero fields.
const (
	// DefaultMaxRequestBytes matches Kafka's socket.request.max.bytes.
	DefaultMaxRequestBytes = 100 << 20
	// DefaultMaxInFlightPerConn bounds pipelined requests per connection.
	DefaultMaxInFlightPerConn = 32
	// DefaultMaxRequestMemoryBytes bounds request frames held in memory
	// across all connections.
	DefaultMaxRequestMemoryBytes = 256 << 20
	// DefaultIdleTimeout matches Kafka's connections.max.idle.ms.
	DefaultIdleTimeout = 10 * time.Minute

	// maxInFlightPerConnCeiling keeps a misconfiguration from turning the
	// per-connection queues into an unbounded resource.
	maxInFlightPerConnCeiling = 1024
)

// Config configures a Server. Zero fields take the defaults above.
type Config struct {
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Registry is the API table; nil means DefaultRegistry().
	Registry *Registry
	// MaxRequestBytes is the largest request frame accepted (size prefix
	// excluded). A larger claimed size closes the connection before
	// anything is allocated. Keep it above the largest max.message.bytes,
	// so that oversized records are answered MESSAGE_TOO_LARGE by the
	// produce handler rather than cut off here.
	MaxRequestBytes int32
	// MaxInFlightPerConn is how many requests of one connection may be
	// dispatched and not yet answered at once (at most 1024).
	MaxInFlightPerConn int
	// MaxRequestMemoryBytes bounds the request frames held in memory by
	// all connections together; a request waits for its bytes before it
	// is read. A request larger than this closes its connection.
	MaxRequestMemoryBytes int64
	// IdleTimeout closes a connection that has nothing in flight and has
	// neither sent nor received a byte for this long.
	IdleTimeout time.Duration
	// SASL, if set with mechanisms, requires every connection to
	// authenticate (sasl.go).
	SASL *SASLConfig
	// Authorizer, if set, checks every request against the replicated
	// ACLs (acl.go).
	Authorizer *AuthorizerConfig
	// Broker is what the API handlers serve from (nil in tests of the wire
	// layer alone; handlers that need it then answer with an error code).
	Broker *Broker

	// hooks lets tests in this package observe points where the server
	// blocks, so they can synchronise without sleeping.
	hooks testHooks
}

// testHooks are called (when set) from the connection goroutines.
type testHooks struct {
	inFlightWait    func() // the reader waits for an in-flight token
	memWait         func() // the reader waits for request memory
	busyReadTimeout func() // a read deadline fired but the conn was not idle
}

func (testHooks) call(f func()) {
	if f != nil {
		f()
	}
}

func (c Config) withDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registry == nil {
		c.Registry = DefaultRegistry()
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxInFlightPerConn == 0 {
		c.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	if c.MaxRequestMemoryBytes == 0 {
		c.MaxRequestMemoryBytes = DefaultMaxRequestMemoryBytes
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.SASL != nil && len(c.SASL.Mechanisms) == 0 {
		c.SASL = nil
	}
	if c.SASL != nil {
		for _, m := range c.SASL.Mechanisms {
			if !ValidSASLMechanism(m) {
				return c, fmt.Errorf("server: unknown SASL mechanism %q (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", m)
			}
		}
	}
	switch {
	case c.MaxRequestBytes < minHeaderBytes:
		return c, fmt.Errorf("server: MaxRequestBytes %d below %d", c.MaxRequestBytes, minHeaderBytes)
	case c.MaxInFlightPerConn < 1 || c.MaxInFlightPerConn > maxInFlightPerConnCeiling:
		return c, fmt.Errorf("server: MaxInFlightPerConn %d outside [1, %d]", c.MaxInFlightPerConn, maxInFlightPerConnCeiling)
	case c.MaxRequestMemoryBytes < 1:
		return c, fmt.Errorf("server: MaxRequestMemoryBytes %d below 1", c.MaxRequestMemoryBytes)
	case c.IdleTimeout < 0:
		return c, fmt.Errorf("server: IdleTimeout %v negative", c.IdleTimeout)
	}
	return c, nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server: closed")

// Server serves the Kafka protocol on the listeners given to Serve.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mem     *memSem
	metrics Metrics

	// closed is closed when Shutdown begins (wakes Serve's accept backoff).
	closed chan struct{}

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	nextConn  uint64
	// wg counts Serve loops and connection goroutines. Add only under mu
	// with closing false, so Shutdown's Wait sees every goroutine.
	wg sync.WaitGroup
}

// New returns a Server; it starts nothing.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		mem:       newMemSem(cfg.MaxRequestMemoryBytes),
		closed:    make(chan struct{}),
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
	}, nil
}

// Metrics returns the server's counters.
func (s *Server) Metrics() *Metrics { return &s.metrics }

// Serve accepts connections on ln until Shutdown, then returns
// ErrServerClosed. Serve closes ln. It may be called for several listeners
// at once.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	backoff := time.Duration(0)
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Transient (EMFILE, ECONNABORTED...): back off, bounded.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.closed:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		s.startConn(nc)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) startConn(nc net.Conn) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.nextConn++
	c := newConn(s, nc, s.nextConn)
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.metrics.connsAccepted.Add(1)
	s.metrics.connsOpen.Add(1)

	go func() {
		defer s.wg.Done()
		c.serve()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.metrics.connsOpen.Add(-1)
	}()
}

// Shutdown stops accepting, stops reading new requests, lets the requests
// already read finish and their responses be written, then closes the
// connections. If ctx ends first, it cancels the handlers' contexts and
// closes every connection at once, and returns ctx's error. Either way it
// returns only after every goroutine the Server started has exited.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.closed)
	}
	// Listeners and connections are closed in a fixed order (address,
	// accept order), not in map order, which follows their addresses in
	// memory: the order of the wake-ups is then the same in every run
	// (the simulator replays a seed).
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	slices.SortFunc(lns, func(a, b net.Listener) int { return cmp.Compare(a.Addr().String(), b.Addr().String()) })
	for _, ln := range lns {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	slices.SortFunc(conns, func(a, b *conn) int { return cmp.Compare(a.id, b.id) })
	s.mu.Unlock()

	for _, c := range conns {
		c.stopReading()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.abort(fmt.Errorf("shutdown deadline: %w", ctx.Err()))
	}
	<-done
	return ctx.Err()
}
