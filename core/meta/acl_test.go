package meta

import (
	"bytes"
	"hash/crc32"
	"log/slog"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func acl(name string, op int8) ACL {
	return ACL{ResourceType: 2, ResourceName: name, PatternType: 3, Principal: "User:a", Host: "*", Operation: op, Permission: 3}
}

func TestACLs(t *testing.T) {
	h := newHarness(t)
	h.must(CreateACLs{ACLs: []ACL{acl("t", 3), acl("a", 4), acl("t", 3)}})
	if want := []ACL{acl("a", 4), acl("t", 3)}; !reflect.DeepEqual(h.m.View().ACLs, want) {
		t.Fatalf("ACLs %+v, want %+v (sorted, unique)", h.m.View().ACLs, want)
	}
	bad := acl("x", 3)
	bad.Permission = 1
	if r := h.apply(CreateACLs{ACLs: []ACL{acl("y", 3), bad}}); r.Code != kerr.InvalidRequest.Code {
		t.Fatalf("bad ACL: %+v", r)
	}
	if len(h.m.View().ACLs) != 2 {
		t.Fatal("a refused command changed the ACLs")
	}
	if r, _ := h.restored(); !reflect.DeepEqual(r.View().ACLs, h.m.View().ACLs) {
		t.Fatalf("restored %+v", r.View().ACLs)
	}
	h.must(DeleteACLs{ACLs: []ACL{acl("t", 3), acl("absent", 3)}})
	if want := []ACL{acl("a", 4)}; !reflect.DeepEqual(h.m.View().ACLs, want) {
		t.Fatalf("after delete %+v", h.m.View().ACLs)
	}
	h.must(DeleteACLs{ACLs: []ACL{acl("a", 4)}})
	if h.m.View().ACLs != nil {
		t.Fatal("ACLs left")
	}
	got, err := Decode(Encode(CreateACLs{ACLs: []ACL{acl("t", 3)}}))
	if err != nil || !reflect.DeepEqual(got, CreateACLs{ACLs: []ACL{acl("t", 3)}}) {
		t.Fatalf("round trip %+v %v", got, err)
	}
}

// A version 5 snapshot (no ACL section) still restores, with none.
func TestSnapshotV5Compatible(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	var buf bytes.Buffer
	if err := h.m.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	v6 := buf.Bytes()
	body := bytes.Clone(v6[:len(v6)-9]) // drop the empty ACL, transaction and group state and group shard sections and the CRC
	if v6[len(v6)-5] != 0 || v6[len(v6)-6] != 0 || v6[len(v6)-7] != 0 || v6[len(v6)-8] != 0 {
		t.Fatal("unexpected v6 layout")
	}
	body[len(snapshotMagic)] = snapshotVersionNoACLs
	v5 := (&enc{b: body}).u32fixedAppend(crc32.Checksum(body, crcTable))
	r := New(slog.New(slog.DiscardHandler))
	if err := r.RecoverFromSnapshot(bytes.NewReader(v5), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normView(r.View()), normView(h.m.View())) {
		t.Fatal("v5 restore differs")
	}
}
