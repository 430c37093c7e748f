package server

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiKeyLimit bounds the per-API metric arrays; kmsg knows fewer keys.
const apiKeyLimit = 128

// Metrics counts what the wire layer sees. Safe for concurrent use; written
// in the Prometheus text format by WritePrometheus (no client library: the
// format is a few lines and keeps the dependency list short).
type Metrics struct {
	requests      [apiKeyLimit]atomic.Uint64 // dispatched requests by API key
	failed        [apiKeyLimit]atomic.Uint64 // handler Go errors or panics (connection closed)
	latencyNs     [apiKeyLimit]atomic.Uint64 // summed handler time
	connsOpen     atomic.Int64
	connsAccepted atomic.Uint64
	// tlsHandshakeFailures counts TLS connections closed because their
	// handshake failed or timed out.
	tlsHandshakeFailures atomic.Uint64
	saslSuccesses        atomic.Uint64 // authentications and re-authentications
	saslFailures         atomic.Uint64
}

func (m *Metrics) observe(key int16, d time.Duration, failed bool) {
	if key < 0 || int(key) >= apiKeyLimit {
		return
	}
	m.requests[key].Add(1)
	m.latencyNs[key].Add(uint64(d))
	if failed {
		m.failed[key].Add(1)
	}
}

// WritePrometheus writes every metric in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	p("# HELP chronik_connections_open Kafka client connections open.\n# TYPE chronik_connections_open gauge\nchronik_connections_open %d\n", m.connsOpen.Load())
	p("# HELP chronik_connections_accepted_total Kafka client connections accepted.\n# TYPE chronik_connections_accepted_total counter\nchronik_connections_accepted_total %d\n", m.connsAccepted.Load())
	p("# HELP chronik_tls_handshake_failures_total Kafka client TLS handshakes that failed or timed out.\n# TYPE chronik_tls_handshake_failures_total counter\nchronik_tls_handshake_failures_total %d\n", m.tlsHandshakeFailures.Load())
	p("# HELP chronik_sasl_authentications_total SASL authentications (and re-authentications), by outcome.\n# TYPE chronik_sasl_authentications_total counter\nchronik_sasl_authentications_total{outcome=\"success\"} %d\nchronik_sasl_authentications_total{outcome=\"failure\"} %d\n", m.saslSuccesses.Load(), m.saslFailures.Load())
	p("# HELP chronik_requests_total Kafka requests handled, by API.\n# TYPE chronik_requests_total counter\n")
	for k := range apiKeyLimit {
		if n := m.requests[k].Load(); n > 0 {
			p("chronik_requests_total{api=%q} %d\n", kmsg.NameForKey(int16(k)), n)
		}
	}
	p("# HELP chronik_request_failures_total Requests whose handler failed and closed the connection, by API.\n# TYPE chronik_request_failures_total counter\n")
	for k := range apiKeyLimit {
		if n := m.failed[k].Load(); n > 0 {
			p("chronik_request_failures_total{api=%q} %d\n", kmsg.NameForKey(int16(k)), n)
		}
	}
	p("# HELP chronik_request_seconds_total Time spent in request handlers, by API.\n# TYPE chronik_request_seconds_total counter\n")
	for k := range apiKeyLimit {
		if n := m.latencyNs[k].Load(); n > 0 {
			p("chronik_request_seconds_total{api=%q} %.6f\n", kmsg.NameForKey(int16(k)), float64(n)/1e9)
		}
	}
	return err
}
