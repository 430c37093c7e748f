package server

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors that end a connection (besides the header sentinels).
var (
	// ErrHandlerPanic wraps a recovered handler panic.
	ErrHandlerPanic = errors.New("server: handler panicked")
	// ErrBadResponse means a handler returned a response that cannot be
	// sent for its request (wrong key, oversized).
	ErrBadResponse = errors.New("server: bad response from handler")

	errIdle         = errors.New("server: connection idle")
	errStopReading  = errors.New("server: stopped reading")
	errTLSHandshake = errors.New("server: TLS handshake failed")
)

// retainedWriteBufBytesMax caps the response buffer a connection keeps
// between responses; a larger one is dropped after use.
const retainedWriteBufBytesMax = 1 << 20

// conn serves one client connection with two goroutines: the reader (the
// goroutine running serve), which frames, decodes and dispatches requests,
// one goroutine per request; and the writer, which writes responses in
// request order.
//
// Invariants:
//   - queue holds the dispatched requests in arrival order; the writer waits
//     for each one's result in that order, so responses leave in request
//     order whatever order handlers finish in.
//   - len(inflight) = requests dispatched whose response is not yet written
//     (or dropped) <= MaxInFlightPerConn; a token is taken by the reader
//     before a frame's body is read and released by the writer.
//   - every frame's bytes are held in the server's memSem from before the
//     body is allocated until its handler returns.
type conn struct {
	s   *Server
	nc  net.Conn
	id  uint64
	log *slog.Logger

	// ctx is the handlers' context; abort cancels it.
	ctx    context.Context
	cancel context.CancelCauseFunc
	// readCtx is cancelled by stopReading (graceful) and by abort.
	readCtx    context.Context
	readCancel context.CancelFunc

	inflight chan struct{}
	queue    chan *pending
	// lastOrdered holds, per Ordered API key, a channel closed when the
	// latest dispatched handler of that key returns, or earlier when it
	// says that what must stay in order is done (RequestContext.
	// ReleaseOrder). Reader goroutine only.
	lastOrdered map[int16]chan struct{}

	// Unix nanoseconds of the last byte read / response written, for the
	// idle timeout.
	lastReadNanos  atomic.Int64
	lastWriteNanos atomic.Int64
	// frameReadNanos: when the frame being dispatched was read in full
	// (reader goroutine only).
	frameReadNanos int64

	abortOnce sync.Once

	// principal is the client's identity (see tlsPrincipal, SASL); set
	// before the first request is read, changed only by the reader.
	principal string
	sasl      *saslSession
}

// pending is a dispatched request awaiting its result.
type pending struct {
	key  int16
	corr int32
	done chan result // capacity 1; receives exactly one result
}

type result struct {
	resp kmsg.Response
	err  error
	// finished is when the handler returned (the produce "answer" stage
	// runs from here to the response written).
	finished time.Time
}

func newConn(s *Server, nc net.Conn, id uint64) *conn {
	c := &conn{
		s:        s,
		nc:       nc,
		id:       id,
		log:      s.log.With("conn", id, "remote", fmt.Sprint(nc.RemoteAddr())),
		inflight: make(chan struct{}, s.cfg.MaxInFlightPerConn),
		queue:    make(chan *pending, s.cfg.MaxInFlightPerConn),
	}
	c.sasl = &saslSession{cfg: s.cfg.SASL}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.readCtx, c.readCancel = context.WithCancel(c.ctx)
	now := time.Now().UnixNano()
	c.lastReadNanos.Store(now)
	c.lastWriteNanos.Store(now)
	return c
}

// serve runs the connection to its end; it returns after the writer and
// every handler of this connection have returned and the socket is closed.
func (c *conn) serve() {
	c.log.Debug("connection opened")
	c.principal = AnonymousPrincipal
	if err := c.handshake(); err != nil {
		c.abort(err)
		c.readCancel()
		return
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	var handlers sync.WaitGroup
	err := c.readLoop(&handlers)
	close(c.queue)
	if !errors.Is(err, errStopReading) {
		c.abort(err)
	}
	<-writerDone
	handlers.Wait()
	c.abort(nil)
	c.readCancel()
}

// stopReading makes the reader stop at once (dropping a partly read frame)
// while the requests already dispatched finish and are answered.
func (c *conn) stopReading() {
	c.readCancel()
	// A past deadline unblocks a Read in progress; readFull re-checks
	// readCtx after arming its own deadline, so this cannot be lost.
	c.nc.SetReadDeadline(time.Unix(1, 0))
}

// abort closes the connection now and cancels its handlers; the first call
// logs why (err nil means an orderly end).
func (c *conn) abort(err error) {
	c.abortOnce.Do(func() {
		c.logClose(err)
		c.cancel(err)
		c.nc.Close()
	})
}

func (c *conn) logClose(err error) {
	switch {
	case err == nil:
		c.log.Debug("connection closed")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		c.log.Debug("connection closed by client", "err", err)
	case errors.Is(err, errTLSHandshake):
		c.log.Warn("closing connection: TLS handshake failed", "err", err)
	case errors.Is(err, errIdle):
		c.log.Info("closing idle connection", "idle_timeout", c.s.cfg.IdleTimeout)
	default:
		c.log.Warn("closing connection", "err", err)
	}
}

func (c *conn) readLoop(handlers *sync.WaitGroup) error {
	var sizeBuf [4]byte
	for {
		if c.readCtx.Err() != nil {
			return errStopReading
		}
		if err := c.readFull(sizeBuf[:]); err != nil {
			return err
		}
		// Check the claimed size before allocating anything for it.
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size <= 0 || size > c.s.cfg.MaxRequestBytes {
			return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameSize, size, c.s.cfg.MaxRequestBytes)
		}
		if int64(size) > c.s.mem.capacity {
			return fmt.Errorf("%w: %d bytes above MaxRequestMemoryBytes %d", ErrFrameSize, size, c.s.mem.capacity)
		}
		if err := c.takeInFlight(); err != nil {
			return err
		}
		if !c.s.mem.tryAcquire(int64(size)) {
			c.s.cfg.hooks.call(c.s.cfg.hooks.memWait)
			if err := c.s.mem.acquire(c.readCtx, int64(size)); err != nil {
				<-c.inflight
				return errStopReading
			}
		}
		frame := getFrame(int(size))
		err := c.readFull(frame)
		if err == nil {
			// readFull stamped the last byte's arrival: the produce
			// "queue" stage starts there.
			c.frameReadNanos = c.lastReadNanos.Load()
			err = c.dispatch(frame, handlers)
			if errors.Is(err, errSASLFailed) {
				return err // answered: dispatch owns the bytes and the token
			}
		}
		if err != nil {
			// dispatch takes ownership of the bytes and the token
			// only when it succeeds.
			c.s.mem.release(int64(size))
			<-c.inflight
			return err
		}
	}
}

// takeInFlight takes an in-flight token, waiting for the writer to release
// one if MaxInFlightPerConn requests are already dispatched.
func (c *conn) takeInFlight() error {
	select {
	case c.inflight <- struct{}{}:
		return nil
	default:
	}
	c.s.cfg.hooks.call(c.s.cfg.hooks.inFlightWait)
	select {
	case c.inflight <- struct{}{}:
		return nil
	case <-c.readCtx.Done():
		return errStopReading
	}
}

// readFull fills buf, enforcing the idle timeout: a read deadline fires and
// the connection is idle if nothing is in flight and no byte moved either
// way for IdleTimeout.
func (c *conn) readFull(buf []byte) error {
	for n := 0; n < len(buf); {
		c.armReadDeadline()
		if c.readCtx.Err() != nil {
			return errStopReading
		}
		m, err := c.nc.Read(buf[n:])
		if m > 0 {
			n += m
			c.lastReadNanos.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil:
		case c.readCtx.Err() != nil:
			return errStopReading
		case errors.Is(err, os.ErrDeadlineExceeded):
			if c.isIdle() {
				return errIdle
			}
			c.s.cfg.hooks.call(c.s.cfg.hooks.busyReadTimeout)
		case errors.Is(err, io.EOF) && n > 0:
			return fmt.Errorf("truncated frame: %w", io.ErrUnexpectedEOF)
		default:
			return err
		}
	}
	return nil
}

func (c *conn) lastActive() time.Time {
	return time.Unix(0, max(c.lastReadNanos.Load(), c.lastWriteNanos.Load()))
}

func (c *conn) isIdle() bool {
	return len(c.inflight) == 0 && time.Since(c.lastActive()) >= c.s.cfg.IdleTimeout
}

func (c *conn) armReadDeadline() {
	deadline := c.lastActive().Add(c.s.cfg.IdleTimeout)
	if len(c.inflight) > 0 {
		// Not idle while requests are in flight; look again later.
		deadline = time.Now().Add(c.s.cfg.IdleTimeout)
	}
	c.nc.SetReadDeadline(deadline)
}

// dispatch decodes one frame and starts its handler, or queues the
// UNSUPPORTED_VERSION answer to a too-new ApiVersions. On success it owns the
// frame's memory (released when the handler returns) and its in-flight token
// (released by the writer).
func (c *conn) dispatch(frame []byte, handlers *sync.WaitGroup) error {
	h, err := parseHeaderPrefix(frame)
	if err != nil {
		return err
	}
	api, ok := c.s.cfg.Registry.Lookup(h.key)
	if !ok {
		return fmt.Errorf("%w: key %d version %d correlation id %d", ErrUnknownAPIKey, h.key, h.version, h.corr)
	}
	if h.version < api.MinVersion || h.version > api.MaxVersion {
		if h.key == apiVersionsKey && h.version > api.MaxVersion {
			// Kafka (KIP-511): answer, do not close, so the client
			// retries at a version we serve. The body is not parsed:
			// its layout may be one we do not know.
			c.log.Debug("ApiVersions above our max; answering UNSUPPORTED_VERSION", "version", h.version, "max", api.MaxVersion)
			c.s.mem.release(int64(len(frame)))
			p := &pending{key: h.key, corr: h.corr, done: make(chan result, 1)}
			p.done <- result{resp: unsupportedAPIVersions(api)}
			c.queue <- p
			return nil
		}
		return fmt.Errorf("%w: %s (key %d) version %d outside [%d, %d]", ErrUnsupportedVers,
			kmsg.NameForKey(h.key), h.key, h.version, api.MinVersion, api.MaxVersion)
	}
	if err := c.sasl.allowed(h.key, time.Now); err != nil {
		return fmt.Errorf("%w: %s (key %d) correlation id %d", err, kmsg.NameForKey(h.key), h.key, h.corr)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	h, body, err := parseHeaderRest(frame, h, req.IsFlexible())
	if err != nil {
		return err
	}
	if err := req.ReadFrom(body); err != nil {
		return fmt.Errorf("%w: %s v%d correlation id %d: %v", ErrMalformedRequest, kmsg.NameForKey(h.key), h.version, h.corr, err)
	}
	rc := &RequestContext{
		APIKey: h.key, Version: h.version, CorrelationID: h.corr, ClientID: h.clientID,
		ConnID: c.id, RemoteAddr: c.nc.RemoteAddr(), LocalAddr: c.nc.LocalAddr(), Principal: c.principal,
		Logger:   c.log.With("api", kmsg.NameForKey(h.key), "version", h.version, "corr", h.corr),
		Registry: c.s.cfg.Registry,
		Broker:   c.s.cfg.Broker,
		sasl:     c.sasl, metrics: &c.s.metrics, authz: c.s.cfg.Authorizer,
		receivedNanos: c.frameReadNanos,
	}
	p := &pending{key: h.key, corr: h.corr, done: make(chan result, 1)}
	// Never blocks: the queue holds at most the tokens taken.
	c.queue <- p
	frameBytes := int64(len(frame))
	if h.key == saslHandshakeKey || h.key == saslAuthenticateKey {
		// In the reader: nothing else is read until the exchange step is
		// answered, so authentication is strictly ordered.
		r := c.runHandler(api, rc, req)
		c.s.mem.release(frameBytes)
		p.done <- r
		closeAfter, principal := c.sasl.after()
		if principal != "" {
			c.principal = principal
		}
		if closeAfter {
			return errSASLFailed
		}
		return nil
	}
	var prev, mine chan struct{}
	if api.Ordered {
		if c.lastOrdered == nil {
			c.lastOrdered = map[int16]chan struct{}{}
		}
		prev, mine = c.lastOrdered[h.key], make(chan struct{})
		c.lastOrdered[h.key] = mine
	}
	if mine != nil {
		var once sync.Once
		rc.releaseOrder = func() { once.Do(func() { close(mine) }) }
	}
	handlers.Add(1)
	go func() {
		defer handlers.Done()
		if prev != nil {
			select {
			case <-prev:
			case <-c.ctx.Done(): // the handler sees the cancelled ctx
			}
		}
		r := c.runHandler(api, rc, req)
		if mine != nil {
			rc.releaseOrder()
		}
		if api.KeepsNoRequestBytes && !errors.Is(r.err, ErrHandlerPanic) {
			// A panicking handler may have left goroutines using the bytes.
			putFrame(frame)
		}
		c.s.mem.release(frameBytes)
		p.done <- r
	}()
	return nil
}

// framePool holds request frame buffers (as *[]byte) given back after a
// handler that keeps no reference to its request (API.KeepsNoRequestBytes)
// returned; any other request's frame is left to the GC, since its
// decoded request may keep slices of it (group metadata, SASL tokens).
var framePool sync.Pool

// framePoolKeepBytesMax: larger frames are not pooled.
const framePoolKeepBytesMax = 8 << 20

// getFrame returns a buffer of size bytes, whose stale content the
// caller overwrites whole (readFull).
func getFrame(size int) []byte {
	if b, ok := framePool.Get().(*[]byte); ok && cap(*b) >= size {
		return (*b)[:size]
	}
	return make([]byte, size)
}

func putFrame(b []byte) {
	if cap(b) > framePoolKeepBytesMax {
		return
	}
	b = b[:0]
	framePool.Put(&b)
}

func (c *conn) runHandler(api API, rc *RequestContext, req kmsg.Request) (r result) {
	defer func() {
		if v := recover(); v != nil {
			rc.Logger.Error("handler panicked", "panic", v, "stack", string(debug.Stack()))
			r = result{err: fmt.Errorf("%w: %s (key %d) v%d: %v", ErrHandlerPanic, kmsg.NameForKey(api.Key), api.Key, rc.Version, v)}
		}
	}()
	start := time.Now()
	defer func() { c.s.metrics.observe(api.Key, time.Since(start), r.err != nil) }()
	resp, err := api.Handler(c.ctx, rc, req)
	return result{resp: resp, err: err, finished: time.Now()}
}

// writeLoop writes results in queue order. After a failure it keeps draining
// (without writing) so that handlers' tokens are released, until the reader
// closes the queue.
func (c *conn) writeLoop() {
	var buf []byte
	broken := false
	for p := range c.queue {
		r := <-p.done
		if !broken {
			var err error
			buf, err = c.writeResult(buf, p, r)
			if err != nil {
				broken = true
				c.abort(err)
			} else if p.key == produceKey && r.resp != nil {
				c.s.metrics.produceAnswer.Observe(time.Since(r.finished))
			}
			if cap(buf) > retainedWriteBufBytesMax {
				buf = nil
			}
		}
		<-c.inflight
	}
}

func (c *conn) writeResult(buf []byte, p *pending, r result) ([]byte, error) {
	switch {
	case r.err != nil:
		return buf, fmt.Errorf("%s (key %d) correlation id %d: %w", kmsg.NameForKey(p.key), p.key, p.corr, r.err)
	case r.resp == nil:
		return buf, nil // acks=0 produce: nothing is sent
	case r.resp.Key() != p.key:
		return buf, fmt.Errorf("%w: response key %d for request key %d", ErrBadResponse, r.resp.Key(), p.key)
	}
	buf = slices.Grow(buf[:0], encodedSizeHint(r.resp))
	buf = binary.BigEndian.AppendUint32(buf, 0) // size, filled below
	buf = binary.BigEndian.AppendUint32(buf, uint32(p.corr))
	// Header v1 (empty tagged fields) for flexible responses, except
	// ApiVersions, whose response header is always v0.
	if r.resp.IsFlexible() && p.key != apiVersionsKey {
		buf = append(buf, 0)
	}
	buf = r.resp.AppendTo(buf)
	if len(buf)-4 > math.MaxInt32 {
		return buf, fmt.Errorf("%w: %d bytes", ErrBadResponse, len(buf)-4)
	}
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	// A client that stops reading its responses is cut off after the idle
	// timeout rather than pinning this connection's resources forever.
	c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
	_, err := c.nc.Write(buf)
	c.lastWriteNanos.Store(time.Now().UnixNano())
	return buf, err
}

// encodedSizeHint is a lower bound of resp's encoding for the responses
// that carry record data (Fetch), so that the write buffer is allocated
// once instead of growing (and copying) through every size class.
func encodedSizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for i := range f.Topics {
		n += 64 + len(f.Topics[i].Topic)
		for j := range f.Topics[i].Partitions {
			p := &f.Topics[i].Partitions[j]
			n += 64 + len(p.RecordBatches) + 32*len(p.AbortedTransactions)
		}
	}
	return n
}
