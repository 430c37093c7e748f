package server

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SaslAuthenticate: v0-2
//
// Behaviour:
//   - Carries the messages of the mechanism chosen by SaslHandshake
//     (PLAIN: one; SCRAM: two), see sasl.go. Before a handshake:
//     ILLEGAL_SASL_STATE and the connection closes after the answer.
//   - A failed authentication (unknown user, wrong password, malformed or
//     oversized message): SASL_AUTHENTICATION_FAILED after
//     SASLConfig.FailedAuthDelay, logged once without secrets; the
//     connection closes once the answer is written.
//   - Success: the connection's principal becomes User:<name>. v1+: with
//     a session lifetime, SessionLifetimeMillis tells the client when to
//     re-authenticate (KIP-368); a re-authentication must name the same
//     user.
//   - Runs in the connection's reader: no request is read until it is
//     answered.
//
// Version notes: v1 SessionLifetimeMillis; v2 flexible.

const saslAuthenticateKey = 36

func init() {
	register(API{Key: saslAuthenticateKey, MinVersion: 0, MaxVersion: 2, Handler: handleSaslAuthenticate})
}

func handleSaslAuthenticate(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	s := rc.sasl
	s.mu.Lock()
	mech := s.mechanism
	s.mu.Unlock()
	if s.cfg == nil || mech == "" {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = kstr("SaslAuthenticate before a successful SaslHandshake")
		s.setCloseAfter()
		return resp, nil
	}
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	fail := func(user string, err error) (kmsg.Response, error) {
		rc.metrics.saslFailures.Add(1)
		// Which part was wrong is the server's to know, not the client's.
		rc.Logger.Info("SASL authentication failed; closing after the answer", "mechanism", mech, "user", user, "reason", err)
		t := time.NewTimer(s.failedDelay())
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
		if !errors.Is(err, errSASLCredentials) {
			msg = "Authentication failed: " + err.Error()
		}
		resp.ErrorMessage = &msg
		resp.SASLAuthBytes = []byte{}
		s.mu.Lock()
		s.exchange = nil
		s.closeAfter = true
		s.mu.Unlock()
		return resp, nil
	}
	if len(req.SASLAuthBytes) > saslTokenBytesMax {
		return fail("", errors.New("SASL message too large"))
	}
	s.mu.Lock()
	if s.exchange == nil {
		s.exchange = newExchange(mech, rc.Broker.Node)
	}
	ex := s.exchange
	s.mu.Unlock()
	out, done, user, err := ex.step(req.SASLAuthBytes)
	if err != nil {
		return fail(user, err)
	}
	resp.SASLAuthBytes = out
	if out == nil {
		resp.SASLAuthBytes = []byte{}
	}
	if !done {
		return resp, nil
	}
	principal := "User:" + user
	s.mu.Lock()
	if s.authenticated && principal != s.principal {
		s.mu.Unlock()
		return fail(user, errors.New("cannot change principals during re-authentication"))
	}
	reauth := s.authenticated
	s.authenticated, s.principal, s.exchange = true, principal, nil
	if lt := s.cfg.SessionLifetime; lt > 0 {
		s.expires = time.Now().Add(lt)
		resp.SessionLifetimeMillis = lt.Milliseconds()
	}
	s.mu.Unlock()
	rc.metrics.saslSuccesses.Add(1)
	rc.Logger.Debug("SASL authenticated", "mechanism", mech, "principal", principal, "reauthentication", reauth)
	return resp, nil
}

// kstr returns a pointer to s (Kafka nullable strings).
func kstr(s string) *string { return &s }
