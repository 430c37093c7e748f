package netio

import (
	"context"
	"net"
)

// osNetwork is the real network: TCP through the operating system.
type osNetwork struct{}

// NewOS returns the production Network: TCP over the operating system's stack,
// with TCP_NODELAY on every connection (Raft and Kafka both send small,
// latency-sensitive frames).
func NewOS() Network { return osNetwork{} }

func (osNetwork) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return noDelayListener{ln}, nil
}

func (osNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	setNoDelay(c)
	return c, nil
}

// noDelayListener sets TCP_NODELAY on accepted connections. Go already
// defaults to it; we set it explicitly so the contract does not depend on a
// runtime default.
type noDelayListener struct{ net.Listener }

func (l noDelayListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	setNoDelay(c)
	return c, nil
}

func setNoDelay(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		// The error is ignored on purpose: failing to set the option leaves
		// a working, merely slower, connection.
		_ = tc.SetNoDelay(true)
	}
}
