package server

import (
	"context"
	"crypto/tls"
	"fmt"
)

// TLS on the Kafka listener is set up outside the server: `chronik serve`
// wraps its listener with netio.WithTLS, whose accepted connections
// implement tlsHandshaker. The server completes the handshake (bounded by
// the listener's handshake timeout) before it reads a request, counts and
// logs a failed one once, and takes the client's principal from a verified
// certificate.

// tlsHandshaker is an accepted TLS connection (netio.ServerTLSConn).
type tlsHandshaker interface {
	Handshake(ctx context.Context) error
	ConnectionState() tls.ConnectionState
}

// AnonymousPrincipal is the principal of a client that proved no identity
// (Kafka's User:ANONYMOUS).
const AnonymousPrincipal = "User:ANONYMOUS"

// tlsPrincipal is Kafka's default principal for a client certificate:
// "User:" and the certificate's subject as an RFC 2253 distinguished name
// (for example User:CN=app,O=Example). Without a verified client
// certificate it is AnonymousPrincipal.
func tlsPrincipal(cs tls.ConnectionState) string {
	if len(cs.VerifiedChains) == 0 || len(cs.PeerCertificates) == 0 {
		return AnonymousPrincipal
	}
	return "User:" + cs.PeerCertificates[0].Subject.String()
}

// handshake completes c's TLS handshake if it is a TLS connection, and
// sets its principal.
func (c *conn) handshake() error {
	h, ok := c.nc.(tlsHandshaker)
	if !ok {
		return nil
	}
	if err := h.Handshake(c.readCtx); err != nil {
		c.s.metrics.tlsHandshakeFailures.Add(1)
		return fmt.Errorf("%w: %v", errTLSHandshake, err)
	}
	cs := h.ConnectionState()
	c.principal = tlsPrincipal(cs)
	c.log.Debug("TLS handshake done", "version", tls.VersionName(cs.Version), "principal", c.principal)
	return nil
}
