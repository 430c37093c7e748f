package sim

import (
	"context"
	"hash/fnv"
	"net"

	"github.com/chronik-go/chronik/netio"
)

// The fine trace (runOpts.fine, on in the divergence finder): every dial,
// accept, write and close on the simulated network becomes a trace event
// (kind evNet), with the bytes written hashed. Two runs of one seed that
// part on the network show it at the first message that differs, long
// before the clients' acks and reads do.

const evNet = "net"

// tracedNet wraps one host's Network.
type tracedNet struct {
	inner netio.Network
	host  string
	tr    *trace
}

// network returns host's endpoint, traced when the run's trace is fine.
func (c *cluster) network(host string) netio.Network {
	n := c.net.Host(host)
	if !c.fine {
		return n
	}
	return tracedNet{inner: n, host: host, tr: c.tr}
}

func (n tracedNet) Listen(addr string) (net.Listener, error) {
	l, err := n.inner.Listen(addr)
	if err != nil {
		return nil, err
	}
	return tracedListener{Listener: l, tr: n.tr}, nil
}

func (n tracedNet) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := n.inner.Dial(ctx, addr)
	if err != nil {
		n.tr.add(evNet, "%s dial %s: %v", n.host, addr, err)
		return nil, err
	}
	n.tr.add(evNet, "%s dial %s -> %s", n.host, addr, c.LocalAddr())
	return tracedConn{Conn: c, tr: n.tr}, nil
}

type tracedListener struct {
	net.Listener
	tr *trace
}

func (l tracedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.tr.add(evNet, "%s accept %s", c.LocalAddr(), c.RemoteAddr())
	return tracedConn{Conn: c, tr: l.tr}, nil
}

type tracedConn struct {
	net.Conn
	tr *trace
}

func (c tracedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	h := fnv.New32a()
	h.Write(p[:n])
	c.tr.add(evNet, "%s > %s write %d %08x err=%v", c.LocalAddr(), c.RemoteAddr(), n, h.Sum32(), err != nil)
	return n, err
}

func (c tracedConn) Close() error {
	c.tr.add(evNet, "%s > %s close", c.LocalAddr(), c.RemoteAddr())
	return c.Conn.Close()
}
