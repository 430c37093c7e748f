package meta

import (
	"bytes"
	"hash/crc32"
	"log/slog"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func cred(user string, mech ScramMechanism, fill byte) ScramCredential {
	n := mech.KeyBytes()
	return ScramCredential{User: user, Mechanism: mech, Iterations: 4096, Salt: []byte("salt-" + user),
		StoredKey: bytes.Repeat([]byte{fill}, n), ServerKey: bytes.Repeat([]byte{fill + 1}, n)}
}

func TestAlterScramCredentials(t *testing.T) {
	h := newHarness(t)
	r := h.must(AlterScramCredentials{Upserts: []ScramCredential{cred("alice", ScramSHA256, 1), cred("alice", ScramSHA512, 2), cred("bob", ScramSHA256, 3)}})
	if want := []UserCode{{"alice", 0}, {"bob", 0}}; !reflect.DeepEqual(r.Users, want) {
		t.Fatalf("codes %+v, want %+v", r.Users, want)
	}
	v := h.m.View()
	if c, ok := v.ScramCredential("alice", ScramSHA512); !ok || !reflect.DeepEqual(c, cred("alice", ScramSHA512, 2)) {
		t.Fatalf("alice/512: %+v %v", c, ok)
	}
	if _, ok := v.ScramCredential("bob", ScramSHA512); ok {
		t.Fatal("bob has no SHA-512 credential")
	}
	// Per user: a bad upsert or a missing deletion fails that user alone.
	bad := cred("carol", ScramSHA256, 4)
	bad.Iterations = 10
	r = h.apply(AlterScramCredentials{
		Upserts:   []ScramCredential{bad, cred("bob", ScramSHA256, 9)},
		Deletions: []ScramDeletion{{"alice", ScramSHA256}, {"dave", ScramSHA512}},
	})
	want := []UserCode{{"carol", kerr.UnacceptableCredential.Code}, {"bob", 0}, {"alice", 0}, {"dave", kerr.ResourceNotFound.Code}}
	if !reflect.DeepEqual(r.Users, want) {
		t.Fatalf("codes %+v, want %+v", r.Users, want)
	}
	v = h.m.View()
	if c, _ := v.ScramCredential("bob", ScramSHA256); c.StoredKey[0] != 9 {
		t.Fatal("bob's credential not replaced")
	}
	if _, ok := v.ScramCredential("alice", ScramSHA256); ok {
		t.Fatal("alice's SHA-256 credential not deleted")
	}
	if _, ok := v.ScramCredential("carol", ScramSHA256); ok {
		t.Fatal("an unacceptable credential was stored")
	}
	// A user whose upsert is fine but whose deletion fails changes nothing.
	r = h.apply(AlterScramCredentials{Upserts: []ScramCredential{cred("erin", ScramSHA256, 5)}, Deletions: []ScramDeletion{{"erin", ScramSHA512}}})
	if r.Users[0].Code != kerr.ResourceNotFound.Code {
		t.Fatalf("erin: %+v", r.Users)
	}
	if _, ok := h.m.View().ScramCredential("erin", ScramSHA256); ok {
		t.Fatal("erin's upsert applied although her deletion failed")
	}

	// Snapshots carry the credentials; equal states give equal bytes.
	rs, snap := h.restored()
	if !reflect.DeepEqual(rs.View().Scram, h.m.View().Scram) {
		t.Fatalf("restored %+v\nwant %+v", rs.View().Scram, h.m.View().Scram)
	}
	var again bytes.Buffer
	if err := rs.SaveSnapshot(&again, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, again.Bytes()) {
		t.Fatal("a restored state's snapshot differs")
	}
	// Deleting the last credentials leaves the state as a fresh one.
	h.must(AlterScramCredentials{Deletions: []ScramDeletion{{"alice", ScramSHA512}, {"bob", ScramSHA256}}})
	if h.m.View().Scram != nil {
		t.Fatalf("credentials left: %+v", h.m.View().Scram)
	}
}

// A version 4 snapshot (no credentials section) still restores, with none.
func TestSnapshotV4Compatible(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	var buf bytes.Buffer
	if err := h.m.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	v5 := buf.Bytes()
	body := bytes.Clone(v5[:len(v5)-10]) // drop the empty credentials, ACLs, transactions, group states and group shards and the CRC
	if v5[len(v5)-5] != 0 || v5[len(v5)-6] != 0 || v5[len(v5)-7] != 0 || v5[len(v5)-8] != 0 || v5[len(v5)-9] != 0 {
		t.Fatal("unexpected v5 layout")
	}
	body[len(snapshotMagic)] = snapshotVersionNoScram
	v4 := (&enc{b: body}).u32fixedAppend(crc32.Checksum(body, crcTable))
	r := New(slog.New(slog.DiscardHandler))
	if err := r.RecoverFromSnapshot(bytes.NewReader(v4), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normView(r.View()), normView(h.m.View())) {
		t.Fatalf("v4 restore differs")
	}
}

func TestAlterScramCredentialsCodec(t *testing.T) {
	c := AlterScramCredentials{Upserts: []ScramCredential{cred("u", ScramSHA512, 7)}, Deletions: []ScramDeletion{{"v", ScramSHA256}}}
	got, err := Decode(Encode(c))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("round trip %+v, want %+v", got, c)
	}
	b := Encode(c)
	for i := range b {
		if _, err := Decode(b[:i]); err == nil {
			t.Fatalf("a %d-byte prefix decoded", i)
		}
	}
}
