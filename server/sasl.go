package server

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// SASL (KIP-43, KIP-152, KIP-368): when Config.SASL names mechanisms,
// every connection must authenticate before any request other than
// ApiVersions, SaslHandshake and SaslAuthenticate; another request closes
// the connection, as Kafka does. SaslHandshake v1 picks the mechanism and
// SaslAuthenticate carries its messages (v0 of SaslHandshake, raw tokens
// after the handshake, is not served: Kafka 4 removed it). Both run in
// the connection's reader, one at a time, so the exchange is strictly
// ordered. A failed authentication is answered after FailedAuthDelay and
// closes the connection once the answer is written. With a
// SessionLifetime, SaslAuthenticate tells the client its session lifetime
// and a connection whose session expired is closed at its next request
// unless it re-authenticated (KIP-368); a re-authentication must keep the
// principal.
//
// Credentials are SCRAM credentials replicated in the controller
// (core/meta scram.go); PLAIN checks the password against the user's
// SCRAM-SHA-512 or SCRAM-SHA-256 credential.

// SASL mechanism names.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Defaults of SASLConfig's zero fields.
const (
	// DefaultFailedAuthDelay is Kafka's connection.failed.authentication.delay.ms.
	DefaultFailedAuthDelay = 100 * time.Millisecond
	// saslTokenBytesMax bounds one SaslAuthenticate token.
	saslTokenBytesMax = 64 << 10
)

// SASLConfig turns SASL on for a server's connections.
type SASLConfig struct {
	// Mechanisms are the enabled mechanisms (SASLPlain, SASLScramSHA256,
	// SASLScramSHA512), in the order SaslHandshake lists them.
	Mechanisms []string
	// SessionLifetime is Kafka's connections.max.reauth.ms: zero means a
	// session never expires.
	SessionLifetime time.Duration
	// FailedAuthDelay delays the answer to a failed authentication.
	FailedAuthDelay time.Duration
}

// ValidSASLMechanism reports whether name is a mechanism Chronik serves.
func ValidSASLMechanism(name string) bool {
	return name == SASLPlain || name == SASLScramSHA256 || name == SASLScramSHA512
}

var (
	// errSASLState: a request other than the SASL ones before
	// authentication (Kafka's IllegalSaslStateException).
	errSASLState = errors.New("server: request before SASL authentication")
	// errSASLExpired: a request after the session's lifetime without
	// re-authentication.
	errSASLExpired = errors.New("server: SASL session expired")
	// errSASLFailed ends a connection after its failed authentication has
	// been answered (wraps errStopReading: the answer is written first).
	errSASLFailed = fmt.Errorf("%w: SASL authentication failed", errStopReading)
)

// saslSession is a connection's SASL state. Its handlers run in the
// connection's reader goroutine, one at a time; mu guards the fields for
// the metrics and logs that read them elsewhere.
type saslSession struct {
	cfg *SASLConfig

	mu            sync.Mutex
	mechanism     string       // chosen by the last SaslHandshake; "" none
	exchange      saslExchange // the exchange in progress, if any
	authenticated bool
	principal     string    // "User:<name>" once authenticated
	expires       time.Time // zero: never
	closeAfter    bool      // the last answer ends the connection
}

// saslExchange is one mechanism's server side of an authentication.
type saslExchange interface {
	// step consumes the client's next message. It returns the answer, and
	// done with the authenticated user when the exchange is complete.
	step(in []byte) (out []byte, done bool, user string, err error)
}

// errSASLCredentials is every credential failure: the client learns
// nothing about which part was wrong.
var errSASLCredentials = errors.New("invalid credentials")

// credentials looks users up (the node's replicated credentials).
type credentials interface {
	ScramCredential(user string, mech meta.ScramMechanism) (meta.ScramCredential, bool)
}

func newExchange(mech string, creds credentials) saslExchange {
	switch mech {
	case SASLPlain:
		return &plainExchange{creds: creds}
	case SASLScramSHA256:
		return &scramExchange{creds: creds, mech: meta.ScramSHA256}
	case SASLScramSHA512:
		return &scramExchange{creds: creds, mech: meta.ScramSHA512}
	}
	return nil
}

// plainExchange is RFC 4616: one message, [authzid] NUL user NUL password.
type plainExchange struct{ creds credentials }

func (p *plainExchange) step(in []byte) ([]byte, bool, string, error) {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return nil, false, "", errors.New("malformed PLAIN message")
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	if user == "" || authz != "" && authz != user {
		return nil, false, "", errors.New("PLAIN: empty user, or an authorization id other than the user")
	}
	for _, mech := range []meta.ScramMechanism{meta.ScramSHA512, meta.ScramSHA256} {
		if c, ok := p.creds.ScramCredential(user, mech); ok {
			if node.ScramCheckPassword(c, pass) {
				return nil, true, user, nil
			}
			break
		}
	}
	return nil, false, user, errSASLCredentials
}

// scramExchange is RFC 5802's server: client-first, server-first,
// client-final, server-final.
type scramExchange struct {
	creds credentials
	mech  meta.ScramMechanism

	stage           int // 0: awaiting client-first; 1: awaiting client-final
	user            string
	cred            meta.ScramCredential
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
}

func (s *scramExchange) step(in []byte) ([]byte, bool, string, error) {
	switch s.stage {
	case 0:
		return s.clientFirst(string(in))
	case 1:
		return s.clientFinal(string(in))
	}
	return nil, false, s.user, errors.New("SCRAM: exchange already complete")
}

func (s *scramExchange) clientFirst(msg string) ([]byte, bool, string, error) {
	// gs2-header: "n,," or "y,," (no channel binding), optionally with
	// an authzid "a=...", which must be the user if given.
	cb, rest, ok := strings.Cut(msg, ",")
	if !ok || cb != "n" && cb != "y" {
		return nil, false, "", errors.New("SCRAM: unsupported channel binding")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, false, "", errors.New("SCRAM: malformed client-first message")
	}
	s.gs2Header = cb + "," + authz + ","
	s.clientFirstBare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return nil, false, "", errors.New("SCRAM: malformed client-first message")
	}
	user, err := scramUnescape(attrs[0][2:])
	if err != nil {
		return nil, false, "", err
	}
	// Extensions after the nonce (KIP-86: tokenauth=true) are not served.
	for _, a := range attrs[2:] {
		if strings.HasPrefix(a, "tokenauth=") && a != "tokenauth=false" {
			return nil, false, user, errors.New("SCRAM: delegation tokens are not supported")
		}
	}
	if authz != "" && authz != "a="+attrs[0][2:] {
		return nil, false, user, errors.New("SCRAM: an authorization id other than the user")
	}
	s.user = user
	cnonce := attrs[1][2:]
	if cnonce == "" {
		return nil, false, user, errors.New("SCRAM: empty nonce")
	}
	c, ok := s.creds.ScramCredential(user, s.mech)
	if !ok {
		return nil, false, user, errSASLCredentials
	}
	s.cred = c
	var snonce [24]byte
	_, _ = rand.Read(snonce[:])
	s.nonce = cnonce + base64.RawStdEncoding.EncodeToString(snonce[:])
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(c.Salt) + ",i=" + strconv.Itoa(int(c.Iterations))
	s.stage = 1
	return []byte(s.serverFirst), false, user, nil
}

func (s *scramExchange) clientFinal(msg string) ([]byte, bool, string, error) {
	s.stage = 2
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, false, s.user, errors.New("SCRAM: client-final message without proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || attrs[0] != "c="+base64.StdEncoding.EncodeToString([]byte(s.gs2Header)) {
		return nil, false, s.user, errors.New("SCRAM: channel binding differs from the client-first message")
	}
	// Kafka accepts a final nonce that ends with the one it sent, and
	// librdkafka relies on it: it sends its own nonce again in front.
	if !strings.HasPrefix(attrs[1], "r=") || !strings.HasSuffix(attrs[1], s.nonce) {
		return nil, false, s.user, errors.New("SCRAM: nonce differs from the server-first message")
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != s.mech.KeyBytes() {
		return nil, false, s.user, errors.New("SCRAM: malformed proof")
	}
	authMsg := []byte(s.clientFirstBare + "," + s.serverFirst + "," + withoutProof)
	sig := node.ScramHMAC(s.mech, s.cred.StoredKey, authMsg)
	clientKey := make([]byte, len(proof))
	for i := range proof {
		clientKey[i] = proof[i] ^ sig[i]
	}
	h := node.ScramHash(s.mech)()
	h.Write(clientKey)
	if !hmac.Equal(h.Sum(nil), s.cred.StoredKey) {
		return nil, false, s.user, errSASLCredentials
	}
	serverSig := node.ScramHMAC(s.mech, s.cred.ServerKey, authMsg)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), true, s.user, nil
}

// scramUnescape decodes a SCRAM saslname ("=2C" is ',', "=3D" is '=').
func scramUnescape(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("SCRAM: malformed user name")
		}
		i += 2
	}
	return b.String(), nil
}

// saslAllowed reports whether a request with key may run on a connection
// in session state s at now, or the error that closes the connection.
func (s *saslSession) allowed(key int16, now func() time.Time) error {
	if s.cfg == nil || key == apiVersionsKey || key == saslHandshakeKey || key == saslAuthenticateKey {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.authenticated {
		return errSASLState
	}
	if !s.expires.IsZero() && !now().Before(s.expires) {
		return errSASLExpired
	}
	return nil
}

// enabled reports whether mech is enabled.
func (s *saslSession) enabled(mech string) bool {
	return s.cfg != nil && slices.Contains(s.cfg.Mechanisms, mech)
}

// mechanisms lists the enabled mechanisms (never nil).
func (s *saslSession) mechanisms() []string {
	if s.cfg == nil {
		return []string{}
	}
	return slices.Clone(s.cfg.Mechanisms)
}

func (s *saslSession) setCloseAfter() {
	s.mu.Lock()
	s.closeAfter = true
	s.mu.Unlock()
}

func (s *saslSession) failedDelay() time.Duration {
	if s.cfg == nil || s.cfg.FailedAuthDelay <= 0 {
		return DefaultFailedAuthDelay
	}
	return s.cfg.FailedAuthDelay
}

// after returns, once a SASL request was answered, whether the connection
// must close and the principal it now has ("" before authentication).
func (s *saslSession) after() (closeAfter bool, principal string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeAfter, s.principal
}
