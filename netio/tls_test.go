package netio_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chronik-go/chronik/netio"
	"github.com/chronik-go/chronik/netio/tlstest"
)

// tlsPeer is one side's files, loaded.
func tlsPeer(t *testing.T, ca *tlstest.CA, dir, name string, hosts ...string) *netio.TLSFiles {
	t.Helper()
	cert, key := ca.Issue(t, pkix.Name{CommonName: name}, hosts...).Write(t, dir, name)
	caFile := filepath.Join(dir, name+"-ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	f, err := netio.LoadTLSFiles(cert, key, caFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// tlsPair listens on server's network and dials it from client's; it
// returns both ends after one round trip, or the first error.
func tlsPair(t *testing.T, server, client netio.Network) (accepted, dialed net.Conn, err error) {
	t.Helper()
	ln, err := server.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	acc := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acc <- res{nil, err}
			return
		}
		buf := make([]byte, 8)
		if _, err := io.ReadFull(c, buf); err != nil {
			c.Close()
			acc <- res{nil, err}
			return
		}
		_, err = c.Write(buf)
		acc <- res{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, derr := client.Dial(ctx, ln.Addr().String())
	if derr == nil {
		if _, derr = d.Write([]byte("pingpong")); derr == nil {
			buf := make([]byte, 8)
			_, derr = io.ReadFull(d, buf)
			if derr == nil && !bytes.Equal(buf, []byte("pingpong")) {
				derr = errors.New("echo differs")
			}
		}
		if derr != nil {
			d.Close()
		}
	}
	if derr != nil {
		r := <-acc // the server side ends too (handshake or read error)
		if r.c != nil {
			r.c.Close()
		}
		return nil, nil, derr
	}
	r := <-acc
	if r.err != nil {
		d.Close()
		if r.c != nil {
			r.c.Close()
		}
		return nil, nil, r.err
	}
	return r.c, d, nil
}

func TestTLSMutual(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "raft-ca")
	srv := netio.WithTLS(netio.NewOS(), tlsPeer(t, ca, dir, "a", "127.0.0.1").ServerConfig(), nil, 0)
	cli := tlsPeer(t, ca, dir, "b", "127.0.0.1")
	a, d, err := tlsPair(t, srv, netio.WithTLS(netio.NewOS(), nil, cli.ClientConfig(), 0))
	if err != nil {
		t.Fatalf("mutual TLS between two certificates of one CA: %v", err)
	}
	defer a.Close()
	defer d.Close()
	cs := d.(*tls.Conn).ConnectionState()
	if got := cs.PeerCertificates[0].Subject.CommonName; got != "a" {
		t.Fatalf("server certificate %q, want a", got)
	}
	acs := a.(*netio.ServerTLSConn).ConnectionState()
	if len(acs.VerifiedChains) == 0 || acs.PeerCertificates[0].Subject.CommonName != "b" {
		t.Fatalf("client certificate not verified: %+v", acs.PeerCertificates)
	}
}

func TestTLSRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other-ca")
	srv := netio.WithTLS(netio.NewOS(), tlsPeer(t, ca, dir, "a", "127.0.0.1").ServerConfig(), nil, 0)
	// A client certificate from another CA: the server refuses it.
	stranger := tlsPeer(t, other, dir, "s", "127.0.0.1")
	if _, _, err := tlsPair(t, srv, netio.WithTLS(netio.NewOS(), nil, stranger.ClientConfig(), 0)); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
	// A server whose certificate does not name the dialed host: the
	// client refuses it even though its CA is trusted.
	wrongHost := netio.WithTLS(netio.NewOS(), tlsPeer(t, ca, dir, "w", "10.9.9.9").ServerConfig(), nil, 0)
	if _, _, err := tlsPair(t, wrongHost, netio.WithTLS(netio.NewOS(), nil, tlsPeer(t, ca, dir, "c", "127.0.0.1").ClientConfig(), 0)); err == nil {
		t.Fatal("a server certificate for another host was accepted")
	}
	// Plaintext against TLS.
	if _, _, err := tlsPair(t, srv, netio.NewOS()); err == nil {
		t.Fatal("a plaintext client completed a round trip with a TLS server")
	}
}

// A peer that connects and says nothing is dropped after the handshake
// timeout; it does not hold up other connections.
func TestTLSStalledHandshake(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	srv := netio.WithTLS(netio.NewOS(), tlsPeer(t, ca, dir, "a", "127.0.0.1").ServerConfig(), nil, 200*time.Millisecond)
	ln, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read on a stalled handshake: %v, want the handshake deadline", err)
	}
}

// Rewritten files apply to the next handshake; a live connection goes on;
// files that do not load leave the previous certificate in use.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	files := tlsPeer(t, ca, dir, "srv", "127.0.0.1")
	srv := netio.WithTLS(netio.NewOS(), files.ServerConfig(), nil, 0)
	cli := netio.WithTLS(netio.NewOS(), nil, tlsPeer(t, ca, dir, "cli", "127.0.0.1").ClientConfig(), 0)
	subject := func(c net.Conn) string { return c.(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName }

	a1, d1, err := tlsPair(t, srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer a1.Close()
	defer d1.Close()
	if got := subject(d1); got != "srv" {
		t.Fatalf("first certificate %q", got)
	}
	// Renewed: picked up by the next handshake without Reload.
	ca.Issue(t, pkix.Name{CommonName: "srv-renewed"}, "127.0.0.1").Write(t, dir, "srv")
	a2, d2, err := tlsPair(t, srv, cli)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	defer d2.Close()
	if got := subject(d2); got != "srv-renewed" {
		t.Fatalf("after rewriting the files the server presents %q, want srv-renewed", got)
	}
	// The first connection still works.
	if _, err := d1.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(a1, make([]byte, 4)); err != nil {
		t.Fatalf("live connection after a reload: %v", err)
	}
	// A broken key: Reload fails, the renewed certificate stays.
	if err := os.WriteFile(filepath.Join(dir, "srv.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := files.Reload(); err == nil {
		t.Fatal("Reload of a broken key succeeded")
	}
	a3, d3, err := tlsPair(t, srv, cli)
	if err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	defer a3.Close()
	defer d3.Close()
	if got := subject(d3); got != "srv-renewed" {
		t.Fatalf("after a failed reload the server presents %q", got)
	}
}

func TestLoadTLSFilesErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	cert, key := ca.Issue(t, pkix.Name{CommonName: "x"}, "127.0.0.1").Write(t, dir, "x")
	bad := filepath.Join(dir, "bad.pem")
	tlstest.WriteFile(t, bad, []byte("garbage"))
	for name, args := range map[string][3]string{
		"no key":       {cert, "", ""},
		"missing cert": {filepath.Join(dir, "none"), key, ""},
		"key mismatch": {cert, bad, ""},
		"CA not PEM":   {cert, key, bad},
		"CA file gone": {cert, key, filepath.Join(dir, "none")},
	} {
		if _, err := netio.LoadTLSFiles(args[0], args[1], args[2], nil); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}
