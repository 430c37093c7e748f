package server

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

var allSASL = []string{SASLPlain, SASLScramSHA256, SASLScramSHA512}

// startSASLCluster starts n brokers requiring SASL and creates alice's
// credentials (both SCRAM mechanisms, password alice-secret).
func startSASLCluster(t *testing.T, n int, lifetime time.Duration) *testCluster {
	t.Helper()
	c := startClusterWith(t, n, nil, func(bc *BrokerConfig) {
		bc.Server.SASL = &SASLConfig{Mechanisms: allSASL, SessionLifetime: lifetime, FailedAuthDelay: 10 * time.Millisecond}
	})
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	seeds := []node.ScramSeed{{User: "alice", Mechanism: meta.ScramSHA256, Password: "alice-secret"}, {User: "alice", Mechanism: meta.ScramSHA512, Password: "alice-secret"}}
	if created, err := c.broker(1).Node.SeedScramCredentials(ctx, seeds); err != nil || created != 2 {
		t.Fatalf("seed: %d, %v", created, err)
	}
	// Seeding again creates nothing (a restart with the same users file).
	if created, err := c.broker(2%uint64(n)+1).Node.SeedScramCredentials(ctx, seeds); err != nil || created != 0 {
		t.Fatalf("seed again: %d, %v", created, err)
	}
	// Seeding is answered once the controller applied it; every node
	// serves alice once its own replica has applied it too.
	for id := uint64(1); id <= uint64(n); id++ {
		eventually(t, testWait, func() bool {
			return pingErr(t, c.addrs[id], kgo.SASL(aliceMechs()[SASLScramSHA512])) == nil
		}, "alice logs in at node %d", id)
	}
	return c
}

func aliceMechs() map[string]sasl.Mechanism {
	return map[string]sasl.Mechanism{
		SASLPlain:       plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(),
		SASLScramSHA256: scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(),
		SASLScramSHA512: scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
	}
}

// pingErr pings one broker with a client using opts and returns the error.
func pingErr(t *testing.T, addr string, opts ...kgo.Opt) error {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	return cl.Ping(ctx)
}

// rawExchange sends req on c and decodes the answer (non-flexible
// versions only: no response header tags).
func rawExchange(t *testing.T, c net.Conn, req kmsg.Request, corr int32) kmsg.Response {
	t.Helper()
	send(t, c, frameRequest(req, corr, nil))
	got, body := readFrame(t, c)
	if got != corr {
		t.Fatalf("correlation id %d, want %d", got, corr)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("decode %T: %v", resp, err)
	}
	return resp
}

func TestSASLKgo(t *testing.T) {
	c := startSASLCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()

	for name, mech := range aliceMechs() {
		t.Run("produce-consume-"+name, func(t *testing.T) {
			topic := "sasl-" + strings.ToLower(name)
			adm := kadm.NewClient(c.client(kgo.SASL(mech)))
			if _, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil {
				t.Fatal(err)
			}
			p := c.client(kgo.SASL(mech))
			for i := range 10 {
				if err := p.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte{byte(i)}}).FirstErr(); err != nil {
					t.Fatalf("produce with %s: %v", name, err)
				}
			}
			cons := c.client(kgo.SASL(mech), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			got := 0
			for got < 10 && ctx.Err() == nil {
				fs := cons.PollFetches(ctx)
				fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
				got += fs.NumRecords()
			}
			if got != 10 {
				t.Fatalf("consumed %d of 10", got)
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		m := c.broker(1).srv.Metrics()
		before := m.saslFailures.Load()
		for name, mech := range map[string]sasl.Mechanism{
			"plain-wrong-password": plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(),
			"scram-wrong-password": scram.Auth{User: "alice", Pass: "nope"}.AsSha512Mechanism(),
			"scram-unknown-user":   scram.Auth{User: "mallory", Pass: "x"}.AsSha256Mechanism(),
			"plain-unknown-user":   plain.Auth{User: "mallory", Pass: "x"}.AsMechanism(),
		} {
			err := pingErr(t, c.addrs[1], kgo.SASL(mech))
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
			}
		}
		if got := m.saslFailures.Load() - before; got != 4 {
			t.Errorf("%d failures counted, want 4", got)
		}
		// No secret in the log.
		if strings.Contains(c.logs.String(), "nope") || strings.Contains(c.logs.String(), "alice-secret") {
			t.Error("a password reached the log")
		}
		// Without SASL: nothing but ApiVersions and the SASL requests.
		if err := pingErr(t, c.addrs[1]); err == nil {
			t.Error("a client without SASL was served")
		}
	})

	t.Run("raw", func(t *testing.T) {
		// A request before authentication closes the connection.
		conn := dial(t, c.addrs[2])
		send(t, conn, frameRequest(kmsg.NewPtrMetadataRequest(), 1, nil))
		expectClosed(t, conn)

		// A mechanism not enabled: the enabled list, then the close.
		conn = dial(t, c.addrs[2])
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.SetVersion(1)
		hs.Mechanism = "GSSAPI"
		r := rawExchange(t, conn, hs, 2).(*kmsg.SASLHandshakeResponse)
		if r.ErrorCode != kerr.UnsupportedSaslMechanism.Code || strings.Join(r.SupportedMechanisms, ",") != strings.Join(allSASL, ",") {
			t.Fatalf("GSSAPI handshake: %+v", r)
		}
		expectClosed(t, conn)

		// SaslAuthenticate before the handshake.
		conn = dial(t, c.addrs[2])
		au := kmsg.NewPtrSASLAuthenticateRequest()
		au.SetVersion(1)
		au.SASLAuthBytes = []byte("\x00alice\x00alice-secret")
		if r := rawExchange(t, conn, au, 3).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("authenticate before handshake: %+v", r)
		}
		expectClosed(t, conn)

		// Garbage PLAIN and an oversized token: refused, closed.
		for i, tok := range [][]byte{[]byte("no separators"), make([]byte, saslTokenBytesMax+1)} {
			conn = dial(t, c.addrs[2])
			hs.Mechanism = SASLPlain
			if r := rawExchange(t, conn, hs, 4).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
				t.Fatalf("PLAIN handshake: %+v", r)
			}
			au.SASLAuthBytes = tok
			if r := rawExchange(t, conn, au, 5).(*kmsg.SASLAuthenticateResponse); r.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Fatalf("token %d: %+v", i, r)
			}
			expectClosed(t, conn)
		}
		// The node still serves everyone else.
		if err := pingErr(t, c.addrs[2], kgo.SASL(aliceMechs()[SASLScramSHA256])); err != nil {
			t.Fatalf("after bad input: %v", err)
		}
	})

	t.Run("user-admin", func(t *testing.T) {
		adm := kadm.NewClient(c.client(kgo.SASL(aliceMechs()[SASLScramSHA512])))
		res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "bob-pw"}})
		if err != nil || res["bob"].Err != nil {
			t.Fatalf("upsert bob: %v %+v", err, res)
		}
		// Bob logs in at every node (replicated through the controller).
		for id := uint64(1); id <= 3; id++ {
			eventually(t, testWait, func() bool {
				return pingErr(t, c.addrs[id], kgo.SASL(scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism())) == nil
			}, "bob logs in at node %d", id)
		}
		// PLAIN checks his SCRAM credential.
		if err := pingErr(t, c.addrs[1], kgo.SASL(plain.Auth{User: "bob", Pass: "bob-pw"}.AsMechanism())); err != nil {
			t.Fatalf("bob over PLAIN: %v", err)
		}
		desc, err := adm.DescribeUserSCRAMs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b := desc["bob"]; b.Err != nil || len(b.CredInfos) != 1 || b.CredInfos[0].Mechanism != kadm.ScramSha256 || b.CredInfos[0].Iterations != 8192 {
			t.Fatalf("describe bob: %+v", b)
		}
		if a := desc["alice"]; len(a.CredInfos) != 2 {
			t.Fatalf("describe alice: %+v", a)
		}
		if d, err := adm.DescribeUserSCRAMs(ctx, "nobody"); err != nil || !errors.Is(d["nobody"].Err, kerr.ResourceNotFound) {
			t.Fatalf("describe nobody: %v %+v", err, d)
		}
		// Refusals, per user.
		alter := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
		del.Name, del.Mechanism = "ghost", 2
		alter.Deletions = append(alter.Deletions, del)
		for _, u := range []struct {
			user       string
			mech       int8
			iterations int32
			salted     int
		}{{"weak", 1, 100, 32}, {"short", 1, 4096, 16}, {"gssapi", 9, 4096, 32}} {
			up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
			up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = u.user, u.mech, u.iterations, []byte("salt"), make([]byte, u.salted)
			alter.Upsertions = append(alter.Upsertions, up)
		}
		ar, err := alter.RequestWith(ctx, c.client(kgo.SASL(aliceMechs()[SASLScramSHA512])))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int16{"ghost": kerr.ResourceNotFound.Code, "weak": kerr.UnacceptableCredential.Code,
			"short": kerr.UnacceptableCredential.Code, "gssapi": kerr.UnsupportedSaslMechanism.Code}
		if len(ar.Results) != len(want) {
			t.Fatalf("refusals: %+v", ar.Results)
		}
		for _, r := range ar.Results {
			if r.ErrorCode != want[r.User] {
				t.Errorf("%s: code %d, want %d", r.User, r.ErrorCode, want[r.User])
			}
		}
		// Deleting bob: he can no longer log in.
		res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "bob", Mechanism: kadm.ScramSha256}}, nil)
		if err != nil || res["bob"].Err != nil {
			t.Fatalf("delete bob: %v %+v", err, res)
		}
		// The deletion is answered once the controller applied it; node 1
		// refuses bob once its own replica has applied it too.
		eventually(t, testWait, func() bool {
			return errors.Is(pingErr(t, c.addrs[1], kgo.SASL(scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism())), kerr.SaslAuthenticationFailed)
		}, "bob refused at node 1 after deletion")
	})
}

// KIP-368: with a session lifetime, kgo re-authenticates on its own and
// keeps working; a connection that does not is closed at its first
// request after the lifetime.
func TestSASLReauthentication(t *testing.T) {
	const lifetime = 500 * time.Millisecond
	c := startSASLCluster(t, 1, lifetime)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	m := c.broker(1).srv.Metrics()
	p := c.client(kgo.SASL(aliceMechs()[SASLScramSHA256]))
	if _, err := kadm.NewClient(p).CreateTopic(ctx, 1, 1, nil, "reauth"); err != nil {
		t.Fatal(err)
	}
	start := m.saslSuccesses.Load()
	produced := 0
	for m.saslSuccesses.Load() < start+3 {
		if ctx.Err() != nil {
			t.Fatalf("no re-authentication within %v (%d successes)", testWait, m.saslSuccesses.Load()-start)
		}
		if err := p.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("produce %d across re-authentications: %v", produced, err)
		}
		produced++
	}

	// A raw client that authenticates once and never again.
	conn := dial(t, c.addrs[1])
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = SASLPlain
	if r := rawExchange(t, conn, hs, 1).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
		t.Fatalf("handshake: %+v", r)
	}
	au := kmsg.NewPtrSASLAuthenticateRequest()
	au.SetVersion(1)
	au.SASLAuthBytes = []byte("\x00alice\x00alice-secret")
	r := rawExchange(t, conn, au, 2).(*kmsg.SASLAuthenticateResponse)
	if r.ErrorCode != 0 || r.SessionLifetimeMillis != lifetime.Milliseconds() {
		t.Fatalf("authenticate: %+v", r)
	}
	authed := time.Now()
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(1)
	corr := int32(2)
	eventually(t, testWait, func() bool {
		corr++
		if _, err := conn.Write(frameRequest(md, corr, nil)); err != nil {
			return true
		}
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return true // closed
		}
		if _, err := io.ReadFull(conn, make([]byte, binary.BigEndian.Uint32(size[:]))); err != nil {
			return true
		}
		return false
	}, "the connection closed after its session expired")
	if since := time.Since(authed); since < lifetime {
		t.Fatalf("closed %v after authenticating, before the %v lifetime", since, lifetime)
	}
}
