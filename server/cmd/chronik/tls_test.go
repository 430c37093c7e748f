package main

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/chronik-go/chronik/netio/tlstest"
)

// A 3-node cluster of real processes with mutual TLS on the Kafka
// listeners (--tls-*) and between the nodes (--raft-tls-*): kcat
// (librdkafka) produces and consumes over TLS with a client certificate,
// and a renewed certificate is served after SIGHUP while a connection
// opened before goes on.
func TestTLSProcessCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes; skipped in -short")
	}
	bin := kcatPath(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "chronik-ca")
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	c := newChaosCluster(t, 3)
	for _, nd := range c.nodes {
		name := "n" + strconv.FormatUint(nd.id, 10)
		kcert, kkey := ca.Issue(t, pkix.Name{CommonName: name + "-kafka"}, "127.0.0.1", "localhost").Write(t, dir, name+"-kafka")
		rcert, rkey := ca.Issue(t, pkix.Name{CommonName: name + "-raft"}, "127.0.0.1").Write(t, dir, name+"-raft")
		nd.extraArgs = []string{"--tls-cert-file", kcert, "--tls-key-file", kkey, "--tls-client-ca-file", caFile,
			"--raft-tls-cert-file", rcert, "--raft-tls-key-file", rkey, "--raft-tls-ca-file", caFile}
	}
	c.startAll()

	app := ca.Issue(t, pkix.Name{CommonName: "app"}, "127.0.0.1")
	appCert, appKey := app.Write(t, dir, "app")
	tlsCfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{app.TLSCertificate(t)}, MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := c.client(kgo.DialTLSConfig(tlsCfg))
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, "tls-kcat"); err != nil || r.Err != nil {
		t.Fatalf("create topic over TLS: %v %v", err, r.Err)
	}
	brokers := strings.Join(c.addrs(), ",")
	ssl := []string{"-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + caFile,
		"-X", "ssl.certificate.location=" + appCert, "-X", "ssl.key.location=" + appKey}
	in, lines := kcatLines("tls", 100)
	kcat(t, bin, in, append([]string{"-P", "-b", brokers, "-t", "tls-kcat", "-K:", "-X", "acks=all"}, ssl...)...)
	got := map[string]int{}
	for p := range 3 {
		out := kcat(t, bin, "", append([]string{"-C", "-b", brokers, "-t", "tls-kcat", "-p", strconv.Itoa(p), "-o", "beginning", "-e", "-q", "-f", "%k:%s\n"}, ssl...)...)
		for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if l != "" {
				got[l]++
			}
		}
	}
	for _, l := range lines {
		if got[l] != 1 {
			t.Fatalf("kcat over TLS read %q %d times, want once (%d distinct lines read)", l, got[l], len(got))
		}
	}

	// Renew node 1's Kafka certificate and send SIGHUP: new connections
	// see the new certificate; the client connected before goes on.
	nd := c.node(1)
	ca.Issue(t, pkix.Name{CommonName: "n1-kafka-renewed"}, "127.0.0.1").Write(t, dir, "n1-kafka")
	if err := nd.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	subject := func() string {
		conn, err := tls.Dial("tcp", nd.kafka, tlsCfg)
		if err != nil {
			t.Fatalf("TLS dial after SIGHUP: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if s := subject(); s != "n1-kafka-renewed" {
		t.Fatalf("after renewal and SIGHUP node 1 presents %q", s)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "tls-kcat", Value: []byte("after renewal")}).FirstErr(); err != nil {
		t.Fatalf("produce on the client connected before the renewal: %v", err)
	}
}

// One node with TLS and SASL (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN), its
// users from --sasl-users-file: kcat (librdkafka) produces and consumes
// with SCRAM over TLS; a wrong password gets nothing; a restart with the
// same users file keeps a password changed since (the file only creates
// missing credentials).
func TestSASLProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("real processes; skipped in -short")
	}
	bin := kcatPath(t)
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "chronik-ca")
	caFile := filepath.Join(dir, "ca.pem")
	tlstest.WriteFile(t, caFile, ca.PEM)
	users := filepath.Join(dir, "users")
	tlstest.WriteFile(t, users, []byte("# mechanism user password\nSCRAM-SHA-256 alice alice secret\nSCRAM-SHA-512 alice alice secret\nPLAIN admin admin-pw\n"))
	c := newChaosCluster(t, 1)
	nd := c.node(1)
	cert, key := ca.Issue(t, pkix.Name{CommonName: "n1"}, "127.0.0.1").Write(t, dir, "n1")
	nd.extraArgs = []string{"--tls-cert-file", cert, "--tls-key-file", key,
		"--sasl-mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN", "--sasl-users-file", users}
	c.startAll()

	sasl := func(mech, user, pass string) []string {
		return []string{"-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=" + caFile,
			"-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=" + user, "-X", "sasl.password=" + pass}
	}
	in, lines := kcatLines("sasl", 50)
	kcat(t, bin, in, append([]string{"-P", "-b", nd.kafka, "-t", "sasl-kcat", "-K:"}, sasl("SCRAM-SHA-256", "alice", "alice secret")...)...)
	out := kcat(t, bin, "", append([]string{"-C", "-b", nd.kafka, "-t", "sasl-kcat", "-o", "beginning", "-e", "-c", strconv.Itoa(len(lines)), "-q", "-f", "%k:%s\n"},
		sasl("SCRAM-SHA-512", "alice", "alice secret")...)...)
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(lines, "\n") {
		t.Fatalf("kcat over SASL_SSL read %d lines, want %d; first difference: %s", len(got), len(lines), firstDiff(got, lines))
	}
	// A wrong password: kcat's metadata request fails.
	if err := kcatErr(bin, append([]string{"-L", "-b", nd.kafka, "-m", "5"}, sasl("SCRAM-SHA-256", "alice", "wrong")...)...); err == nil {
		t.Fatal("kcat with a wrong password listed metadata")
	}

	// admin (PLAIN in the file) changes alice's SCRAM-SHA-256 password.
	admin := c.client(kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}),
		kgo.SASL(plain.Auth{User: "admin", Pass: "admin-pw"}.AsMechanism()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// kgo's SCRAM over TLS reads what kcat wrote.
	scramCl := c.client(kgo.DialTLSConfig(&tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: "alice", Pass: "alice secret"}.AsSha512Mechanism()),
		kgo.ConsumeTopics("sasl-kcat"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for read := 0; read < len(lines); {
		fs := scramCl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("kgo SCRAM over TLS read %d of %d", read, len(lines))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("kgo SCRAM over TLS: %v", err) })
		read += fs.NumRecords()
	}
	res, err := kadm.NewClient(admin).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Password: "new secret"}})
	if err != nil || res["alice"].Err != nil {
		t.Fatalf("change alice's password: %v %+v", err, res)
	}
	c.signal(1, syscall.SIGTERM)
	c.start(1)
	c.waitReady(1, 60*time.Second)
	kcat(t, bin, "", append([]string{"-L", "-b", nd.kafka}, sasl("SCRAM-SHA-256", "alice", "new secret")...)...)
	if err := kcatErr(bin, append([]string{"-L", "-b", nd.kafka, "-m", "5"}, sasl("SCRAM-SHA-256", "alice", "alice secret")...)...); err == nil {
		t.Fatal("the users file reset a changed password on restart")
	}
}

// kcatErr runs kcat and returns its failure (nil if it exited 0 within
// kcatTimeout).
func kcatErr(bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), kcatTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}
