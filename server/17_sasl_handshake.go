package server

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslHandshake: v1
//
// Behaviour:
//   - Lists the enabled mechanisms (Config.SASL) and picks the requested
//     one for the SaslAuthenticate requests that follow (see sasl.go).
//   - A mechanism not enabled (or SASL off on this listener):
//     UNSUPPORTED_SASL_MECHANISM with the enabled list; the connection is
//     closed once the answer is written, as Kafka does.
//   - Allowed before authentication, and again after it to re-authenticate
//     (KIP-368).
//   - Runs in the connection's reader: no request is read until it is
//     answered.
//
// Version notes: v0 is advertised and answered like v1, because
// librdkafka will not authenticate with a broker that does not list it;
// but the raw SASL tokens a v0 client then sends outside Kafka framing are
// not served (they read as a malformed request and close the connection).
// Clients since Kafka 1.0 (librdkafka, the Java client, kgo) send v1 and
// then SaslAuthenticate.

const saslHandshakeKey = 17

func init() {
	register(API{Key: saslHandshakeKey, MinVersion: 0, MaxVersion: 1, Handler: handleSaslHandshake})
}

func handleSaslHandshake(_ context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	s := rc.sasl
	resp.SupportedMechanisms = s.mechanisms()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.enabled(req.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		s.closeAfter = true
		rc.Logger.Info("SASL handshake with a mechanism not enabled; closing after the answer", "mechanism", req.Mechanism, "enabled", resp.SupportedMechanisms)
		return resp, nil
	}
	s.mechanism, s.exchange = req.Mechanism, nil
	return resp, nil
}
