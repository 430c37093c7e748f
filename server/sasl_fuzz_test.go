package server

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// fixedCreds holds alice's credentials (password "pw") for both SCRAM
// mechanisms.
type fixedCreds map[meta.ScramMechanism]meta.ScramCredential

func (f fixedCreds) ScramCredential(user string, mech meta.ScramMechanism) (meta.ScramCredential, bool) {
	c, ok := f[mech]
	return c, ok && user == c.User
}

func aliceCreds(t testing.TB) fixedCreds {
	f := fixedCreds{}
	for _, m := range []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512} {
		salt := []byte("fixed-salt")
		salted, err := node.ScramSaltPassword(m, "pw", salt, meta.ScramIterationsMin)
		if err != nil {
			t.Fatal(err)
		}
		stored, server := node.ScramKeys(m, salted)
		f[m] = meta.ScramCredential{User: "alice", Mechanism: m, Iterations: meta.ScramIterationsMin, Salt: salt, StoredKey: stored, ServerKey: server}
	}
	return f
}

// FuzzSASLExchange feeds arbitrary client messages to the server side of
// each mechanism: it must never panic, and it may complete only for
// alice, the one user with credentials, with her password.
func FuzzSASLExchange(f *testing.F) {
	f.Add(byte(0), []byte("\x00alice\x00pw"), []byte(nil))
	f.Add(byte(0), []byte("alice\x00alice\x00pw"), []byte(nil))
	f.Add(byte(0), []byte("\x00alice\x00wrong"), []byte(nil))
	f.Add(byte(0), []byte("\x00\x00"), []byte(nil))
	f.Add(byte(1), []byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add(byte(2), []byte("n,a=alice,n=alice,r=abc"), []byte("c=biws,r=abcdef,p="))
	f.Add(byte(1), []byte("y,,n=al=2Cice,r=x,tokenauth=true"), []byte(""))
	f.Add(byte(2), []byte("n,,n=alice,r=abc,ext=1"), []byte("c=biws,r=,p=,p=="))
	creds := aliceCreds(f)
	f.Fuzz(func(t *testing.T, mechSel byte, first, second []byte) {
		mech := []string{SASLPlain, SASLScramSHA256, SASLScramSHA512}[int(mechSel)%3]
		ex := newExchange(mech, creds)
		_, done, user, err := ex.step(first)
		if err == nil && !done {
			_, done, user, err = ex.step(second)
		}
		if done && (err != nil || user != "alice") {
			t.Fatalf("%s completed for %q (err %v)", mech, user, err)
		}
		if done && mech == SASLPlain && string(first[len(first)-3:]) != "\x00pw" {
			t.Fatalf("PLAIN accepted %q", first)
		}
	})
}

// A real SCRAM exchange (the client side written out from RFC 5802)
// completes, and the server's signature is the one the client expects.
func TestSCRAMExchange(t *testing.T) {
	creds := aliceCreds(t)
	for _, m := range []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512} {
		ex := newExchange(m.String(), creds)
		out, done, _, err := ex.step([]byte("n,,n=alice,r=clientnonce"))
		if err != nil || done {
			t.Fatalf("%v first: %v %v", m, done, err)
		}
		// server-first: r=<nonce>,s=<salt>,i=<iterations>
		sf := string(out)
		nonce := sf[2:indexOf(sf, ",s=")]
		salted, _ := node.ScramSaltPassword(m, "pw", []byte("fixed-salt"), meta.ScramIterationsMin)
		withoutProof := "c=biws,r=" + nonce
		authMsg := "n=alice,r=clientnonce," + sf + "," + withoutProof
		clientKey := node.ScramHMAC(m, salted, []byte("Client Key"))
		h := node.ScramHash(m)()
		h.Write(clientKey)
		sig := node.ScramHMAC(m, h.Sum(nil), []byte(authMsg))
		proof := make([]byte, len(sig))
		for i := range sig {
			proof[i] = clientKey[i] ^ sig[i]
		}
		final := withoutProof + ",p=" + b64(proof)
		out, done, user, err := ex.step([]byte(final))
		if err != nil || !done || user != "alice" {
			t.Fatalf("%v final: %v %q %v", m, done, user, err)
		}
		_, serverKey := node.ScramKeys(m, salted)
		if want := "v=" + b64(node.ScramHMAC(m, serverKey, []byte(authMsg))); string(out) != want {
			t.Fatalf("%v server-final %q, want %q", m, out, want)
		}
		// A wrong proof fails.
		ex = newExchange(m.String(), creds)
		out, _, _, _ = ex.step([]byte("n,,n=alice,r=clientnonce"))
		sf = string(out)
		nonce = sf[2:indexOf(sf, ",s=")]
		if _, done, _, err := ex.step([]byte("c=biws,r=" + nonce + ",p=" + b64(make([]byte, m.KeyBytes())))); done || err == nil {
			t.Fatalf("%v: a zero proof was accepted", m)
		}
	}
}

func indexOf(s, sub string) int { return strings.Index(s, sub) }

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
