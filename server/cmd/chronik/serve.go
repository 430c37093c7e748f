package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
	"github.com/chronik-go/chronik/server"
)

// shutdownGrace bounds the graceful stop after SIGTERM/SIGINT: in-flight
// requests finish and leaderships are handed over within it; a second
// signal exits at once.
const shutdownGrace = 15 * time.Second

// serve runs a broker until a signal arrives, then stops it gracefully.
func serve(args []string, stderr io.Writer) int {
	cfg, err := parseServeConfig(args, os.Getenv, stderr)
	if err != nil {
		if errors.Is(err, errHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "chronik serve:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	raftlog.Install(log, max(cfg.LogLevel, slog.LevelWarn))
	if stop := startCPUProfile(os.Getenv("CHRONIK_CPUPROFILE"), log); stop != nil {
		defer stop()
	}
	if path := os.Getenv("CHRONIK_MEMPROFILE"); path != "" {
		defer writeHeapProfile(path, log)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	r, err := startServe(cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	var sig os.Signal
	for sig == nil {
		select {
		case sig = <-sigs:
		case <-hups:
			// Certificates are also re-read when their files change; SIGHUP
			// forces it. Failures are logged and the old ones stay.
			log.Info("SIGHUP: re-reading TLS files", "sets", len(r.tlsFiles))
			for _, f := range r.tlsFiles {
				_ = f.Reload()
			}
		}
	}
	log.Info("signal received; shutting down gracefully (send it again to exit at once)", "signal", sig.String(), "grace", shutdownGrace)
	done := make(chan error, 1)
	go func() { done <- r.stop() }()
	select {
	case err := <-done:
		if err != nil {
			log.Error("shutdown", "err", err)
			return 1
		}
		log.Info("stopped")
		return 0
	case sig := <-sigs:
		// Acknowledged data is already durable on a quorum, so exiting now
		// loses nothing acknowledged.
		log.Warn("second signal: exiting at once", "signal", sig.String())
		return 1
	}
}

// exitStorageFailure is the exit status after a storage failure (EX_IOERR
// of sysexits.h), so that supervisors and operators can tell it apart.
const exitStorageFailure = 74

// storageFailure is the node's fail-stop (node.Config.OnStorageFailure): a
// failed write, fsync or truncate leaves nobody knowing what is durable,
// so the process logs one clear line and exits; it acknowledged nothing
// that depended on the failed call, and on restart it recovers from what
// its disk really holds (peers supply the rest).
func storageFailure(log *slog.Logger, exit func(int)) func(error) {
	return func(err error) {
		log.Error("storage failure: stopping the process so that nothing unsynced is acknowledged; "+
			"check the disk (free space, kernel log) before restarting, the node then recovers from its data directory",
			"err", err, "exit_status", exitStorageFailure)
		exit(exitStorageFailure)
	}
}

// running is a started broker and what serves beside it.
type running struct {
	b        *server.Broker
	httpSrv  *http.Server // nil without --http-addr
	tlsFiles []*netio.TLSFiles
	stopSeed func() // stops creating users-file credentials; waits for it
	seeded   func() bool
}

func startServe(cfg serveConfig, log *slog.Logger) (*running, error) {
	advHost, advPort, err := splitHostPort(cfg.AdvertisedAddr)
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	network := netio.NewOS()
	kafkaNet, raftNet, tlsFiles, err := tlsNetworks(cfg.TLS, network, log)
	if err != nil {
		return nil, err
	}
	ln, err := kafkaNet.Listen(cfg.KafkaAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --kafka-addr: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc := node.Config{
		NodeID: cfg.NodeID, RaftAddr: cfg.RaftAddr, Host: advHost, Port: advPort,
		Peers: cfg.Peers, DataDir: dataDir, FS: diskio.NewOS(), Net: raftNet,
		Clock: clock.Real(), Logger: log, DiskSpace: diskSpace,
		OnStorageFailure: storageFailure(log, os.Exit),
		RaftLogBytes:     cfg.RaftLogBytes,
	}
	cfg.Broker.apply(&nc)
	var seeds []node.ScramSeed
	if cfg.SASL.UsersFile != "" {
		f, err := os.Open(cfg.SASL.UsersFile)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("--sasl-users-file: %w", err)
		}
		seeds, err = parseSASLUsers(f)
		f.Close()
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("--sasl-users-file %s: %w", cfg.SASL.UsersFile, err)
		}
	}
	bc := server.BrokerConfig{
		Node:          nc,
		Listener:      ln,
		Logger:        log,
		FetchSessions: cfg.Broker.fetchSessions(),
	}
	if len(cfg.SASL.Mechanisms) > 0 {
		bc.Server.SASL = &server.SASLConfig{Mechanisms: cfg.SASL.Mechanisms, SessionLifetime: cfg.SASL.SessionLifetime}
	}
	if cfg.Authorizer == "acl" {
		bc.Server.Authorizer = &server.AuthorizerConfig{SuperUsers: cfg.SuperUsers}
	}
	b, err := server.StartBroker(ctx, bc)
	if err != nil {
		return nil, err
	}
	r := &running{b: b, tlsFiles: tlsFiles}
	r.stopSeed, r.seeded = seedSASLUsers(b, seeds, log)
	log.Info("chronik serving", "version", version, "node", cfg.NodeID, "kafka", cfg.KafkaAddr,
		"advertised", cfg.AdvertisedAddr, "raft", cfg.RaftAddr, "peers", len(cfg.Peers), "data", dataDir,
		"kafka_tls", cfg.TLS.CertFile != "", "sasl", strings.Join(cfg.SASL.Mechanisms, ","), "authorizer", cfg.Authorizer, "kafka_mtls", cfg.TLS.ClientCAFile != "", "raft_mtls", cfg.TLS.RaftCertFile != "")
	if cfg.HTTPAddr == "" {
		return r, nil
	}
	hln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		r.stopSeed()
		_ = b.Shutdown(context.Background())
		return nil, fmt.Errorf("listen on --http-addr: %w", err)
	}
	httpSrv := &http.Server{Handler: httpHandler(b, r.seeded), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := httpSrv.Serve(hln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	r.httpSrv = httpSrv
	return r, nil
}

// seedSASLUsers creates the users file's missing credentials in the
// background: they need the controller's quorum, which a node restarting
// alone may not have. It retries until done or stopped. stop stops it
// and waits; seeded reports whether the credentials exist (readiness).
func seedSASLUsers(b *server.Broker, seeds []node.ScramSeed, log *slog.Logger) (stop func(), seeded func() bool) {
	if len(seeds) == 0 {
		return func() {}, func() bool { return true }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var ok atomic.Bool
	go func() {
		defer close(done)
		for attempt := 1; ; attempt++ {
			actx, acancel := context.WithTimeout(ctx, 10*time.Second)
			created, err := b.Node.SeedScramCredentials(actx, seeds)
			acancel()
			if err == nil {
				ok.Store(true)
				log.Info("SASL users file applied", "credentials", len(seeds), "created", created)
				return
			}
			if attempt == 1 || attempt%20 == 0 {
				log.Warn("SASL users file: credentials not created yet; retrying", "err", err, "attempt", attempt)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}, ok.Load
}

// tlsNetworks returns the networks of the Kafka listener and of the Raft
// transport, each wrapped in TLS if its files are given, and the file sets
// loaded (for SIGHUP).
func tlsNetworks(t tlsSettings, network netio.Network, log *slog.Logger) (kafka, raft netio.Network, files []*netio.TLSFiles, err error) {
	kafka, raft = network, network
	if t.CertFile != "" {
		f, err := netio.LoadTLSFiles(t.CertFile, t.KeyFile, t.ClientCAFile, log.With("tls", "kafka"))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--tls-cert-file: %w", err)
		}
		kafka = netio.WithTLS(network, f.ServerConfig(), f.ClientConfig(), 0)
		files = append(files, f)
	}
	if t.RaftCertFile != "" {
		f, err := netio.LoadTLSFiles(t.RaftCertFile, t.RaftKeyFile, t.RaftCAFile, log.With("tls", "raft"))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--raft-tls-cert-file: %w", err)
		}
		raft = netio.WithTLS(network, f.ServerConfig(), f.ClientConfig(), 0)
		files = append(files, f)
	}
	return kafka, raft, files, nil
}

func (r *running) stop() error {
	r.stopSeed()
	return stopServe(r.b, r.httpSrv)
}

func stopServe(b *server.Broker, httpSrv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	var herr error
	if httpSrv != nil {
		herr = httpSrv.Shutdown(ctx)
	}
	return errors.Join(b.Shutdown(ctx), herr)
}

// httpHandler serves /metrics (Prometheus text), /healthz (the process is
// up) and /readyz (this node is registered at its current advertised
// address and a controller leader is known, so it can serve Kafka
// requests, and the users of --sasl-users-file exist).
func httpHandler(b *server.Broker, seeded func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_ = b.Metrics().WritePrometheus(w)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		reason := notReady(r.Context(), b)
		if reason == "" && !seeded() {
			reason = "the credentials of --sasl-users-file are not created yet"
		}
		if reason != "" {
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

func notReady(ctx context.Context, b *server.Broker) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v := b.Node.Metadata(ctx, []string{})
	if v.ControllerID < 0 {
		return "no controller leader known"
	}
	host, port := b.Node.Advertised()
	for _, br := range v.Brokers {
		if br.NodeID == b.NodeID {
			if br.Host != host || br.Port != port {
				// Restarted on a new address: clients would be sent to the
				// old one until the new registration is applied.
				return fmt.Sprintf("registered as %s:%d, not yet as %s:%d", br.Host, br.Port, host, port)
			}
			return ""
		}
	}
	return "this node is not registered yet"
}

// startCPUProfile writes a CPU profile of the whole run to path (a "%d"
// in it becomes the process id) when path is set: CHRONIK_CPUPROFILE, for
// profiling the broker under a benchmark's load. It returns what stops
// and closes it, or nil.
func startCPUProfile(path string, log *slog.Logger) func() {
	if path == "" {
		return nil
	}
	path = strings.ReplaceAll(path, "%d", strconv.Itoa(os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		log.Warn("CHRONIK_CPUPROFILE: not profiling", "err", err)
		return nil
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Warn("CHRONIK_CPUPROFILE: not profiling", "err", err)
		f.Close()
		return nil
	}
	log.Info("writing a CPU profile", "path", path)
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// writeHeapProfile writes the heap profile (in use and allocated) to path
// ("%d": the process id) when the process stops: CHRONIK_MEMPROFILE.
func writeHeapProfile(path string, log *slog.Logger) {
	path = strings.ReplaceAll(path, "%d", strconv.Itoa(os.Getpid()))
	f, err := os.Create(path)
	if err == nil {
		err = errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
	}
	if err != nil {
		log.Warn("CHRONIK_MEMPROFILE: not written", "err", err)
	}
}
