package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/server"
)

// serveConfig is everything `chronik serve` takes, from flags or from
// CHRONIK_* environment variables (a flag given on the command line wins).
type serveConfig struct {
	NodeID         uint64
	KafkaAddr      string            // listen address for Kafka clients
	AdvertisedAddr string            // what Metadata tells clients; defaults to KafkaAddr
	RaftAddr       string            // listen and advertised address for Raft traffic
	Peers          map[uint64]string // node id -> raft address; empty = single node
	DataDir        string
	HTTPAddr       string // metrics and health; "" or "off" disables
	LogLevel       slog.Level
	LogFormat      string // text | json
	Broker         brokerSettings
	TLS            tlsSettings
	SASL           saslSettings
	Authorizer     string   // "" or "acl"
	SuperUsers     []string // principals allowed everything
	RaftLogBytes   int64    // node.Config.RaftLogBytes (0: its default)
}

// saslSettings turn SASL on for Kafka clients.
type saslSettings struct {
	Mechanisms      []string      // enabled; empty: SASL off
	UsersFile       string        // credentials to create at start if missing
	SessionLifetime time.Duration // connections.max.reauth.ms; 0: sessions never expire
}

// tlsSettings are the PEM files of the Kafka listener's TLS and of the
// mutual TLS between nodes; empty means plaintext.
type tlsSettings struct {
	CertFile, KeyFile, ClientCAFile       string // Kafka listener
	RaftCertFile, RaftKeyFile, RaftCAFile string // Raft transport (all three or none)
}

// errHelp: -h was asked for and the usage printed.
var errHelp = errors.New("help requested")

// envPrefix is the prefix of the environment variables: --node-id is
// CHRONIK_NODE_ID, and so on.
const envPrefix = "CHRONIK_"

func parseServeConfig(args []string, getenv func(string) string, stderr io.Writer) (serveConfig, error) {
	fs := flag.NewFlagSet("chronik serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		nodeID    = fs.Uint64("node-id", 1, "this node's id (1..)")
		kafka     = fs.String("kafka-addr", "127.0.0.1:9092", "listen address for Kafka clients")
		adv       = fs.String("advertised-addr", "", "address clients are told to use (default: --kafka-addr)")
		raft      = fs.String("raft-addr", "127.0.0.1:9093", "listen and advertised address for Raft traffic between nodes")
		peers     = fs.String("peers", "", "cluster members as 1=host:raftport,2=host:raftport,...; empty means a single node")
		dataDir   = fs.String("data-dir", "./chronik-data", "data directory")
		httpAddr  = fs.String("http-addr", "127.0.0.1:9644", `address for /metrics, /healthz, /readyz ("off" disables)`)
		logLevel  = fs.String("log-level", "info", "debug|info|warn|error")
		logFormat = fs.String("log-format", "text", "text|json")
		broker    brokerSettings
		tlsCfg    tlsSettings
		saslMechs = fs.String("sasl-mechanisms", "", "comma-separated SASL mechanisms clients must authenticate with (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); empty: no SASL")
		saslUsers = fs.String("sasl-users-file", "", "`file` of lines MECHANISM USER PASSWORD: credentials created at start when the user has none for that mechanism (PLAIN creates a SCRAM-SHA-512 credential)")
		authz     = fs.String("authorizer", "", `"acl": check every request against the cluster's ACLs (CreateAcls...); empty: every client may do everything`)
		supers    = fs.String("superusers", "", "comma-separated principals allowed everything with --authorizer acl, e.g. User:admin,User:CN=ops")
		saslLife  = fs.Int64("sasl-session-lifetime-ms", 0, "connections.max.reauth.ms: clients must re-authenticate after this many `ms` (0: never)")
		raftLog   = fs.Int64("raft-log-bytes", node.DefaultRaftLogBytes, "the node's budget of `bytes` for its partitions' Raft log (the write-ahead log under --data-dir/wal): a partition that wrote its share since its last snapshot gets one, after which its older entries are dropped; at least 1 MiB per partition; -1 counts entries only")
	)
	fs.StringVar(&tlsCfg.CertFile, "tls-cert-file", "", "PEM `file` of the Kafka listener's certificate chain: clients must then connect with TLS (needs --tls-key-file)")
	fs.StringVar(&tlsCfg.KeyFile, "tls-key-file", "", "PEM `file` of the Kafka listener's private key")
	fs.StringVar(&tlsCfg.ClientCAFile, "tls-client-ca-file", "", "PEM `file` of the CAs client certificates must chain to: mutual TLS, the certificate's subject is the client's principal")
	fs.StringVar(&tlsCfg.RaftCertFile, "raft-tls-cert-file", "", "PEM `file` of this node's certificate for mutual TLS between nodes (needs --raft-tls-key-file and --raft-tls-ca-file; it must name the host of --raft-addr)")
	fs.StringVar(&tlsCfg.RaftKeyFile, "raft-tls-key-file", "", "PEM `file` of this node's private key for mutual TLS between nodes")
	fs.StringVar(&tlsCfg.RaftCAFile, "raft-tls-ca-file", "", "PEM `file` of the CAs every node's certificate must chain to")
	addBrokerFlags(fs, &broker)
	// Environment first, so that flags given explicitly override it.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return serveConfig{}, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return serveConfig{}, errHelp
		}
		return serveConfig{}, err
	}
	if fs.NArg() > 0 {
		return serveConfig{}, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	c := serveConfig{
		NodeID: *nodeID, KafkaAddr: *kafka, AdvertisedAddr: *adv, RaftAddr: *raft,
		DataDir: *dataDir, HTTPAddr: *httpAddr, LogFormat: *logFormat, Broker: broker, TLS: tlsCfg,
		SASL:         saslSettings{UsersFile: *saslUsers, SessionLifetime: time.Duration(*saslLife) * time.Millisecond},
		RaftLogBytes: *raftLog,
	}
	if c.RaftLogBytes == 0 || c.RaftLogBytes < -1 {
		return serveConfig{}, fmt.Errorf("--raft-log-bytes %d: want a positive size, or -1", c.RaftLogBytes)
	}
	if c.AdvertisedAddr == "" {
		c.AdvertisedAddr = c.KafkaAddr
	}
	if c.HTTPAddr == "off" {
		c.HTTPAddr = ""
	}
	if err := c.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return serveConfig{}, fmt.Errorf("--log-level: %w", err)
	}
	for _, m := range strings.Split(*saslMechs, ",") {
		if m = strings.TrimSpace(strings.ToUpper(m)); m != "" {
			c.SASL.Mechanisms = append(c.SASL.Mechanisms, m)
		}
	}
	c.Authorizer = *authz
	for _, p := range strings.Split(*supers, ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.SuperUsers = append(c.SuperUsers, p)
		}
	}
	if *saslLife < 0 {
		return serveConfig{}, fmt.Errorf("--sasl-session-lifetime-ms must be 0 (never) or positive")
	}
	var err error
	if c.Peers, err = parsePeers(*peers); err != nil {
		return serveConfig{}, fmt.Errorf("--peers: %w", err)
	}
	return c, c.validate()
}

func (c serveConfig) validate() error {
	if c.NodeID == 0 {
		return fmt.Errorf("--node-id must be at least 1")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat)
	}
	for name, addr := range map[string]string{"--kafka-addr": c.KafkaAddr, "--advertised-addr": c.AdvertisedAddr, "--raft-addr": c.RaftAddr} {
		if _, _, err := splitHostPort(addr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	for _, m := range c.SASL.Mechanisms {
		if !server.ValidSASLMechanism(m) {
			return fmt.Errorf("--sasl-mechanisms: unknown mechanism %q (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", m)
		}
	}
	if c.Authorizer != "" && c.Authorizer != "acl" {
		return fmt.Errorf("--authorizer must be acl or empty, not %q", c.Authorizer)
	}
	if len(c.SuperUsers) > 0 && c.Authorizer == "" {
		return fmt.Errorf("--superusers needs --authorizer acl")
	}
	for _, p := range c.SuperUsers {
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return fmt.Errorf("--superusers: %q is not Type:name (for example User:admin)", p)
		}
	}
	if c.SASL.UsersFile != "" && len(c.SASL.Mechanisms) == 0 {
		return fmt.Errorf("--sasl-users-file needs --sasl-mechanisms")
	}
	host, _, _ := splitHostPort(c.AdvertisedAddr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		// Clients cannot connect to 0.0.0.0: never advertise it.
		return fmt.Errorf("--advertised-addr %q is unspecified; set it to an address clients can reach", c.AdvertisedAddr)
	}
	if len(c.Peers) > 0 {
		addr, ok := c.Peers[c.NodeID]
		if !ok {
			return fmt.Errorf("--peers does not list this node (--node-id %d)", c.NodeID)
		}
		if addr != c.RaftAddr {
			return fmt.Errorf("--peers lists node %d at %s but --raft-addr is %s", c.NodeID, addr, c.RaftAddr)
		}
	}
	return nil
}

// splitHostPort splits host:port and checks the port.
func splitHostPort(addr string) (string, int32, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, int32(port), nil
}

// parsePeers reads "1=host:port,2=host:port".
func parsePeers(s string) (map[uint64]string, error) {
	peers := map[uint64]string{}
	if strings.TrimSpace(s) == "" {
		return peers, nil
	}
	for _, part := range strings.Split(s, ",") {
		idStr, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%q is not id=host:port", part)
		}
		id, err := strconv.ParseUint(idStr, 10, 64)
		if err != nil || id == 0 {
			return nil, fmt.Errorf("bad node id %q", idStr)
		}
		if _, _, err := splitHostPort(addr); err != nil {
			return nil, fmt.Errorf("node %d: %w", id, err)
		}
		if _, dup := peers[id]; dup {
			return nil, fmt.Errorf("node %d listed twice", id)
		}
		peers[id] = addr
	}
	return peers, nil
}

// peerIDs returns the peer ids in order.
func (c serveConfig) peerIDs() []uint64 {
	ids := make([]uint64, 0, len(c.Peers))
	for id := range c.Peers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func newLogger(c serveConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (t tlsSettings) validate() error {
	if (t.CertFile == "") != (t.KeyFile == "") {
		return fmt.Errorf("--tls-cert-file and --tls-key-file go together")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		return fmt.Errorf("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	if n := countSet(t.RaftCertFile, t.RaftKeyFile, t.RaftCAFile); n != 0 && n != 3 {
		return fmt.Errorf("--raft-tls-cert-file, --raft-tls-key-file and --raft-tls-ca-file go together (mutual TLS between nodes)")
	}
	return nil
}

func countSet(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}
