package meta

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"pgregory.net/rapid"
)

// Generators produce commands within the codec limits, with nil (never
// empty) slices so that a decoded command compares equal.

func genStr(maxLen int) *rapid.Generator[string] {
	return rapid.StringOfN(rapid.RuneFrom(nil, &unicodeAny), 0, maxLen/4, maxLen)
}

// unicodeAny is the rune table genStr draws from: ASCII plus a few
// multi-byte runes, so that byte lengths and rune counts differ.
var unicodeAny = unicode.RangeTable{R16: []unicode.Range16{
	{Lo: 0x20, Hi: 0x7e, Stride: 1}, {Lo: 0xe9, Hi: 0xe9, Stride: 1}, {Lo: 0x4e16, Hi: 0x4e16, Stride: 1},
}}

func genSlice[T any](g *rapid.Generator[T], maxLen int) *rapid.Generator[[]T] {
	return rapid.Custom(func(t *rapid.T) []T {
		n := rapid.IntRange(0, maxLen).Draw(t, "n")
		var out []T
		for i := 0; i < n; i++ {
			out = append(out, g.Draw(t, "elem"))
		}
		return out
	})
}

func genCommand() *rapid.Generator[Command] {
	str := func(n int) *rapid.Generator[string] { return genStr(n) }
	i32 := rapid.Int32()
	cfg := rapid.Custom(func(t *rapid.T) ConfigEntry {
		return ConfigEntry{Key: str(ConfigKeyLenMax).Draw(t, "k"), Value: str(ConfigValueLenMax).Draw(t, "v")}
	})
	op := rapid.Custom(func(t *rapid.T) ConfigOp {
		return ConfigOp{Key: str(ConfigKeyLenMax).Draw(t, "k"), Op: ConfigOpType(rapid.IntRange(0, 1).Draw(t, "op")),
			Value: str(ConfigValueLenMax).Draw(t, "v")}
	})
	oc := rapid.Custom(func(t *rapid.T) OffsetCommit {
		return OffsetCommit{Topic: str(TopicNameLenMax).Draw(t, "t"), Partition: i32.Draw(t, "p"),
			Offset: rapid.Int64().Draw(t, "o"), LeaderEpoch: i32.Draw(t, "e"), Metadata: str(64).Draw(t, "m")}
	})
	tp := rapid.Custom(func(t *rapid.T) TopicPartition {
		return TopicPartition{Topic: str(TopicNameLenMax).Draw(t, "t"), Partition: i32.Draw(t, "p")}
	})
	return rapid.OneOf(
		rapid.Custom(func(t *rapid.T) Command {
			return RegisterBroker{NodeID: i32.Draw(t, "id"), Host: str(HostLenMax).Draw(t, "h"), Port: i32.Draw(t, "port"),
				Rack: str(RackLenMax).Draw(t, "r"), RaftAddr: str(RaftAddrLenMax).Draw(t, "ra")}
		}),
		rapid.Custom(func(t *rapid.T) Command { return UnregisterBroker{NodeID: i32.Draw(t, "id")} }),
		rapid.Custom(func(t *rapid.T) Command {
			return CreateTopic{Name: str(TopicNameLenMax).Draw(t, "n"), Partitions: i32.Draw(t, "p"),
				ReplicationFactor: rapid.Int16().Draw(t, "rf"), Configs: genSlice(cfg, 5).Draw(t, "c")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			var id TopicID
			copy(id[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "id"))
			return DeleteTopic{Name: str(TopicNameLenMax).Draw(t, "n"), ID: id}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return CreatePartitions{Topic: str(TopicNameLenMax).Draw(t, "n"), Count: i32.Draw(t, "c")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return AlterConfigs{Topic: str(TopicNameLenMax).Draw(t, "n"), Ops: genSlice(op, 5).Draw(t, "ops")}
		}),
		rapid.Custom(func(t *rapid.T) Command { return AllocateProducerIDs{Count: i32.Draw(t, "c")} }),
		rapid.Custom(func(t *rapid.T) Command {
			return CommitOffsets{Group: str(GroupIDLenMax).Draw(t, "g"), CommitTimestampMs: rapid.Int64().Draw(t, "ts"),
				Offsets: genSlice(oc, 5).Draw(t, "o")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return DeleteGroups{Groups: genSlice(str(GroupIDLenMax), 5).Draw(t, "g")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return DeleteOffsets{Group: str(GroupIDLenMax).Draw(t, "g"), Partitions: genSlice(tp, 5).Draw(t, "p")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return SetPartitionLeader{ShardID: rapid.Uint64().Draw(t, "s"), Leader: i32.Draw(t, "l"), Term: rapid.Uint64().Draw(t, "term")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return ReassignPartition{ShardID: rapid.Uint64().Draw(t, "s"), Target: genSlice(i32, ReplicationFactorMax).Draw(t, "target")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return ReplicaCaughtUp{ShardID: rapid.Uint64().Draw(t, "s"), Node: i32.Draw(t, "n")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return CompleteReassignment{ShardID: rapid.Uint64().Draw(t, "s"), Target: genSlice(i32, ReplicationFactorMax).Draw(t, "target")}
		}),
		rapid.Custom(func(t *rapid.T) Command { return AlterBrokerConfigs{Ops: genSlice(op, 5).Draw(t, "ops")} }),
		rapid.Custom(func(t *rapid.T) Command {
			return ExpireOffsets{Group: str(GroupIDLenMax).Draw(t, "g"), CutoffMs: rapid.Int64().Draw(t, "cutoff")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return InitTxnProducer{TxnID: str(TxnIDLenMax).Draw(t, "id"), TimeoutMs: i32.Draw(t, "to"), NowMs: rapid.Int64().Draw(t, "now"),
				ExpectedProducerID: rapid.Int64().Draw(t, "pid"), ExpectedEpoch: rapid.Int16().Draw(t, "e")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return AddTxnPartitions{TxnID: str(TxnIDLenMax).Draw(t, "id"), ProducerID: rapid.Int64().Draw(t, "pid"), Epoch: rapid.Int16().Draw(t, "e"),
				NowMs: rapid.Int64().Draw(t, "now"), Partitions: genSlice(tp, 5).Draw(t, "tps")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return AddTxnGroup{TxnID: str(TxnIDLenMax).Draw(t, "id"), ProducerID: rapid.Int64().Draw(t, "pid"), Epoch: rapid.Int16().Draw(t, "e"),
				NowMs: rapid.Int64().Draw(t, "now"), Group: str(GroupIDLenMax).Draw(t, "g")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return TxnCommitOffsets{TxnID: str(TxnIDLenMax).Draw(t, "id"), ProducerID: rapid.Int64().Draw(t, "pid"), Epoch: rapid.Int16().Draw(t, "e"),
				Group: str(GroupIDLenMax).Draw(t, "g"), Offsets: genSlice(oc, 5).Draw(t, "o")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return EndTxn{TxnID: str(TxnIDLenMax).Draw(t, "id"), ProducerID: rapid.Int64().Draw(t, "pid"), Epoch: rapid.Int16().Draw(t, "e"),
				Commit: rapid.Bool().Draw(t, "c"), NowMs: rapid.Int64().Draw(t, "now"), Bump: rapid.Bool().Draw(t, "bump")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return TxnMarkersWritten{TxnID: str(TxnIDLenMax).Draw(t, "id"), ProducerID: rapid.Int64().Draw(t, "pid"), Epoch: rapid.Int16().Draw(t, "e"),
				NowMs: rapid.Int64().Draw(t, "now"), Partitions: genSlice(tp, 5).Draw(t, "tps")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return ExpireTxn{TxnID: str(TxnIDLenMax).Draw(t, "id"), CutoffMs: rapid.Int64().Draw(t, "cutoff")}
		}),
		rapid.Custom(func(t *rapid.T) Command {
			return AbortTxn{TxnID: str(TxnIDLenMax).Draw(t, "id"), ProducerID: rapid.Int64().Draw(t, "pid"), Epoch: rapid.Int16().Draw(t, "e"),
				NowMs: rapid.Int64().Draw(t, "now")}
		}),
	)
}

func TestCommandRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cmd := genCommand().Draw(t, "cmd")
		b := Encode(cmd)
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %#v: %v", cmd, err)
		}
		if !reflect.DeepEqual(got, cmd) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, cmd)
		}
		// Every strict prefix is rejected, never a panic.
		for i := 0; i < len(b); i++ {
			if _, err := Decode(b[:i]); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("prefix %d of %d: err %v", i, len(b), err)
			}
		}
	})
}

func TestDecodeRejects(t *testing.T) {
	valid := Encode(CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: -1})
	long := func(n int) string { return strings.Repeat("a", n) }
	manyGroups := DeleteGroups{}
	for i := 0; i <= DeleteGroupsMax; i++ {
		manyGroups.Groups = append(manyGroups.Groups, "g")
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version only", []byte{CommandVersion}},
		{"bad version", append([]byte{9}, valid[1:]...)},
		{"unknown kind", []byte{CommandVersion, 200}},
		{"kind zero", []byte{CommandVersion, 0}},
		{"trailing byte", append(bytes.Clone(valid), 0)},
		{"truncated", valid[:len(valid)-1]},
		{"topic name too long", Encode(CreateTopic{Name: long(TopicNameLenMax + 1)})},
		{"host too long", Encode(RegisterBroker{Host: long(HostLenMax + 1)})},
		{"metadata too long", Encode(CommitOffsets{Group: "g", Offsets: []OffsetCommit{{Metadata: long(OffsetMetadataLenMax + 1)}}})},
		{"too many groups", Encode(manyGroups)},
		{"bad config op", Encode(AlterConfigs{Topic: "t", Ops: []ConfigOp{{Key: "k", Op: 7}}})},
		{"int32 overflow", append([]byte{CommandVersion, byte(KindUnregisterBroker)}, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01)},
		{"int16 overflow", rfOverflow()},
		{"huge count", []byte{CommandVersion, byte(KindDeleteGroups), 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad uvarint", []byte{CommandVersion, byte(KindDeleteGroups), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"too large", make([]byte, CommandBytesMax+1)},
		{"too many target replicas", Encode(ReassignPartition{ShardID: 1000, Target: make([]int32, ReplicationFactorMax+1)})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if cmd, err := Decode(c.b); !errors.Is(err, ErrBadCommand) {
				t.Fatalf("Decode = %#v, %v; want ErrBadCommand", cmd, err)
			}
		})
	}
}

func TestResultRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := Result{
			Code:        rapid.Int16().Draw(t, "code"),
			Message:     genStr(ResultMessageLenMax).Draw(t, "msg"),
			ProducerIDs: ProducerIDBlock{First: rapid.Int64().Draw(t, "first"), Count: rapid.Int32().Draw(t, "count")},
			Partitions: genSlice(rapid.Custom(func(t *rapid.T) PartitionCode {
				return PartitionCode{Topic: genStr(20).Draw(t, "t"), Partition: rapid.Int32().Draw(t, "p"), Code: rapid.Int16().Draw(t, "c")}
			}), 4).Draw(t, "parts"),
			Groups: genSlice(rapid.Custom(func(t *rapid.T) GroupCode {
				return GroupCode{Group: genStr(20).Draw(t, "g"), Code: rapid.Int16().Draw(t, "c")}
			}), 4).Draw(t, "groups"),
		}
		if rapid.Bool().Draw(t, "topic") {
			r.Topic = &Topic{Name: "t", ID: TopicID{1}, Partitions: []Partition{{Index: 0, ShardID: 1000, Replicas: []int32{1, 2}}},
				Configs: []ConfigEntry{{Key: "retention.ms", Value: "1"}}}
		}
		packed := r.Pack()
		if packed.Value != uint64(uint16(r.Code)) {
			t.Fatalf("Value %d for code %d", packed.Value, r.Code)
		}
		got, err := DecodeResult(packed)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, r)
		}
		packed.Value++
		if _, err := DecodeResult(packed); !errors.Is(err, ErrBadResult) {
			t.Fatalf("mismatched Value accepted: %v", err)
		}
	})
}

// rfOverflow is a CreateTopic whose replication factor does not fit int16.
func rfOverflow() []byte {
	e := &enc{}
	e.u8(CommandVersion)
	e.u8(byte(KindCreateTopic))
	e.str("t")
	e.svar(1)
	e.svar(1 << 15)
	e.uvar(0)
	return e.b
}
