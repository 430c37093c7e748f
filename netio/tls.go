package netio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// TLS is production-only: the simulator's nodes talk in plaintext over Sim
// (certificates, handshakes and their deadlines run on the wall clock).

// DefaultTLSHandshakeTimeout bounds a TLS handshake: a peer that connects
// and stalls is dropped after this long and holds nothing else up.
const DefaultTLSHandshakeTimeout = 10 * time.Second

// TLSFiles are PEM files a node reads its TLS material from. CertFile and
// KeyFile are the node's certificate chain and private key; CAFile, if
// set, holds the certificates that peers' certificates must chain to.
//
// The files are re-read when they change (checked at every handshake, by
// size, modification time and inode) and on Reload (SIGHUP in `chronik
// serve`). A change applies to new handshakes only: live connections go on
// with what they negotiated. A set of files that does not load (half
// written, a key that does not match) is logged once and the previous
// material stays in use.
type TLSFiles struct {
	CertFile, KeyFile, CAFile string

	log *slog.Logger
	mu  sync.Mutex
	sig [3]fileSig // of the files as last loaded (or last tried)
	cur *tlsMaterial
}

// tlsMaterial is one loaded set of files.
type tlsMaterial struct {
	cert *tls.Certificate
	cas  *x509.CertPool // nil without CAFile
}

// fileSig identifies a version of a file well enough to notice a rewrite.
type fileSig struct {
	size    int64
	modTime time.Time
	ino     uint64
	missing bool
}

// LoadTLSFiles loads the files once, failing if they do not; later changes
// are picked up as TLSFiles says. log receives reload outcomes.
func LoadTLSFiles(certFile, keyFile, caFile string, log *slog.Logger) (*TLSFiles, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("tls: a certificate file and a key file are both required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &TLSFiles{CertFile: certFile, KeyFile: keyFile, CAFile: caFile, log: log}
	sig := f.stat()
	m, err := f.load()
	if err != nil {
		return nil, err
	}
	f.sig, f.cur = sig, m
	return f, nil
}

func (f *TLSFiles) stat() [3]fileSig {
	var out [3]fileSig
	for i, name := range []string{f.CertFile, f.KeyFile, f.CAFile} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			out[i].missing = true
			continue
		}
		out[i] = fileSig{size: fi.Size(), modTime: fi.ModTime(), ino: inode(fi)}
	}
	return out
}

func (f *TLSFiles) load() (*tlsMaterial, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate %s / key %s: %w", f.CertFile, f.KeyFile, err)
	}
	m := &tlsMaterial{cert: &cert}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: CA file: %w", err)
		}
		m.cas = x509.NewCertPool()
		if !m.cas.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", f.CAFile)
		}
	}
	return m, nil
}

// Reload re-reads the files now. On failure the previous material stays in
// use and the error is returned (and logged).
func (f *TLSFiles) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloadLocked(f.stat())
}

func (f *TLSFiles) reloadLocked(sig [3]fileSig) error {
	f.sig = sig // a failed set is not retried until it changes again
	m, err := f.load()
	if err != nil {
		f.log.Error("TLS files did not load; keeping the previous certificate", "err", err)
		return err
	}
	f.cur = m
	if leaf := m.cert.Leaf; leaf != nil {
		f.log.Info("TLS files loaded", "cert", f.CertFile, "subject", leaf.Subject.String(), "not_after", leaf.NotAfter)
	}
	return nil
}

// current returns the material in use, re-reading the files first if they
// changed since they were last read.
func (f *TLSFiles) current() *tlsMaterial {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sig := f.stat(); sig != f.sig {
		_ = f.reloadLocked(sig)
	}
	return f.cur
}

// ServerConfig returns a server configuration that presents the current
// certificate. With a CA file, clients must present a certificate that
// chains to it (mutual TLS).
func (f *TLSFiles) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := f.current()
			c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*m.cert}}
			if m.cas != nil {
				c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, m.cas
			}
			return c, nil
		},
	}
}

// ClientConfig returns a client configuration that presents the current
// certificate and verifies servers against the CA file (the system roots
// without one). WithTLS's Dial also checks that the server's certificate
// names the dialed host.
func (f *TLSFiles) ClientConfig() *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return f.current().cert, nil
		},
	}
	// The roots are read per handshake through VerifyConnection, so a new
	// CA file applies without a new Config.
	c.InsecureSkipVerify = true // replaced by VerifyConnection below
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		return verifyServer(cs, f.current().cas)
	}
	return c
}

// verifyServer does what crypto/tls does when InsecureSkipVerify is false,
// with roots read at handshake time.
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: server presented no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: cs.ServerName, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// WithTLS returns a Network whose connections are TLS: accepted ones are
// servers configured by server, dialed ones clients configured by client
// (its ServerName, if empty, becomes the dialed host). Dial completes the
// handshake before returning (bounded by ctx and timeout); an accepted
// connection completes it on first use, bounded by timeout, so a peer that
// connects and stalls is dropped without holding up Accept.
func WithTLS(n Network, server, client *tls.Config, timeout time.Duration) Network {
	if timeout <= 0 {
		timeout = DefaultTLSHandshakeTimeout
	}
	return tlsNetwork{n: n, server: server, client: client, timeout: timeout}
}

type tlsNetwork struct {
	n              Network
	server, client *tls.Config
	timeout        time.Duration
}

func (t tlsNetwork) Listen(addr string) (net.Listener, error) {
	ln, err := t.n.Listen(addr)
	if err != nil {
		return nil, err
	}
	return TLSListener(ln, t.server, t.timeout), nil
}

// TLSListener wraps ln so that its connections are TLS servers configured
// by cfg, their handshake bounded by timeout (see WithTLS).
func TLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration) net.Listener {
	if timeout <= 0 {
		timeout = DefaultTLSHandshakeTimeout
	}
	return tlsListener{Listener: ln, cfg: cfg, timeout: timeout}
}

func (t tlsNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := t.n.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	cfg := t.client.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			c.Close()
			return nil, err
		}
		cfg.ServerName = host
	}
	tc := tls.Client(c, cfg)
	hctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	// The server's certificate must name the host dialed. Checked here
	// because crypto/tls sends no SNI for an IP address, so the
	// ConnectionState that ClientConfig's verifier sees has no name.
	if peers := tc.ConnectionState().PeerCertificates; len(peers) == 0 || peers[0].VerifyHostname(cfg.ServerName) != nil {
		tc.Close()
		return nil, fmt.Errorf("tls handshake with %s: the server's certificate is not for %q", addr, cfg.ServerName)
	}
	return tc, nil
}

type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
}

func (l tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &ServerTLSConn{Conn: tls.Server(c, l.cfg), Timeout: l.timeout}, nil
}

// ServerTLSConn is an accepted TLS connection whose handshake runs, once,
// on first use (or on Handshake), bounded by Timeout.
type ServerTLSConn struct {
	*tls.Conn
	Timeout time.Duration

	once sync.Once
	err  error
}

// Handshake completes the handshake (once; later calls return its result).
func (c *ServerTLSConn) Handshake(ctx context.Context) error {
	c.once.Do(func() {
		hctx, cancel := context.WithTimeout(ctx, c.Timeout)
		defer cancel()
		c.err = c.Conn.HandshakeContext(hctx)
	})
	return c.err
}

func (c *ServerTLSConn) Read(b []byte) (int, error) {
	if err := c.Handshake(context.Background()); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *ServerTLSConn) Write(b []byte) (int, error) {
	if err := c.Handshake(context.Background()); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}
