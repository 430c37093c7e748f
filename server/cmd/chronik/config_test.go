package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestParseServeConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		err  string
		chk  func(t *testing.T, c serveConfig)
	}{
		{name: "defaults", chk: func(t *testing.T, c serveConfig) {
			if c.NodeID != 1 || c.KafkaAddr != "127.0.0.1:9092" || c.AdvertisedAddr != c.KafkaAddr || c.DataDir != "./chronik-data" || len(c.Peers) != 0 || c.LogLevel != slog.LevelInfo {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{name: "env", env: map[string]string{"CHRONIK_NODE_ID": "2", "CHRONIK_DATA_DIR": "/x", "CHRONIK_HTTP_ADDR": "off", "CHRONIK_LOG_LEVEL": "debug"},
			args: []string{"--raft-addr", "h:2"},
			chk: func(t *testing.T, c serveConfig) {
				if c.NodeID != 2 || c.DataDir != "/x" || c.HTTPAddr != "" || c.LogLevel != slog.LevelDebug {
					t.Fatalf("env: %+v", c)
				}
			}},
		{name: "flag beats env", env: map[string]string{"CHRONIK_NODE_ID": "2"}, args: []string{"--node-id", "3"},
			chk: func(t *testing.T, c serveConfig) {
				if c.NodeID != 3 {
					t.Fatalf("node id %d, want 3", c.NodeID)
				}
			}},
		{name: "peers", args: []string{"--node-id", "2", "--raft-addr", "b:7002", "--peers", "1=a:7001, 2=b:7002,3=c:7003"},
			chk: func(t *testing.T, c serveConfig) {
				if len(c.Peers) != 3 || c.Peers[3] != "c:7003" || c.peerIDs()[0] != 1 {
					t.Fatalf("peers: %v", c.Peers)
				}
			}},
		{name: "peers without self", args: []string{"--peers", "2=b:1"}, err: "does not list this node"},
		{name: "peers disagree with raft-addr", args: []string{"--peers", "1=a:1"}, err: "but --raft-addr is"},
		{name: "dup peer", args: []string{"--peers", "1=a:1,1=a:2"}, err: "listed twice"},
		{name: "bad peer", args: []string{"--peers", "x"}, err: "not id=host:port"},
		{name: "zero node", args: []string{"--node-id", "0"}, err: "at least 1"},
		{name: "unspecified advertised", args: []string{"--kafka-addr", "0.0.0.0:9092"}, err: "unspecified"},
		{name: "bad port", args: []string{"--kafka-addr", "h:0"}, err: "bad port"},
		{name: "bad format", args: []string{"--log-format", "xml"}, err: "text or json"},
		{name: "bad level", args: []string{"--log-level", "loud"}, err: "--log-level"},
		{name: "bad env", env: map[string]string{"CHRONIK_NODE_ID": "x"}, err: "CHRONIK_NODE_ID"},
		{name: "extra args", args: []string{"extra"}, err: "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseServeConfig(tc.args, env(tc.env), io.Discard)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.chk(t, c)
		})
	}
}
