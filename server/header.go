package server

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RequestContext describes one request to its handler. It is built by the
// connection before dispatch and is not modified afterwards.
type RequestContext struct {
	APIKey        int16
	Version       int16
	CorrelationID int32
	// ClientID is the header's client id; a null client id reads as "", as
	// in Kafka.
	ClientID   string
	ConnID     uint64
	RemoteAddr net.Addr
	LocalAddr  net.Addr
	// Principal is the client's identity: User:<name> after SASL, else
	// "User:" and the subject of a verified TLS client certificate, else
	// AnonymousPrincipal.
	Principal string
	// Logger carries the connection and request attributes.
	Logger *slog.Logger
	// Registry is the table the server dispatches from (ApiVersions
	// answers from it).
	Registry *Registry
	// Broker is the node this server fronts (Config.Broker; nil only in
	// wire-layer tests).
	Broker *Broker

	sasl    *saslSession // the connection's SASL state (never nil)
	metrics *Metrics
	authz   *AuthorizerConfig // nil: no authorization
	// receivedNanos is when the request's last byte was read (wall
	// clock, UnixNano), for the produce "queue" stage metric.
	receivedNanos int64
	// releaseOrder, set for an API.Ordered request, lets the connection's
	// next request of the same key start (ReleaseOrder).
	releaseOrder func()
}

// ReleaseOrder lets the connection's next request of the same Ordered API
// start before this handler returns: called once everything that must
// happen in request order is done (a Produce: every partition's entry
// submitted to its shard). Calling it more than once, or for an API that
// is not Ordered, does nothing; the connection calls it when the handler
// returns in any case.
func (rc *RequestContext) ReleaseOrder() {
	if rc.releaseOrder != nil {
		rc.releaseOrder()
	}
}

// Sentinel errors of the framing and header layer. Each closes the
// connection it occurred on.
var (
	ErrFrameSize        = errors.New("server: request frame size out of range")
	ErrMalformedHeader  = errors.New("server: malformed request header")
	ErrUnknownAPIKey    = errors.New("server: unknown API key")
	ErrUnsupportedVers  = errors.New("server: unsupported API version")
	ErrMalformedRequest = errors.New("server: malformed request body")
)

// minHeaderBytes is the smallest request header: api key (2), api version
// (2), correlation id (4), client id length (2).
const minHeaderBytes = 10

// requestHeader is a parsed request header (v1 or v2).
type requestHeader struct {
	key      int16
	version  int16
	corr     int32
	clientID string
}

// parseHeaderPrefix reads the fields every request header version shares:
// api key, api version and correlation id. It needs no knowledge of the key,
// so the connection can answer (or log) with the correlation id even when it
// rejects the rest.
func parseHeaderPrefix(frame []byte) (requestHeader, error) {
	if len(frame) < minHeaderBytes {
		return requestHeader{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrMalformedHeader, len(frame), minHeaderBytes)
	}
	return requestHeader{
		key:     int16(binary.BigEndian.Uint16(frame[0:])),
		version: int16(binary.BigEndian.Uint16(frame[2:])),
		corr:    int32(binary.BigEndian.Uint32(frame[4:])),
	}, nil
}

// parseHeaderRest reads the client id (a non-compact nullable string in both
// header v1 and v2) and, for flexible requests (header v2), the header's
// tagged fields. It returns the header and the request body.
func parseHeaderRest(frame []byte, h requestHeader, flexible bool) (requestHeader, []byte, error) {
	r := byteReader{src: frame[8:]}
	n := r.int16()
	switch {
	case n == -1:
	case n < 0:
		return h, nil, fmt.Errorf("%w: client id length %d", ErrMalformedHeader, n)
	default:
		h.clientID = string(r.Span(int(n)))
	}
	if flexible {
		kmsg.SkipTags(&r)
	}
	if !r.Ok() {
		return h, nil, fmt.Errorf("%w: truncated (key %d, version %d)", ErrMalformedHeader, h.key, h.version)
	}
	return h, r.src, nil
}

// byteReader is a bounds-checked reader that fails instead of panicking; it
// implements kmsg.TagReader (with Ok, which kmsg.SkipTags honours).
type byteReader struct {
	src []byte
	bad bool
}

func (r *byteReader) Ok() bool { return !r.bad }

func (r *byteReader) fail() { r.bad, r.src = true, nil }

func (r *byteReader) int16() int16 {
	if len(r.src) < 2 {
		r.fail()
		return 0
	}
	v := int16(binary.BigEndian.Uint16(r.src))
	r.src = r.src[2:]
	return v
}

// Span returns the next n bytes (aliasing the source).
func (r *byteReader) Span(n int) []byte {
	if n < 0 || len(r.src) < n {
		r.fail()
		return nil
	}
	v := r.src[:n:n]
	r.src = r.src[n:]
	return v
}

// Uvarint reads an unsigned varint of at most 5 bytes (Kafka's uint32).
func (r *byteReader) Uvarint() uint32 {
	var v uint32
	for i := 0; i < 5; i++ {
		if len(r.src) == 0 {
			r.fail()
			return 0
		}
		b := r.src[0]
		r.src = r.src[1:]
		if i == 4 && b > 0x0f {
			r.fail()
			return 0
		}
		v |= uint32(b&0x7f) << (7 * i)
		if b < 0x80 {
			return v
		}
	}
	r.fail()
	return 0
}
