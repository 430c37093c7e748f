package meta

import (
	"bytes"
	"hash/crc32"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestAlterBrokerConfigs(t *testing.T) {
	h := newHarness(t)
	h.must(broker(1))
	for _, tc := range []struct {
		name string
		ops  []ConfigOp
		code int16
		msg  string
	}{
		{"unknown key", []ConfigOp{{Key: "log.flush.interval.ms", Value: "1"}}, kerr.InvalidConfig.Code, "log.flush.interval.ms"},
		{"static key", []ConfigOp{{Key: "num.partitions", Value: "3"}}, kerr.InvalidConfig.Code, "dynamically"},
		{"offsets retention is static", []ConfigOp{{Key: "offsets.retention.minutes", Value: "60"}}, kerr.InvalidConfig.Code, "dynamically"},
		{"offsets check interval is static", []ConfigOp{{Key: "offsets.retention.check.interval.ms", Value: "1000"}}, kerr.InvalidConfig.Code, "dynamically"},
		{"bad value", []ConfigOp{{Key: "log.retention.ms", Value: "soon"}}, kerr.InvalidConfig.Code, "log.retention.ms"},
		{"segment below minimum", []ConfigOp{{Key: "log.segment.bytes", Value: "1024"}}, kerr.InvalidConfig.Code, "at least 1048576"},
		{"twice", []ConfigOp{{Key: "log.retention.ms", Value: "1"}, {Key: "log.retention.ms", Op: ConfigDelete}}, kerr.InvalidRequest.Code, "twice"},
		{"one bad op fails all", []ConfigOp{{Key: "log.retention.ms", Value: "1000"}, {Key: "message.max.bytes", Value: "-5"}}, kerr.InvalidConfig.Code, "message.max.bytes"},
	} {
		r := h.apply(AlterBrokerConfigs{Ops: tc.ops})
		if r.Code != tc.code || !strings.Contains(r.Message, tc.msg) {
			t.Errorf("%s: code %d %q, want %d containing %q", tc.name, r.Code, r.Message, tc.code, tc.msg)
		}
	}
	if got := h.m.View().BrokerConfigs; got != nil {
		t.Fatalf("failed ops changed the configs: %+v", got)
	}
	h.must(AlterBrokerConfigs{Ops: []ConfigOp{{Key: "message.max.bytes", Value: "2000000"}, {Key: "log.retention.ms", Value: "60000"}}})
	h.must(AlterBrokerConfigs{Ops: []ConfigOp{{Key: "message.max.bytes", Op: ConfigDelete}, {Key: "log.roll.ms", Value: "1000"}}})
	v := h.m.View()
	want := []ConfigEntry{{"log.retention.ms", "60000"}, {"log.roll.ms", "1000"}}
	if !reflect.DeepEqual(v.BrokerConfigs, want) {
		t.Fatalf("configs %+v, want %+v", v.BrokerConfigs, want)
	}
	if x, ok := v.BrokerConfig("log.retention.ms"); !ok || x != "60000" {
		t.Fatalf("BrokerConfig = %q %v", x, ok)
	}
	if _, ok := v.BrokerConfig("message.max.bytes"); ok {
		t.Fatal("deleted key still set")
	}
	// A snapshot carries them.
	if r, _ := h.restored(); !reflect.DeepEqual(r.View().BrokerConfigs, want) {
		t.Fatalf("restored configs %+v", r.View().BrokerConfigs)
	}
}

// A version 3 snapshot (no broker configs section) still restores, with no
// dynamic broker config.
func TestSnapshotV3Compatible(t *testing.T) {
	h := newHarness(t)
	for _, c := range withBrokers(3) {
		h.must(c)
	}
	h.must(CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: 3})
	var buf bytes.Buffer
	if err := h.m.SaveSnapshot(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	v5 := buf.Bytes()
	body := bytes.Clone(v5[:len(v5)-11]) // drop the empty broker configs, credentials, ACLs, transactions, group states and group shards and the CRC
	if v5[len(v5)-5] != 0 || v5[len(v5)-6] != 0 || v5[len(v5)-7] != 0 || v5[len(v5)-8] != 0 || v5[len(v5)-9] != 0 || v5[len(v5)-10] != 0 {
		t.Fatal("unexpected v5 layout")
	}
	body[len(snapshotMagic)] = snapshotVersionNoBrokerConfigs
	v3 := (&enc{b: body}).u32fixedAppend(crc32.Checksum(body, crcTable))
	r := New(slog.New(slog.DiscardHandler))
	if err := r.RecoverFromSnapshot(bytes.NewReader(v3), nil, nil); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normView(r.View()), normView(h.m.View())) {
		t.Fatalf("v3 restore differs:\n got %s\nwant %s", dumpView(r.View()), dumpView(h.m.View()))
	}
}
