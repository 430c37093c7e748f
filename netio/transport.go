package netio

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lni/dragonboat/v4/config"
	"github.com/lni/dragonboat/v4/raftio"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// Frame format of the Raft transport (all integers big-endian):
//
//	+--------+------+----------+--------+--------+------------------+
//	| magic  | kind | reserved | length | crc32c | payload          |
//	| uint32 | u16  | u16 (0)  | uint32 | uint32 | length bytes     |
//	+--------+------+----------+--------+--------+------------------+
//	 <------------- frameHeaderBytes = 16 ------------->
//
// kind is frameKindBatch (payload = pb.MessageBatch) or frameKindChunk
// (payload = pb.Chunk). crc32c is the Castagnoli CRC of the header's first
// 12 bytes followed by the payload, so a flipped kind or length is caught
// too (an empty batch also decodes as an empty chunk).
// 0 < length <= framePayloadBytesMax. These constants are frozen: changing
// them breaks mixed-version clusters.
const (
	frameMagic           uint32 = 0x43484b52 // "CHKR"
	frameHeaderBytes            = 16
	frameKindBatch       uint16 = 1
	frameKindChunk       uint16 = 2
	framePayloadBytesMax        = 65 << 20 // dragonboat's 64 MiB batch limit plus headroom

	// transportName is reported by ITransport.Name.
	transportName = "chronik-netio"
	// transportDialTimeout bounds GetConnection when ctx has no deadline.
	transportDialTimeout = 2 * time.Second
	// transportWriteTimeout bounds one frame's write.
	transportWriteTimeout = 5 * time.Second
	// transportPayloadReadTimeout bounds reading a payload once its header
	// arrived; an idle connection (between frames) has no deadline.
	transportPayloadReadTimeout = 10 * time.Second
)

// Sentinel errors of the transport. A connection that sees a bad frame is
// closed; the error is logged, never a panic.
var (
	ErrBadFrame        = errors.New("netio: bad transport frame")
	ErrFrameTooLarge   = errors.New("netio: transport frame too large")
	ErrTransportClosed = errors.New("netio: transport closed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// TransportOption configures NewTransportFactory.
type TransportOption func(*transportFactory)

// WithTransportLogger sets the logger for connection errors (default: none).
func WithTransportLogger(l *slog.Logger) TransportOption {
	return func(f *transportFactory) { f.log = l }
}

// WithAckObserver sets a function the transport calls with what it sees
// of followers' progress: as it decodes an incoming batch, before
// dragonboat gets it, each accepted (non-rejected) ReplicateResp and each
// HeartbeatResp; as it sends a batch, each Heartbeat (which carries the
// leader's own view of the follower's match index). It runs on the
// transport's reader and sender goroutines, so it must be cheap and must
// never block; RaftAck is passed by value (no allocation). This is how
// core/node learns followers' match indexes, which dragonboat's public API
// does not expose (see core/node's "In-sync replicas").
func WithAckObserver(f func(RaftAck)) TransportOption {
	return func(tf *transportFactory) { tf.onAck = f }
}

// AckKind says which message a RaftAck comes from.
type AckKind uint8

const (
	// AckReplicate: the follower accepted a Replicate (incoming
	// ReplicateResp). LogIndex is the index up to which its log matches
	// the leader's; the follower answers only after persisting it.
	AckReplicate AckKind = 1
	// AckHeartbeat: the follower answered a heartbeat (incoming
	// HeartbeatResp): it is alive and follows the leader. LogIndex is 0.
	AckHeartbeat AckKind = 2
	// AckLeaderHeartbeat: the leader sends the follower a heartbeat
	// (outgoing Heartbeat). LogIndex is min(the leader's match index for
	// the follower, the leader's commit index): dragonboat's own record,
	// which says nothing about whether the follower is still alive.
	AckLeaderHeartbeat AckKind = 3
)

// RaftAck is what a leader's node sees of one follower's progress. It
// states what the message said, not what dragonboat made of it: a message
// of a stale term is reported too (Term tells).
type RaftAck struct {
	Kind     AckKind
	ShardID  uint64
	Follower uint64 // the follower's replica id
	Term     uint64 // the sender's term
	LogIndex uint64 // see AckKind
}

type transportFactory struct {
	n     Network
	log   *slog.Logger
	onAck func(RaftAck)
}

// NewTransportFactory returns a dragonboat TransportFactory whose transports
// send Raft messages and snapshot chunks over n, encoded as frames (see the
// frame format above). Use it as NodeHostConfig.Expert.TransportFactory.
func NewTransportFactory(n Network, opts ...TransportOption) config.TransportFactory {
	f := &transportFactory{n: n}
	for _, o := range opts {
		o(f)
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

func (f *transportFactory) Create(cfg config.NodeHostConfig,
	mh raftio.MessageHandler, ch raftio.ChunkHandler) raftio.ITransport {
	addr := cfg.RaftAddress
	if cfg.ListenAddress != "" {
		addr = cfg.ListenAddress
	}
	return &transport{
		n: f.n, listenAddr: addr, log: f.log.With("raft_address", cfg.RaftAddress),
		onBatch: mh, onChunk: ch, onAck: f.onAck, conns: make(map[net.Conn]struct{}),
	}
}

// Validate accepts "host:port" with a non-empty host and a port in 1..65535.
func (f *transportFactory) Validate(addr string) bool {
	h, p, err := net.SplitHostPort(addr)
	if err != nil || h == "" {
		return false
	}
	port, err := strconv.Atoi(p)
	return err == nil && port > 0 && port <= 65535
}

// transport implements raftio.ITransport over a Network.
//
// Concurrency: Start, Close, GetConnection and GetSnapshotConnection are safe
// for concurrent use. Each connection's Send methods must be called from one
// goroutine at a time (dragonboat does so).
// Invariant: after Close returns, no goroutine of the transport runs and every
// connection it opened or accepted is closed.
type transport struct {
	n          Network
	listenAddr string
	log        *slog.Logger
	onBatch    raftio.MessageHandler
	onChunk    raftio.ChunkHandler
	onAck      func(RaftAck) // nil: no observer

	mu     sync.Mutex // guards the fields below; never held while blocking
	ln     net.Listener
	conns  map[net.Conn]struct{} // open incoming and outgoing connections
	closed bool

	wg sync.WaitGroup // accept loop and connection readers
}

func (t *transport) Name() string { return transportName }

func (t *transport) Start() error {
	ln, err := t.n.Listen(t.listenAddr)
	if err != nil {
		return fmt.Errorf("netio: transport listen %s: %w", t.listenAddr, err)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		ln.Close()
		return ErrTransportClosed
	}
	t.ln = ln
	t.wg.Add(1)
	t.mu.Unlock()
	go t.acceptLoop(ln)
	return nil
}

// addr is the listening address (useful with port 0); nil before Start.
func (t *transport) addr() net.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln == nil {
		return nil
	}
	return t.ln.Addr()
}

func (t *transport) Close() error {
	t.mu.Lock()
	t.closed = true
	ln := t.ln
	conns := make([]net.Conn, 0, len(t.conns))
	for c := range t.conns {
		conns = append(conns, c)
	}
	t.mu.Unlock()
	// In a fixed order, not in map order (which follows addresses in
	// memory), so that the wake-ups are the same in every run of a
	// simulated seed.
	slices.SortFunc(conns, func(a, b net.Conn) int {
		return cmp.Or(cmp.Compare(a.LocalAddr().String(), b.LocalAddr().String()),
			cmp.Compare(a.RemoteAddr().String(), b.RemoteAddr().String()))
	})
	if ln != nil {
		ln.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	t.wg.Wait()
	return nil
}

// track registers c; it returns false (and closes c) once the transport is
// closed, so Close never misses a connection.
func (t *transport) track(c net.Conn) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	return true
}

func (t *transport) untrack(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

func (t *transport) acceptLoop(ln net.Listener) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.log.Warn("raft transport: accept failed", "err", err)
			}
			return
		}
		t.mu.Lock()
		ok := !t.closed
		if ok {
			t.conns[c] = struct{}{}
			t.wg.Add(1)
		}
		t.mu.Unlock()
		if !ok {
			c.Close()
			return
		}
		go t.serve(c)
	}
}

// serve reads frames from one incoming connection until it fails or the
// transport closes.
func (t *transport) serve(c net.Conn) {
	defer t.wg.Done()
	defer t.untrack(c)
	hdr := make([]byte, frameHeaderBytes)
	for {
		kind, payload, err := readFrame(c, hdr)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.log.Warn("raft transport: closing connection", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		if err := t.dispatch(kind, payload); err != nil {
			t.log.Warn("raft transport: closing connection", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
	}
}

func (t *transport) dispatch(kind uint16, payload []byte) error {
	switch kind {
	case frameKindBatch:
		var b pb.MessageBatch
		if err := b.Unmarshal(payload); err != nil {
			return fmt.Errorf("%w: message batch: %v", ErrBadFrame, err)
		}
		if t.onAck != nil {
			// Before onBatch: dragonboat may keep the batch.
			t.observeAcks(b.Requests)
		}
		t.onBatch(b)
	case frameKindChunk:
		var ch pb.Chunk
		if err := ch.Unmarshal(payload); err != nil {
			return fmt.Errorf("%w: snapshot chunk: %v", ErrBadFrame, err)
		}
		if !t.onChunk(ch) {
			return errors.New("netio: snapshot chunk rejected by handler")
		}
	default:
		panic(fmt.Sprintf("netio: readFrame returned unknown kind %d", kind))
	}
	return nil
}

// observeAcks reports followers' answers in msgs (incoming) to onAck.
func (t *transport) observeAcks(msgs []pb.Message) {
	for i := range msgs {
		m := &msgs[i]
		switch {
		case m.Type == pb.ReplicateResp && !m.Reject:
			t.onAck(RaftAck{Kind: AckReplicate, ShardID: m.ShardID, Follower: m.From, Term: m.Term, LogIndex: m.LogIndex})
		case m.Type == pb.HeartbeatResp:
			t.onAck(RaftAck{Kind: AckHeartbeat, ShardID: m.ShardID, Follower: m.From, Term: m.Term})
		}
	}
}

// observeSent reports the leader's heartbeats in msgs (outgoing) to onAck.
func (t *transport) observeSent(msgs []pb.Message) {
	for i := range msgs {
		if m := &msgs[i]; m.Type == pb.Heartbeat {
			t.onAck(RaftAck{Kind: AckLeaderHeartbeat, ShardID: m.ShardID, Follower: m.To, Term: m.Term, LogIndex: m.Commit})
		}
	}
}

// frameSource is the part of net.Conn that readFrame needs.
type frameSource interface {
	io.Reader
	SetReadDeadline(time.Time) error
}

// readFrame reads one frame; hdr is a frameHeaderBytes scratch buffer.
func readFrame(c frameSource, hdr []byte) (uint16, []byte, error) {
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		return 0, nil, err
	}
	if _, err := io.ReadFull(c, hdr); err != nil {
		return 0, nil, err
	}
	magic := binary.BigEndian.Uint32(hdr[0:])
	kind := binary.BigEndian.Uint16(hdr[4:])
	reserved := binary.BigEndian.Uint16(hdr[6:])
	length := binary.BigEndian.Uint32(hdr[8:])
	crc := binary.BigEndian.Uint32(hdr[12:])
	switch {
	case magic != frameMagic:
		return 0, nil, fmt.Errorf("%w: magic %#x", ErrBadFrame, magic)
	case kind != frameKindBatch && kind != frameKindChunk:
		return 0, nil, fmt.Errorf("%w: kind %d", ErrBadFrame, kind)
	case reserved != 0:
		return 0, nil, fmt.Errorf("%w: reserved %#x", ErrBadFrame, reserved)
	case length == 0:
		return 0, nil, fmt.Errorf("%w: empty payload", ErrBadFrame)
	case length > framePayloadBytesMax:
		return 0, nil, fmt.Errorf("%w: %d bytes > %d", ErrFrameTooLarge, length, framePayloadBytesMax)
	}
	if err := c.SetReadDeadline(time.Now().Add(transportPayloadReadTimeout)); err != nil {
		return 0, nil, err
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(c, payload); err != nil {
		return 0, nil, err
	}
	if got := frameCRC(hdr[:12], payload); got != crc {
		return 0, nil, fmt.Errorf("%w: crc %#x, header says %#x", ErrBadFrame, got, crc)
	}
	return kind, payload, nil
}

// frameCRC is the CRC-32C of the header's fixed fields (magic, kind,
// reserved, length) followed by the payload.
func frameCRC(hdr12, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr12, castagnoli), castagnoli, payload)
}

// marshaler is what pb.MessageBatch and pb.Chunk provide.
type marshaler interface {
	Size() int
	MarshalTo([]byte) (int, error)
}

// encodeFrame returns header+payload in one buffer so a frame is one Write.
func encodeFrame(kind uint16, m marshaler) ([]byte, error) {
	size := m.Size()
	if size == 0 || size > framePayloadBytesMax {
		return nil, fmt.Errorf("%w: payload of %d bytes (max %d)", ErrFrameTooLarge, size, framePayloadBytesMax)
	}
	buf := make([]byte, frameHeaderBytes+size)
	n, err := m.MarshalTo(buf[frameHeaderBytes:])
	if err != nil {
		return nil, err
	}
	if n != size {
		panic(fmt.Sprintf("netio: marshalled %d bytes, Size said %d", n, size))
	}
	payload := buf[frameHeaderBytes:]
	binary.BigEndian.PutUint32(buf[0:], frameMagic)
	binary.BigEndian.PutUint16(buf[4:], kind)
	binary.BigEndian.PutUint16(buf[6:], 0)
	binary.BigEndian.PutUint32(buf[8:], uint32(size))
	binary.BigEndian.PutUint32(buf[12:], frameCRC(buf[:12], payload))
	return buf, nil
}

func (t *transport) dial(ctx context.Context, target string) (*outConn, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, transportDialTimeout)
		defer cancel()
	}
	c, err := t.n.Dial(ctx, target)
	if err != nil {
		return nil, err
	}
	if !t.track(c) {
		return nil, ErrTransportClosed
	}
	return &outConn{t: t, c: c}, nil
}

func (t *transport) GetConnection(ctx context.Context, target string) (raftio.IConnection, error) {
	return t.dial(ctx, target)
}

func (t *transport) GetSnapshotConnection(ctx context.Context, target string) (raftio.ISnapshotConnection, error) {
	return t.dial(ctx, target)
}

// outConn is an outgoing connection; it serves as both IConnection and
// ISnapshotConnection.
type outConn struct {
	t *transport
	c net.Conn
}

func (o *outConn) Close() { o.t.untrack(o.c) }

func (o *outConn) SendMessageBatch(b pb.MessageBatch) error {
	if o.t.onAck != nil {
		o.t.observeSent(b.Requests)
	}
	return o.send(frameKindBatch, &b)
}

func (o *outConn) SendChunk(ch pb.Chunk) error {
	return o.send(frameKindChunk, &ch)
}

func (o *outConn) send(kind uint16, m marshaler) error {
	buf, err := encodeFrame(kind, m)
	if err != nil {
		return err
	}
	if err := o.c.SetWriteDeadline(time.Now().Add(transportWriteTimeout)); err != nil {
		return err
	}
	_, err = o.c.Write(buf)
	return err
}
