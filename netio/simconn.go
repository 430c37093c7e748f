package netio

import (
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// chunk is a piece of written data travelling on a link.
type chunk struct {
	data      []byte
	deliverAt time.Time
}

// pipe is one direction of a simulated connection.
//
// Invariant: queuedBytes == len(buf) + sum(len(inflight[i].data)) and
// queuedBytes <= simPipeBytesMax.
// Invariant: inflight is sorted by deliverAt (order within a connection is
// preserved whatever the jitter).
type pipe struct {
	mu          sync.Mutex // tiny critical sections only; never held while blocking
	buf         []byte     // delivered, not yet read
	inflight    []chunk    // written, not yet delivered
	queuedBytes int
	lastAt      time.Time   // deliverAt of the last chunk queued
	timer       *time.Timer // armed for inflight[0], nil when idle
	writeClosed bool        // writer closed: reader gets io.EOF after draining
	readClosed  bool        // reader closed: writes fail, data is discarded
	err         error       // connection reset: both ends fail with it
	changed     chan struct{}
	waiting     bool // someone took changed since it was last closed
}

func newPipe() *pipe { return &pipe{changed: make(chan struct{})} }

// signalLocked wakes everyone waiting on the pipe; they re-check state.
// With nobody waiting there is nothing to close (most signals: a reader
// that finds data never waits), which saves a channel per Read and Write.
func (p *pipe) signalLocked() {
	if !p.waiting {
		return
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.waiting = false
}

// waitChanLocked returns the channel that the next signalLocked closes.
func (p *pipe) waitChanLocked() <-chan struct{} {
	p.waiting = true
	return p.changed
}

// checkLocked verifies the pipe's invariants: O(1) ones always, O(n) ones
// with -tags invariants.
func (p *pipe) checkLocked() {
	if p.queuedBytes < 0 || p.queuedBytes > simPipeBytesMax {
		panic("netio: pipe queued bytes out of range: " + itoa(p.queuedBytes))
	}
	if !invariantsExpensive {
		return
	}
	n := len(p.buf)
	for i, c := range p.inflight {
		n += len(c.data)
		if i > 0 && c.deliverAt.Before(p.inflight[i-1].deliverAt) {
			panic("netio: in-flight chunks out of order at " + itoa(i) + ": " +
				c.deliverAt.String() + " < " + p.inflight[i-1].deliverAt.String())
		}
	}
	if n != p.queuedBytes {
		panic("netio: pipe accounting broken: queued=" + itoa(p.queuedBytes) + " actual=" + itoa(n))
	}
}

// enqueueLocked queues data for delivery at deliverAt (or later, to keep
// order) and arms the delivery timer.
func (p *pipe) enqueueLocked(data []byte, deliverAt, now time.Time) {
	if deliverAt.Before(p.lastAt) {
		deliverAt = p.lastAt
	}
	p.lastAt = deliverAt
	p.queuedBytes += len(data)
	if len(p.inflight) == 0 && !deliverAt.After(now) {
		p.buf = append(p.buf, data...)
		p.signalLocked()
		return
	}
	p.inflight = append(p.inflight, chunk{data: data, deliverAt: deliverAt})
	if len(p.inflight) == 1 {
		p.armLocked(now)
	}
}

func (p *pipe) armLocked(now time.Time) {
	d := p.inflight[0].deliverAt.Sub(now)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, p.deliver)
	} else {
		p.timer.Reset(d)
	}
}

// deliver moves every due chunk to buf; it runs on the delivery timer.
func (p *pipe) deliver() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	n := 0
	for n < len(p.inflight) && !p.inflight[n].deliverAt.After(now) {
		p.buf = append(p.buf, p.inflight[n].data...)
		n++
	}
	if n == 0 {
		if len(p.inflight) > 0 {
			p.armLocked(now) // early or stale wakeup
		}
		return
	}
	p.inflight = append(p.inflight[:0], p.inflight[n:]...)
	if len(p.inflight) > 0 {
		p.armLocked(now)
	}
	p.signalLocked()
}

// discardLocked drops all queued data and stops delivery.
func (p *pipe) discardLocked() {
	p.buf, p.inflight, p.queuedBytes = nil, nil, 0
	if p.timer != nil {
		p.timer.Stop()
	}
	p.signalLocked()
}

// simConn is one end of a simulated connection.
type simConn struct {
	sim           *Sim
	local, remote simAddr
	rd, wr        *pipe // rd carries data to us, wr data from us
	peer          *simConn
	readSem       chan struct{} // serialises Reads without a mutex
	writeSem      chan struct{} // serialises Writes (a Write is atomic)
	readDL        *deadline
	writeDL       *deadline
	closeOnce     sync.Once
}

func newSimConnPair(s *Sim, dialer, listener simAddr) (*simConn, *simConn) {
	ab, ba := newPipe(), newPipe()
	a := &simConn{sim: s, local: dialer, remote: listener, rd: ba, wr: ab}
	b := &simConn{sim: s, local: listener, remote: dialer, rd: ab, wr: ba}
	a.peer, b.peer = b, a
	for _, c := range []*simConn{a, b} {
		c.readSem = make(chan struct{}, 1)
		c.writeSem = make(chan struct{}, 1)
		c.readDL = newDeadline()
		c.writeDL = newDeadline()
	}
	return a, b
}

func (c *simConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "sim", Source: c.local, Addr: c.remote, Err: err}
}

// acquire takes sem unless the deadline passes first.
func acquire(sem chan struct{}, dl *deadline) bool {
	select {
	case <-dl.wait():
		return false
	default:
	}
	select {
	case sem <- struct{}{}:
		return true
	case <-dl.wait():
		return false
	}
}

func (c *simConn) Read(b []byte) (int, error) {
	if !acquire(c.readSem, c.readDL) {
		return 0, c.opErr("read", os.ErrDeadlineExceeded)
	}
	defer func() { <-c.readSem }()
	p := c.rd
	for {
		p.mu.Lock()
		if p.readClosed {
			p.mu.Unlock()
			return 0, c.opErr("read", net.ErrClosed)
		}
		if p.err != nil {
			err := p.err
			p.mu.Unlock()
			return 0, c.opErr("read", err)
		}
		if len(p.buf) > 0 && len(b) > 0 {
			n := copy(b, p.buf)
			p.buf = p.buf[n:]
			p.queuedBytes -= n
			p.signalLocked() // a writer may be waiting for room
			p.mu.Unlock()
			return n, nil
		}
		if p.writeClosed && len(p.inflight) == 0 && len(p.buf) == 0 {
			p.mu.Unlock()
			return 0, io.EOF
		}
		if len(b) == 0 {
			p.mu.Unlock()
			return 0, nil
		}
		ch := p.waitChanLocked()
		p.mu.Unlock()
		select {
		case <-ch:
		case <-c.readDL.wait():
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
	}
}

func (c *simConn) Write(b []byte) (int, error) {
	if !acquire(c.writeSem, c.writeDL) {
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	defer func() { <-c.writeSem }()
	written := 0
	for written < len(b) {
		n := min(len(b)-written, simChunkBytesMax)
		if err := c.writeChunk(b[written : written+n]); err != nil {
			return written, c.opErr("write", err)
		}
		written += n
	}
	return written, nil
}

// writeChunk waits for room, asks the Sim for the chunk's fate and queues
// (or loses) it.
func (c *simConn) writeChunk(data []byte) error {
	p := c.wr
	for {
		p.mu.Lock()
		if err := p.writeErrLocked(); err != nil {
			p.mu.Unlock()
			return err
		}
		if p.queuedBytes+len(data) <= simPipeBytesMax {
			p.mu.Unlock()
			break
		}
		ch := p.waitChanLocked()
		p.mu.Unlock()
		select {
		case <-ch:
		case <-c.writeDL.wait():
			return os.ErrDeadlineExceeded
		}
	}
	// Only this goroutine writes to p (writeSem), so the room we saw is
	// still there: readers only free room.
	now := time.Now()
	fate := c.sim.decide(c.local.host, c.remote.host, data, now)
	if fate.lost {
		c.reset(fate.why)
		return c.wr.resetErr()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.writeErrLocked(); err != nil {
		return err
	}
	p.enqueueLocked(append([]byte(nil), data...), fate.deliverAt, now)
	p.checkLocked()
	return nil
}

func (p *pipe) writeErrLocked() error {
	switch {
	case p.err != nil:
		return p.err
	case p.writeClosed:
		return net.ErrClosed
	case p.readClosed:
		return os.NewSyscallError("write", syscall.EPIPE)
	}
	return nil
}

func (p *pipe) resetErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// reset breaks the connection: both ends fail every further Read and Write
// with an error wrapping syscall.ECONNRESET; queued data is lost.
func (c *simConn) reset(why string) {
	err := &resetError{why: why}
	for _, p := range []*pipe{c.rd, c.wr} {
		p.mu.Lock()
		if p.err == nil {
			p.err = err
		}
		p.discardLocked()
		p.mu.Unlock()
	}
	c.sim.forget(c)
	c.sim.forget(c.peer)
}

// resetError is the error of a reset connection.
type resetError struct{ why string }

func (e *resetError) Error() string        { return "connection reset: " + e.why }
func (e *resetError) Is(target error) bool { return target == syscall.ECONNRESET }

// Close closes this end. The peer reads the remaining data, then io.EOF;
// the peer's writes then fail.
func (c *simConn) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.wr.mu.Lock()
		c.wr.writeClosed = true
		c.wr.signalLocked()
		c.wr.mu.Unlock()
		c.rd.mu.Lock()
		c.rd.readClosed = true
		c.rd.discardLocked()
		c.rd.mu.Unlock()
		c.readDL.stop()
		c.writeDL.stop()
		c.sim.forget(c)
	})
	if !first {
		return c.opErr("close", net.ErrClosed)
	}
	return nil
}

// CloseWrite shuts down the writing side: the peer reads io.EOF after the
// data already written.
func (c *simConn) CloseWrite() error {
	c.wr.mu.Lock()
	defer c.wr.mu.Unlock()
	if c.wr.readClosed && c.wr.writeClosed {
		return c.opErr("close", net.ErrClosed)
	}
	c.wr.writeClosed = true
	c.wr.signalLocked()
	return nil
}

func (c *simConn) LocalAddr() net.Addr  { return c.local }
func (c *simConn) RemoteAddr() net.Addr { return c.remote }

func (c *simConn) SetDeadline(t time.Time) error {
	c.readDL.set(t)
	c.writeDL.set(t)
	return nil
}
func (c *simConn) SetReadDeadline(t time.Time) error  { c.readDL.set(t); return nil }
func (c *simConn) SetWriteDeadline(t time.Time) error { c.writeDL.set(t); return nil }

// deadline is a settable point in time whose passing closes a channel, driven
// by a timer rather than polling. A waiter keeps the channel it got from wait;
// moving an unexpired deadline re-arms the timer for that same channel, so a
// blocked Read sees deadlines set after it blocked (as with net.Pipe).
//
// The timer is made once and re-armed with Reset (clients set deadlines on
// every request); a callback that runs for an earlier setting finds the
// current deadline not yet reached, or cleared, and does nothing.
type deadline struct {
	mu     sync.Mutex
	at     time.Time // the deadline; zero: none
	timer  *time.Timer
	passed chan struct{} // closed when the deadline has passed
}

func newDeadline() *deadline { return &deadline{passed: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at = t
	if isClosed(d.passed) {
		d.passed = make(chan struct{})
	}
	if t.IsZero() {
		if d.timer != nil {
			d.timer.Stop()
		}
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		if d.timer != nil {
			d.timer.Stop()
		}
		close(d.passed)
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(dur, d.fire)
	} else {
		d.timer.Reset(dur)
	}
}

// fire is the timer's callback: it closes passed if the current deadline
// has been reached.
func (d *deadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && !time.Now().Before(d.at) && !isClosed(d.passed) {
		close(d.passed)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at = time.Time{}
	if d.timer != nil {
		d.timer.Stop()
	}
}

func itoa(n int) string {
	return strconv.Itoa(n)
}
