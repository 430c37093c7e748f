package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/netio"
	"github.com/chronik-go/chronik/netio/tlstest"
)

// A 3-node cluster with mutual TLS on the Kafka listeners and between the
// nodes (Raft), seen by kgo: a client with a certificate of the CA
// produces with acks=all and reads back; a plaintext client, a client
// without a certificate and a client of another CA get nothing; a peer
// that connects and stalls is dropped after the handshake timeout while
// others are served.
func TestTLSClusterKgo(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "chronik-test-ca")
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	load := func(name string) *netio.TLSFiles {
		cert, key := ca.Issue(t, pkix.Name{CommonName: name}, "127.0.0.1").Write(t, dir, name)
		f, err := netio.LoadTLSFiles(cert, key, caFile, nil)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	kafkaFiles, raftFiles := load("kafka"), load("raft")
	const handshakeTimeout = 500 * time.Millisecond
	c := startClusterLn(t, 3, func(nc *node.Config) {
		nc.Net = netio.WithTLS(netio.NewOS(), raftFiles.ServerConfig(), raftFiles.ClientConfig(), 0)
	}, nil, func(ln net.Listener) net.Listener {
		return netio.TLSListener(ln, kafkaFiles.ServerConfig(), handshakeTimeout)
	})

	app := ca.Issue(t, pkix.Name{CommonName: "app", Organization: []string{"Chronik tests"}}, "127.0.0.1")
	good := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{app.TLSCertificate(t)}, MinVersion: tls.VersionTLS12}

	t.Run("produce-consume", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		adm := kadm.NewClient(c.client(kgo.DialTLSConfig(good)))
		if _, err := adm.CreateTopic(ctx, 2, 3, nil, "tls"); err != nil {
			t.Fatal(err)
		}
		p := c.client(kgo.DialTLSConfig(good), kgo.RequiredAcks(kgo.AllISRAcks()))
		const n = 50
		for i := range n {
			r := &kgo.Record{Topic: "tls", Partition: int32(i % 2), Value: []byte{byte(i)}}
			if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce %d over TLS: %v", i, err)
			}
		}
		cons := c.client(kgo.DialTLSConfig(good), kgo.ConsumeTopics("tls"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		got := 0
		for got < n {
			fs := cons.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				t.Fatalf("consumed %d of %d: %v", got, n, err)
			}
			fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
			got += fs.NumRecords()
		}
		if got != n {
			t.Fatalf("consumed %d records, want %d", got, n)
		}
		// The client's certificate subject is its principal.
		waitLog(t, c.logs, "principal=\"User:CN=app,O=Chronik tests\"")
	})

	refused := func(t *testing.T, what string, opts ...kgo.Opt) {
		t.Helper()
		before := c.broker(1).srv.Metrics().tlsHandshakeFailures.Load()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs[1]), kgo.RequestRetries(0)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := cl.Ping(ctx); err == nil {
			t.Fatalf("%s: ping succeeded", what)
		}
		eventually(t, testWait, func() bool { return c.broker(1).srv.Metrics().tlsHandshakeFailures.Load() > before },
			"%s: a TLS handshake failure counted", what)
	}
	t.Run("plaintext-client", func(t *testing.T) { refused(t, "plaintext") })
	t.Run("no-client-certificate", func(t *testing.T) {
		refused(t, "no certificate", kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}))
	})
	t.Run("other-ca", func(t *testing.T) {
		other := tlstest.NewCA(t, "other")
		stranger := other.Issue(t, pkix.Name{CommonName: "stranger"}, "127.0.0.1")
		refused(t, "other CA", kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{stranger.TLSCertificate(t)}, MinVersion: tls.VersionTLS12}))
	})

	t.Run("stalled-handshake", func(t *testing.T) {
		raw, err := net.Dial("tcp", c.addrs[2])
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		// Others are served meanwhile.
		cl := c.client(kgo.DialTLSConfig(good))
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if err := cl.Ping(ctx); err != nil {
			t.Fatalf("a TLS client while another connection stalls: %v", err)
		}
		// The silent peer is dropped by the server: its read ends.
		_ = raw.SetReadDeadline(time.Now().Add(testWait))
		_, err = raw.Read(make([]byte, 1))
		var ne net.Error
		if err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the stalled connection was not closed by the server: %v", err)
		}
		if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("stalled connection ended with %v", err)
		}
	})
}

func TestTLSPrincipal(t *testing.T) {
	if got := tlsPrincipal(tls.ConnectionState{}); got != AnonymousPrincipal {
		t.Fatalf("no certificate: %q", got)
	}
	ca := tlstest.NewCA(t, "ca")
	p := ca.Issue(t, pkix.Name{CommonName: "app", Organization: []string{"Org"}, OrganizationalUnit: []string{"Team"}}, "127.0.0.1")
	cert := p.TLSCertificate(t)
	// Unverified (no chain): anonymous.
	cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}
	if got := tlsPrincipal(cs); got != AnonymousPrincipal {
		t.Fatalf("unverified certificate: %q", got)
	}
	cs.VerifiedChains = [][]*x509.Certificate{{cert.Leaf, ca.Cert}}
	if got, want := tlsPrincipal(cs), "User:CN=app,OU=Team,O=Org"; got != want {
		t.Fatalf("principal %q, want %q", got, want)
	}
}
