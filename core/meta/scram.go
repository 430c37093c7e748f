package meta

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// SCRAM credentials (KIP-554), replicated so that every node authenticates
// every user the same way. Only the derived keys are stored (RFC 5802:
// StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
// HMAC(SaltedPassword, "Server Key")); neither the password nor the salted
// password enters the log: the proposing node derives the keys.

// ScramMechanism is Kafka's SCRAM mechanism code.
type ScramMechanism int8

const (
	ScramSHA256 ScramMechanism = 1
	ScramSHA512 ScramMechanism = 2
)

// String returns the SASL mechanism name.
func (m ScramMechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return "UNKNOWN"
}

// KeyBytes is the length of the mechanism's hash (and so of its keys).
func (m ScramMechanism) KeyBytes() int {
	if m == ScramSHA512 {
		return 64
	}
	return 32
}

// Limits of SCRAM credentials (Kafka's iteration bounds).
const (
	ScramIterationsMin = 4096
	ScramIterationsMax = 16384
	ScramUserLenMax    = 1024
	ScramSaltLenMax    = 256
	ScramUsersMax      = 100000 // credentials in the cluster
	ScramAlterMax      = 1000   // upserts + deletions per command
)

// ScramCredential is one user's credential for one mechanism.
type ScramCredential struct {
	User       string
	Mechanism  ScramMechanism
	Iterations int32
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// ScramDeletion removes one user's credential for one mechanism.
type ScramDeletion struct {
	User      string
	Mechanism ScramMechanism
}

// AlterScramCredentials upserts and deletes credentials; each user's
// changes succeed or fail on their own (Result.Users, one code per user in
// order of first appearance: upserts, then deletions).
type AlterScramCredentials struct {
	Upserts   []ScramCredential
	Deletions []ScramDeletion
}

func (AlterScramCredentials) Kind() Kind { return KindAlterScramCredentials }

func (c AlterScramCredentials) encode(e *enc) {
	e.uvar(uint64(len(c.Upserts)))
	for _, u := range c.Upserts {
		encodeScramCredential(e, u)
	}
	e.uvar(uint64(len(c.Deletions)))
	for _, d := range c.Deletions {
		e.str(d.User)
		e.svar(int64(d.Mechanism))
	}
}

func encodeScramCredential(e *enc, c ScramCredential) {
	e.str(c.User)
	e.svar(int64(c.Mechanism))
	e.svar(int64(c.Iterations))
	e.str(string(c.Salt))
	e.str(string(c.StoredKey))
	e.str(string(c.ServerKey))
}

func decodeScramCredential(d *dec) ScramCredential {
	return ScramCredential{User: d.str(ScramUserLenMax), Mechanism: ScramMechanism(d.i8()), Iterations: d.i32(),
		Salt: []byte(d.str(ScramSaltLenMax)), StoredKey: []byte(d.str(64)), ServerKey: []byte(d.str(64))}
}

func decodeAlterScramCredentials(d *dec) AlterScramCredentials {
	var c AlterScramCredentials
	n := d.count(ScramAlterMax)
	for i := 0; i < n && d.err == nil; i++ {
		c.Upserts = append(c.Upserts, decodeScramCredential(d))
	}
	n = d.count(ScramAlterMax)
	for i := 0; i < n && d.err == nil; i++ {
		c.Deletions = append(c.Deletions, ScramDeletion{User: d.str(ScramUserLenMax), Mechanism: ScramMechanism(d.i8())})
	}
	return c
}

// UserCode is the outcome for one user.
type UserCode struct {
	User string
	Code int16
}

// checkScramCredential returns what is wrong with c, or "".
func checkScramCredential(c ScramCredential) string {
	switch {
	case c.User == "":
		return "empty user name"
	case c.Mechanism != ScramSHA256 && c.Mechanism != ScramSHA512:
		return "unknown SCRAM mechanism"
	case c.Iterations < ScramIterationsMin || c.Iterations > ScramIterationsMax:
		return "iterations outside [4096, 16384]"
	case len(c.Salt) == 0:
		return "empty salt"
	case len(c.StoredKey) != c.Mechanism.KeyBytes() || len(c.ServerKey) != c.Mechanism.KeyBytes():
		return "keys of the wrong length for the mechanism"
	}
	return ""
}

func scramLess(a, b ScramCredential) int {
	return cmp.Or(cmp.Compare(a.User, b.User), cmp.Compare(a.Mechanism, b.Mechanism))
}

// scramIndex finds (user, mech) in the sorted credentials.
func scramIndex(cs []ScramCredential, user string, mech ScramMechanism) (int, bool) {
	return slices.BinarySearchFunc(cs, ScramCredential{User: user, Mechanism: mech}, scramLess)
}

func (s *state) alterScramCredentials(c AlterScramCredentials) (Result, bool) {
	if len(c.Upserts)+len(c.Deletions) > ScramAlterMax {
		return fail(kerr.InvalidRequest.Code, "%d credential changes beyond limit %d", len(c.Upserts)+len(c.Deletions), ScramAlterMax), false
	}
	// Each user's changes apply together or not at all.
	var users []string
	codes := map[string]int16{}
	note := func(user string, code int16) {
		if _, seen := codes[user]; !seen {
			users = append(users, user)
			codes[user] = 0
		}
		if codes[user] == 0 {
			codes[user] = code
		}
	}
	for _, u := range c.Upserts {
		code := int16(0)
		if checkScramCredential(u) != "" {
			code = kerr.UnacceptableCredential.Code
		}
		note(u.User, code)
	}
	for _, d := range c.Deletions {
		code := int16(0)
		if _, ok := scramIndex(s.scram, d.User, d.Mechanism); !ok {
			code = kerr.ResourceNotFound.Code
		}
		note(d.User, code)
	}
	next := slices.Clone(s.scram)
	for _, d := range c.Deletions {
		if codes[d.User] != 0 {
			continue
		}
		if i, ok := scramIndex(next, d.User, d.Mechanism); ok {
			next = slices.Delete(next, i, i+1)
		}
	}
	for _, u := range c.Upserts {
		if codes[u.User] != 0 {
			continue
		}
		u.Salt, u.StoredKey, u.ServerKey = slices.Clone(u.Salt), slices.Clone(u.StoredKey), slices.Clone(u.ServerKey)
		if i, ok := scramIndex(next, u.User, u.Mechanism); ok {
			next[i] = u
		} else if len(next) >= ScramUsersMax {
			codes[u.User] = kerr.PolicyViolation.Code
		} else {
			next = slices.Insert(next, i, u)
		}
	}
	res := Result{}
	for _, u := range users {
		res.Users = append(res.Users, UserCode{User: u, Code: codes[u]})
	}
	changed := !slices.EqualFunc(next, s.scram, func(a, b ScramCredential) bool {
		return scramLess(a, b) == 0 && a.Iterations == b.Iterations && string(a.Salt) == string(b.Salt) &&
			string(a.StoredKey) == string(b.StoredKey) && string(a.ServerKey) == string(b.ServerKey)
	})
	if changed {
		if len(next) == 0 {
			next = nil // as after a snapshot restore
		}
		s.scram = next
	}
	return res, changed
}

// encodeSnapshotScram writes the credentials section of a version 5
// snapshot (sorted by user, then mechanism).
func (s *state) encodeSnapshotScram(e *enc) {
	e.uvar(uint64(len(s.scram)))
	for _, c := range s.scram {
		encodeScramCredential(e, c)
	}
}

func decodeSnapshotScram(d *dec, s *state) {
	n := d.count(ScramUsersMax)
	var cs []ScramCredential
	for i := 0; i < n && d.err == nil; i++ {
		c := decodeScramCredential(d)
		if msg := checkScramCredential(c); msg != "" {
			d.fail("credential of %q: %s", c.User, msg)
			return
		}
		if len(cs) > 0 && scramLess(cs[len(cs)-1], c) >= 0 {
			d.fail("credentials not sorted or duplicated at %q", c.User)
			return
		}
		cs = append(cs, c)
	}
	s.scram = cs
}

// ScramCredential returns user's credential for mech, if any.
func (v *View) ScramCredential(user string, mech ScramMechanism) (ScramCredential, bool) {
	i, ok := scramIndex(v.Scram, user, mech)
	if !ok {
		return ScramCredential{}, false
	}
	return v.Scram[i], true
}
