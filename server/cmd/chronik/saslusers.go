package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/server"
)

// parseSASLUsers reads a users file: one credential per line, MECHANISM
// USER PASSWORD (the password is the rest of the line, trimmed); blank
// lines and lines starting with # are skipped. PLAIN authenticates against
// SCRAM credentials, so a PLAIN line creates a SCRAM-SHA-512 one. Errors
// name the line, never the password.
func parseSASLUsers(r io.Reader) ([]node.ScramSeed, error) {
	var out []node.ScramSeed
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		mech, rest, _ := strings.Cut(l, " ")
		user, pass, _ := strings.Cut(strings.TrimSpace(rest), " ")
		pass = strings.TrimSpace(pass)
		if user == "" || pass == "" {
			return nil, fmt.Errorf("line %d: want MECHANISM USER PASSWORD", line)
		}
		var m meta.ScramMechanism
		switch strings.ToUpper(mech) {
		case server.SASLScramSHA256:
			m = meta.ScramSHA256
		case server.SASLScramSHA512, server.SASLPlain:
			m = meta.ScramSHA512
		default:
			return nil, fmt.Errorf("line %d: unknown mechanism %q (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", line, mech)
		}
		if len(user) > meta.ScramUserLenMax {
			return nil, fmt.Errorf("line %d: user name longer than %d bytes", line, meta.ScramUserLenMax)
		}
		out = append(out, node.ScramSeed{User: user, Mechanism: m, Password: pass})
	}
	return out, sc.Err()
}
