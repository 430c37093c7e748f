package netio

import (
	"context"
	"net"
)

// Network is the network seam: what a node uses to accept and open stream
// connections. Kafka traffic, Raft traffic (see Transport) and clients in
// tests all go through it.
//
// Addresses are "host:port". For OS, host is an IP or a name; for Sim, host is
// a simulated host's name and each Network is bound to one host (Sim.Host), so
// the simulator knows which link a connection crosses.
type Network interface {
	// Listen announces on addr. Closing the listener unblocks Accept with
	// net.ErrClosed.
	Listen(addr string) (net.Listener, error)
	// Dial connects to addr, giving up when ctx is done.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// KgoDialer adapts a Network to the signature of franz-go's kgo.Dialer option,
// so a real Kafka client can run over it (including over Sim).
func KgoDialer(n Network) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _ string, addr string) (net.Conn, error) {
		return n.Dial(ctx, addr)
	}
}
