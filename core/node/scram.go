package node

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"hash"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/meta"
)

// SCRAM credentials (RFC 5802, KIP-554) live in the controller
// (meta.AlterScramCredentials): only the derived keys are stored. The
// functions here derive them; the SASL exchanges are in server/sasl*.go.

// ScramHash returns the hash of mech.
func ScramHash(mech meta.ScramMechanism) func() hash.Hash {
	if mech == meta.ScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

// ScramSaltPassword is RFC 5802's Hi(password, salt, iterations).
func ScramSaltPassword(mech meta.ScramMechanism, password string, salt []byte, iterations int) ([]byte, error) {
	h := ScramHash(mech)
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

// ScramKeys derives StoredKey and ServerKey from a salted password.
func ScramKeys(mech meta.ScramMechanism, salted []byte) (stored, server []byte) {
	h := ScramHash(mech)
	clientKey := ScramHMAC(mech, salted, []byte("Client Key"))
	sum := h()
	sum.Write(clientKey)
	return sum.Sum(nil), ScramHMAC(mech, salted, []byte("Server Key"))
}

// ScramHMAC is HMAC with mech's hash.
func ScramHMAC(mech meta.ScramMechanism, key, msg []byte) []byte {
	m := hmac.New(ScramHash(mech), key)
	m.Write(msg)
	return m.Sum(nil)
}

// ScramCheckPassword reports whether password matches c (PLAIN
// authentication against a SCRAM credential). Constant time in the keys.
func ScramCheckPassword(c meta.ScramCredential, password string) bool {
	salted, err := ScramSaltPassword(c.Mechanism, password, c.Salt, int(c.Iterations))
	if err != nil {
		return false
	}
	stored, _ := ScramKeys(c.Mechanism, salted)
	return subtle.ConstantTimeCompare(stored, c.StoredKey) == 1
}

// ScramCredential returns user's credential for mech, as applied here.
func (n *Node) ScramCredential(user string, mech meta.ScramMechanism) (meta.ScramCredential, bool) {
	return n.view().ScramCredential(user, mech)
}

// ScramCredentials returns every credential (sorted by user, then
// mechanism; shared with the view: do not modify).
func (n *Node) ScramCredentials() []meta.ScramCredential { return n.view().Scram }

// ScramUpsert sets a user's credential from a salted password (Kafka's
// AlterUserScramCredentials carries the salted password, never the
// password).
type ScramUpsert struct {
	User           string
	Mechanism      meta.ScramMechanism
	Iterations     int32
	Salt           []byte
	SaltedPassword []byte
}

// AlterScramCredentials applies upserts and deletions through the
// controller and returns one code per user (in order of first appearance:
// upserts, then deletions). err is set when nothing could be proposed
// (codes are then nil).
func (n *Node) AlterScramCredentials(ctx context.Context, upserts []ScramUpsert, deletions []meta.ScramDeletion) ([]meta.UserCode, int16, error) {
	cmd := meta.AlterScramCredentials{Deletions: deletions}
	for _, u := range upserts {
		c := meta.ScramCredential{User: u.User, Mechanism: u.Mechanism, Iterations: u.Iterations, Salt: u.Salt}
		if u.Mechanism == meta.ScramSHA256 || u.Mechanism == meta.ScramSHA512 {
			if len(u.SaltedPassword) == u.Mechanism.KeyBytes() {
				c.StoredKey, c.ServerKey = ScramKeys(u.Mechanism, u.SaltedPassword)
			}
		}
		cmd.Upserts = append(cmd.Upserts, c)
	}
	r, err := n.proposeMeta(ctx, cmd)
	if err != nil {
		return nil, metaCode(ctx, err), err
	}
	if r.Code != 0 {
		return nil, r.Code, kerr.ErrorForCode(r.Code)
	}
	return r.Users, 0, nil
}

// ScramSeed is a credential to create from a password if the user has
// none for the mechanism (a users file read at start).
type ScramSeed struct {
	User      string
	Mechanism meta.ScramMechanism
	Password  string
}

// ScramSeedIterations is the iteration count of seeded credentials.
const ScramSeedIterations = 4096

// SeedScramCredentials creates the seeds' credentials that do not exist
// yet (an existing credential, changed since, is left alone) and returns
// how many it created.
func (n *Node) SeedScramCredentials(ctx context.Context, seeds []ScramSeed) (int, error) {
	missing := func() bool {
		for _, s := range seeds {
			if _, ok := n.ScramCredential(s.User, s.Mechanism); !ok {
				return true
			}
		}
		return false
	}
	if !missing() { // as applied here: nothing to do, no quorum needed
		return 0, nil
	}
	if err := n.SyncController(ctx); err != nil {
		return 0, err
	}
	var ups []ScramUpsert
	for _, s := range seeds {
		if _, ok := n.ScramCredential(s.User, s.Mechanism); ok {
			continue
		}
		salt := make([]byte, 32)
		_, _ = rand.Read(salt)
		salted, err := ScramSaltPassword(s.Mechanism, s.Password, salt, ScramSeedIterations)
		if err != nil {
			return 0, err
		}
		ups = append(ups, ScramUpsert{User: s.User, Mechanism: s.Mechanism, Iterations: ScramSeedIterations, Salt: salt, SaltedPassword: salted})
	}
	if len(ups) == 0 {
		return 0, nil
	}
	codes, _, err := n.AlterScramCredentials(ctx, ups, nil)
	if err != nil {
		return 0, err
	}
	for _, c := range codes {
		if c.Code != 0 {
			return 0, kerr.ErrorForCode(c.Code)
		}
	}
	return len(ups), nil
}
