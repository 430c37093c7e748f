package netio

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Limits of the simulated network. Every queue has a bound.
const (
	// simPipeBytesMax bounds the bytes written but not yet read in one
	// direction of one connection (in flight plus buffered). A writer blocks
	// beyond it, as a TCP writer does when both socket buffers are full.
	simPipeBytesMax = 4 << 20
	// simChunkBytesMax splits large writes; each chunk is one unit of delay
	// and of drop decisions.
	simChunkBytesMax = 64 << 10
	// simBacklogMax bounds connections dialled but not yet accepted.
	simBacklogMax = 128
	// simCutDialTimeout is how long a dial across a cut link waits before
	// failing, unless its context ends first.
	simCutDialTimeout = time.Second
	// simEphemeralPortMin is the first port handed out for port 0 and for
	// the local end of dialled connections.
	simEphemeralPortMin = 32768
)

// LinkRule is the behaviour of the one-way link from one host to another.
// The zero value is a perfect link: no delay, unlimited bandwidth.
type LinkRule struct {
	// Delay is added to the delivery of every chunk.
	Delay time.Duration
	// Jitter adds a uniform random [0, Jitter) on top of Delay. Byte order
	// within a connection is preserved regardless.
	Jitter time.Duration
	// BandwidthBytesPerSec, if > 0, serialises chunks on the link: a chunk
	// of n bytes occupies the link for n/BandwidthBytesPerSec.
	BandwidthBytesPerSec int64
	// DropProbability is the chance that a written chunk is lost. A stream
	// cannot lose bytes silently, so the connection carrying it is reset.
	DropProbability float64
	// Cut partitions the link one way: chunks are lost (and their connection
	// reset), and dials in either direction fail (a handshake needs both).
	Cut bool
}

type linkKey struct{ from, to string }

// linkState is a link's rule, its skew (see SetDelaySkew), the time at
// which its (bandwidth-limited) wire is free again, and the chunks whose
// fate was drawn at the instant seenAt, counted by content (see decide).
type linkState struct {
	rule       LinkRule
	skew       time.Duration
	wireFreeAt time.Time
	seenAt     time.Time
	seen       map[uint64]uint64
}

// Sim is a simulated network of named hosts, meant to run inside a
// testing/synctest bubble (it also works in real time). See the package
// documentation for its semantics.
type Sim struct {
	seed    int64
	skewMax time.Duration // see SetDelaySkew

	mu       sync.Mutex // guards the fields below; never held while blocking
	links    map[linkKey]*linkState
	hosts    map[string]*simHost
	isolated map[string]bool // hosts cut from everyone, see Isolate
}

type simHost struct {
	name      string
	listeners map[int]*simListener
	conns     map[*simConn]struct{} // open endpoints whose local end is here
	nextPort  int
	// Dials of the instant dialAt, counted per remote address (see
	// dialPortLocked).
	dialAt time.Time
	dials  map[simAddr]uint64
}

// NewSim returns an empty simulated network. All randomness derives from seed.
func NewSim(seed int64) *Sim {
	return &Sim{
		seed:     seed,
		links:    make(map[linkKey]*linkState),
		hosts:    make(map[string]*simHost),
		isolated: make(map[string]bool),
	}
}

// Host returns the Network endpoint of the named host. Calls with the same
// name share the host's ports and connections.
func (s *Sim) Host(name string) Network {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostLocked(name)
	return simNetwork{sim: s, host: name}
}

func (s *Sim) hostLocked(name string) *simHost {
	h := s.hosts[name]
	if h == nil {
		h = &simHost{
			name:      name,
			listeners: make(map[int]*simListener),
			conns:     make(map[*simConn]struct{}),
			nextPort:  simEphemeralPortMin,
		}
		s.hosts[name] = h
	}
	return h
}

// linkLocked returns the state of the link from->to, creating it (with its
// skew) if needed.
func (s *Sim) linkLocked(from, to string) *linkState {
	k := linkKey{from, to}
	l := s.links[k]
	if l == nil {
		l = &linkState{}
		if s.skewMax > 0 && from != to {
			l.skew = time.Duration(s.stream("skew", from, to, 0).Int64N(int64(s.skewMax)))
		}
		s.links[k] = l
	}
	return l
}

// stream returns the random stream named (what, from, to, k) of the seed:
// a function of those values alone, never of the order in which
// goroutines reach the Sim.
func (s *Sim) stream(what, from, to string, k uint64, extra ...byte) *rand.Rand {
	h := fnv.New64a()
	for _, p := range []string{what, from, to} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write([]byte(strconv.FormatUint(k, 10)))
	h.Write(extra)
	return rand.New(rand.NewPCG(uint64(s.seed), h.Sum64()))
}

// SetDelaySkew gives every link between two distinct hosts, from now on, a
// constant extra delay in [0, max) drawn from (seed, from, to), on top of
// its rule (even the zero rule) and of dials' round trips. With a few
// nanoseconds of skew, messages that two hosts send at one virtual instant
// to a third (or one host sends to two) arrive at distinct instants, so the
// order in which they are handled is decided by virtual time, not by the
// order in which goroutines happen to run. Call it before any traffic:
// links already used keep the skew they had.
func (s *Sim) SetDelaySkew(max time.Duration) {
	if max < 0 {
		panic(fmt.Sprintf("netio: invalid delay skew %v", max))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skewMax = max
	for k, l := range s.links {
		if max > 0 && k.from != k.to && l.skew == 0 {
			l.skew = time.Duration(s.stream("skew", k.from, k.to, 0).Int64N(int64(max)))
		}
	}
}

// SetLink sets the rule of the one-way link from->to.
func (s *Sim) SetLink(from, to string, r LinkRule) {
	if r.DropProbability < 0 || r.DropProbability > 1 || r.Delay < 0 || r.Jitter < 0 || r.BandwidthBytesPerSec < 0 {
		panic(fmt.Sprintf("netio: invalid LinkRule %+v for %s->%s", r, from, to))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkLocked(from, to).rule = r
}

func (s *Sim) setCut(from, to string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linkLocked(from, to).rule.Cut = true
}

// PartitionOneWay cuts the link from->to (other rule fields are kept).
func (s *Sim) PartitionOneWay(from, to string) { s.setCut(from, to) }

// Partition cuts both directions between a and b.
func (s *Sim) Partition(a, b string) {
	s.setCut(a, b)
	s.setCut(b, a)
}

// Isolate cuts every link to and from host, including links to hosts that
// appear later, until Heal.
func (s *Sim) Isolate(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.isolated[host] = true
}

// Heal clears every link rule and isolation. Skews and bandwidth clocks
// are kept, so a healed run stays a function of the seed.
func (s *Sim) Heal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.links {
		l.rule = LinkRule{}
	}
	clear(s.isolated)
}

func (s *Sim) cutLocked(from, to string) bool {
	if from == to {
		return false // a host always reaches itself (loopback)
	}
	if s.isolated[from] || s.isolated[to] {
		return true
	}
	l := s.links[linkKey{from, to}]
	return l != nil && l.rule.Cut
}

// chunkFate is the simulator's decision about one written chunk.
type chunkFate struct {
	deliverAt time.Time
	lost      bool   // the chunk is lost and its connection must be reset
	why       string // for the reset error
}

// decide draws the fate of chunk data on from->to at time now.
func (s *Sim) decide(from, to string, data []byte, now time.Time) chunkFate {
	n := len(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cutLocked(from, to) {
		return chunkFate{lost: true, why: "link " + from + "->" + to + " cut"}
	}
	l := s.links[linkKey{from, to}]
	if l == nil {
		if s.skewMax == 0 || from == to {
			return chunkFate{deliverAt: now}
		}
		l = s.linkLocked(from, to)
	}
	r := l.rule
	var rng *rand.Rand
	if r.DropProbability > 0 || r.Jitter > 0 {
		rng = s.chunkStreamLocked(l, from, to, data, now)
	}
	if r.DropProbability > 0 && rng.Float64() < r.DropProbability {
		return chunkFate{lost: true, why: "chunk dropped on " + from + "->" + to}
	}
	sent := now
	if r.BandwidthBytesPerSec > 0 {
		if l.wireFreeAt.After(sent) {
			sent = l.wireFreeAt
		}
		sent = sent.Add(time.Duration(int64(n) * int64(time.Second) / r.BandwidthBytesPerSec))
		l.wireFreeAt = sent
	}
	d := r.Delay + l.skew
	if r.Jitter > 0 {
		d += time.Duration(rng.Int64N(int64(r.Jitter)))
	}
	return chunkFate{deliverAt: sent.Add(d)}
}

// chunkStreamLocked returns the random stream that decides the fate of
// chunk data written on the link from->to at now: named by the seed, the
// link, the instant, the chunk's bytes and how many chunks with the same
// bytes the link saw at that instant before it. Not by the connection:
// connections dialled at one instant are numbered by goroutine order, and
// so are their first writes, so a per-connection stream handed the same
// chunk a different fate from run to run. Chunks of one instant with the
// same bytes still take their fates in the order they are written.
func (s *Sim) chunkStreamLocked(l *linkState, from, to string, data []byte, now time.Time) *rand.Rand {
	h := fnv.New64a()
	h.Write(data)
	sum := h.Sum64()
	if !l.seenAt.Equal(now) || l.seen == nil {
		l.seenAt, l.seen = now, make(map[uint64]uint64)
	}
	k := l.seen[sum]
	l.seen[sum] = k + 1
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	binary.LittleEndian.PutUint64(b[8:], sum)
	return s.stream("chunk", from, to, k, b[:]...)
}

// Crash resets every connection of host and closes its listeners: a crashed
// node answers nothing. The host may Listen again afterwards (a restart).
func (s *Sim) Crash(host string) {
	s.mu.Lock()
	h := s.hostLocked(host)
	conns := make([]*simConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	lns := make([]*simListener, 0, len(h.listeners))
	for _, l := range h.listeners {
		lns = append(lns, l)
	}
	s.mu.Unlock()
	// Map order is random (it follows the endpoints' addresses in
	// memory); reset in a fixed order so wake-ups are too. The local port
	// alone is no order: every accepted end has the listener's port.
	slices.SortFunc(conns, func(a, b *simConn) int {
		return cmp.Or(cmp.Compare(a.local.port, b.local.port), cmp.Compare(a.remote.host, b.remote.host),
			cmp.Compare(a.remote.port, b.remote.port))
	})
	slices.SortFunc(lns, func(a, b *simListener) int { return cmp.Compare(a.addr.port, b.addr.port) })
	for _, c := range conns {
		c.reset("host " + host + " crashed")
	}
	for _, l := range lns {
		l.Close()
	}
}

// simAddr is a simulated "host:port" address.
type simAddr struct {
	host string
	port int
}

func (a simAddr) Network() string { return "sim" }
func (a simAddr) String() string  { return net.JoinHostPort(a.host, strconv.Itoa(a.port)) }

// simNetwork is one host's view of a Sim.
type simNetwork struct {
	sim  *Sim
	host string
}

func parseSimAddr(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("netio: bad port in %q", addr)
	}
	return h, port, nil
}

func (n simNetwork) Listen(addr string) (net.Listener, error) {
	host, port, err := parseSimAddr(addr)
	if err == nil && host != "" && host != n.host {
		err = fmt.Errorf("netio: host %s cannot listen on %q: %w", n.host, addr, syscall.EADDRNOTAVAIL)
	}
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "sim", Err: err}
	}
	s := n.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hostLocked(n.host)
	if port == 0 {
		var ok bool
		if port, ok = h.ephemeralPortLocked(); !ok {
			return nil, &net.OpError{Op: "listen", Net: "sim", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
		}
	}
	if _, ok := h.listeners[port]; ok {
		return nil, &net.OpError{Op: "listen", Net: "sim", Addr: simAddr{n.host, port},
			Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	}
	l := &simListener{
		sim:     s,
		addr:    simAddr{n.host, port},
		backlog: make(chan *simConn, simBacklogMax),
		closed:  make(chan struct{}),
	}
	h.listeners[port] = l
	return l, nil
}

// ephemeralPortLocked returns a port not used by a listener of h, or false
// if every ephemeral port has one, for Listen on port 0: ports just count
// up (wrapping). Dialled ends take theirs from dialPortLocked.
func (h *simHost) ephemeralPortLocked() (int, bool) {
	for range 65536 - simEphemeralPortMin {
		p := h.nextPort
		h.nextPort++
		if h.nextPort > 65535 {
			h.nextPort = simEphemeralPortMin
		}
		if _, used := h.listeners[p]; !used {
			return p, true
		}
	}
	return 0, false
}

// dialPortLocked returns the local port of a connection that h dials to
// raddr at now: drawn from (seed, h, raddr, now, how many dials h made to
// raddr at now before), never from a counter of h's dials, whose order
// at one instant is the goroutines' order (two connections dialled at
// one instant to different peers swapped ports from run to run). It
// avoids h's listeners and open connections; 0 if every port is taken
// (harmless for a dialled end).
func (h *simHost) dialPortLocked(seed int64, raddr simAddr, now time.Time) int {
	if !h.dialAt.Equal(now) || h.dials == nil {
		h.dialAt, h.dials = now, make(map[simAddr]uint64)
	}
	k := h.dials[raddr]
	h.dials[raddr] = k + 1
	hs := fnv.New64a()
	fmt.Fprintf(hs, "%d\x00%s\x00%s\x00%d\x00%d", seed, h.name, raddr, now.UnixNano(), k)
	const n = 65536 - simEphemeralPortMin
	start := int(hs.Sum64() % n)
	used := make(map[int]bool, len(h.conns))
	for c := range h.conns {
		used[c.local.port] = true
	}
	for i := range n {
		p := simEphemeralPortMin + (start+i)%n
		if _, l := h.listeners[p]; !l && !used[p] {
			return p
		}
	}
	return 0
}

func (n simNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	s := n.sim
	host, port, err := parseSimAddr(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "sim", Err: err}
	}
	raddr := simAddr{host, port}
	opErr := func(e error) error { return &net.OpError{Op: "dial", Net: "sim", Addr: raddr, Err: e} }

	s.mu.Lock()
	cut := s.cutLocked(n.host, host) || s.cutLocked(host, n.host)
	rtt := s.delayLocked(n.host, host) + s.delayLocked(host, n.host)
	s.mu.Unlock()
	if cut {
		rtt = simCutDialTimeout
	}
	if rtt > 0 {
		t := time.NewTimer(rtt)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, opErr(ctx.Err())
		}
	}
	if cut {
		return nil, opErr(os.NewSyscallError("connect", syscall.ETIMEDOUT))
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}

	s.mu.Lock()
	l := s.hosts[host].listenerLocked(port)
	var local, remote *simConn
	if l != nil {
		lh := s.hostLocked(n.host)
		lport := lh.dialPortLocked(s.seed, raddr, time.Now())
		local, remote = newSimConnPair(s, simAddr{n.host, lport}, raddr)
		lh.conns[local] = struct{}{}
		s.hosts[host].conns[remote] = struct{}{}
	}
	s.mu.Unlock()
	if l == nil {
		return nil, opErr(os.NewSyscallError("connect", syscall.ECONNREFUSED))
	}
	select {
	case l.backlog <- remote:
		select {
		case <-l.closed:
			// Close may have drained the backlog before we queued.
			l.drain()
		default:
			return local, nil
		}
	case <-l.closed:
	case <-ctx.Done():
	}
	local.reset("dial abandoned")
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}
	return nil, opErr(os.NewSyscallError("connect", syscall.ECONNREFUSED))
}

// delayLocked is the fixed one-way delay of from->to: its rule's Delay
// plus its skew.
func (s *Sim) delayLocked(from, to string) time.Duration {
	if l := s.links[linkKey{from, to}]; l != nil {
		return l.rule.Delay + l.skew
	}
	if s.skewMax > 0 && from != to {
		return s.linkLocked(from, to).skew
	}
	return 0
}

func (h *simHost) listenerLocked(port int) *simListener {
	if h == nil {
		return nil
	}
	return h.listeners[port]
}

// forget removes an endpoint from its host's registry.
func (s *Sim) forget(c *simConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hosts[c.local.host]; h != nil {
		delete(h.conns, c)
	}
}

// simListener is a listening port of a simulated host.
type simListener struct {
	sim       *Sim
	addr      simAddr
	backlog   chan *simConn
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *simListener) Accept() (net.Conn, error) {
	// Check closed first so Accept after Close fails even with a backlog.
	select {
	case <-l.closed:
		return nil, l.closedErr()
	default:
	}
	select {
	case c := <-l.backlog:
		return c, nil
	case <-l.closed:
		return nil, l.closedErr()
	}
}

func (l *simListener) closedErr() error {
	return &net.OpError{Op: "accept", Net: "sim", Addr: l.addr, Err: net.ErrClosed}
}

func (l *simListener) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		close(l.closed)
		s := l.sim
		s.mu.Lock()
		if h := s.hosts[l.addr.host]; h != nil && h.listeners[l.addr.port] == l {
			delete(h.listeners, l.addr.port)
		}
		s.mu.Unlock()
	})
	if !first {
		return l.closedErr()
	}
	l.drain()
	return nil
}

// drain resets connections dialled but never accepted.
func (l *simListener) drain() {
	for {
		select {
		case c := <-l.backlog:
			c.reset("listener closed")
		default:
			return
		}
	}
}

func (l *simListener) Addr() net.Addr { return l.addr }
