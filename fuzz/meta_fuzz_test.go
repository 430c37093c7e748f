package fuzz

import (
	"bytes"
	"errors"
	"log/slog"
	"reflect"
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/core/meta"
)

// metaSeeds are valid encodings of every command kind plus a few broken
// inputs.
func metaSeeds() [][]byte {
	cmds := []meta.Command{
		meta.RegisterBroker{NodeID: 1, Host: "h", Port: 9092, Rack: "r", RaftAddr: "h:7000"},
		meta.UnregisterBroker{NodeID: 1},
		meta.CreateTopic{Name: "t", Partitions: 3, ReplicationFactor: -1, Configs: []meta.ConfigEntry{{Key: "retention.ms", Value: "1000"}}},
		meta.DeleteTopic{Name: "t"},
		meta.DeleteTopic{ID: meta.TopicID{1, 2, 3}},
		meta.CreatePartitions{Topic: "t", Count: 4},
		meta.AlterConfigs{Topic: "t", Ops: []meta.ConfigOp{{Key: "segment.ms", Value: "10"}, {Key: "retention.ms", Op: meta.ConfigDelete}}},
		meta.AllocateProducerIDs{Count: 10},
		meta.CommitOffsets{Group: "g", CommitTimestampMs: 1, Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: 5, LeaderEpoch: 1, Metadata: "m"}}},
		meta.DeleteGroups{Groups: []string{"g", "h"}},
		meta.DeleteOffsets{Group: "g", Partitions: []meta.TopicPartition{{Topic: "t", Partition: 0}}},
		meta.AlterBrokerConfigs{Ops: []meta.ConfigOp{{Key: "log.retention.ms", Value: "1000"}, {Key: "message.max.bytes", Op: meta.ConfigDelete}}},
		meta.AlterScramCredentials{Upserts: []meta.ScramCredential{{User: "u", Mechanism: meta.ScramSHA256, Iterations: 4096,
			Salt: []byte("s"), StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}}},
		meta.CreateACLs{ACLs: []meta.ACL{{ResourceType: 2, ResourceName: "t", PatternType: 3, Principal: "User:a", Host: "*", Operation: 3, Permission: 3}}},
		meta.DeleteACLs{ACLs: []meta.ACL{{ResourceType: 2, ResourceName: "t", PatternType: 3, Principal: "User:a", Host: "*", Operation: 3, Permission: 3}}},
		meta.AlterScramCredentials{Deletions: []meta.ScramDeletion{{User: "u", Mechanism: meta.ScramSHA256}, {User: "v", Mechanism: meta.ScramSHA512}}},
		meta.ExpireOffsets{Group: "g", CutoffMs: 2},
		meta.InitTxnProducer{TxnID: "x", TimeoutMs: 60000, NowMs: 5, ExpectedProducerID: -1, ExpectedEpoch: -1},
		meta.AddTxnPartitions{TxnID: "x", ProducerID: 0, Epoch: 0, NowMs: 6, Partitions: []meta.TopicPartition{{Topic: "t", Partition: 0}}},
		meta.AddTxnGroup{TxnID: "x", ProducerID: 0, Epoch: 0, NowMs: 7, Group: "g"},
		meta.TxnCommitOffsets{TxnID: "x", ProducerID: 0, Epoch: 0, Group: "g", Offsets: []meta.OffsetCommit{{Topic: "t", Partition: 0, Offset: 9, LeaderEpoch: -1}}},
		meta.EndTxn{TxnID: "x", ProducerID: 0, Epoch: 0, Commit: true, NowMs: 8},
		meta.TxnMarkersWritten{TxnID: "x", ProducerID: 0, Epoch: 0, NowMs: 9, Partitions: []meta.TopicPartition{{Topic: "t", Partition: 0}}},
		meta.AbortTxn{TxnID: "x", ProducerID: 0, Epoch: 0, NowMs: 10},
		meta.ExpireTxn{TxnID: "x", CutoffMs: 11},
		meta.CreateGroupShards{Count: 3},
		meta.SetPartitionLeader{ShardID: meta.FirstGroupShardID + 1, Leader: 1, Term: 2},
		meta.TxnGroupMarkersWritten{TxnID: "x", ProducerID: 0, Epoch: 0, NowMs: 12, Groups: []string{"g"}},
		meta.CommitTxnOffsets{ProducerID: 0, Decision: 7, CommitTimestampMs: 3, Offsets: []meta.TxnOffset{{Group: "g", OffsetCommit: meta.OffsetCommit{Topic: "t", Offset: 4}}}},
		meta.ImportOffsets{Group: "g", Offsets: []meta.GroupOffset{{Topic: "t", OffsetValue: meta.OffsetValue{Offset: 2, CommitTimestampMs: 1}}}},
		meta.ImportGroupState{State: meta.GroupState{Group: "g", Term: 1, Seq: 2, Data: []byte("d")}},
		meta.FinishImport{},
		meta.DeleteTopicOffsets{Topic: "t"},
	}
	var seeds [][]byte
	for _, c := range cmds {
		seeds = append(seeds, meta.Encode(c))
	}
	return append(seeds, nil, []byte{1}, []byte{1, 99}, []byte{2, 1, 0}, []byte{1, 9, 0xff, 0xff, 0xff, 0xff, 0x0f})
}

func FuzzDecodeCommand(f *testing.F) {
	for _, s := range metaSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := meta.Decode(b)
		if err != nil {
			if !errors.Is(err, meta.ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		again, err := meta.Decode(meta.Encode(cmd))
		if err != nil {
			t.Fatalf("re-encoded %#v does not decode: %v", cmd, err)
		}
		if !reflect.DeepEqual(again, cmd) {
			t.Fatalf("re-decode differs:\n got %#v\nwant %#v", again, cmd)
		}
	})
}

// FuzzApply splits the input into entries (a length byte before each) and
// feeds them, after a fixed setup, through Update on two state machines: it
// must never panic or return an error, every result must decode, both must
// agree, the invariants must hold, and a snapshot must restore to a machine
// that saves the same bytes.
func FuzzApply(f *testing.F) {
	seeds := metaSeeds()
	for _, s := range seeds {
		f.Add(append([]byte{byte(len(s))}, s...))
	}
	var all []byte
	for _, s := range seeds {
		all = append(all, byte(len(s)))
		all = append(all, s...)
	}
	f.Add(all)
	f.Fuzz(func(t *testing.T, b []byte) {
		log := slog.New(slog.DiscardHandler)
		m, twin := meta.New(log), meta.New(log)
		index := uint64(0)
		update := func(cmd []byte) {
			index++
			res, err := m.Update(sm.Entry{Index: index, Cmd: cmd})
			if err != nil {
				t.Fatalf("Update error: %v", err)
			}
			if _, err := meta.DecodeResult(res); err != nil {
				t.Fatalf("result does not decode: %v", err)
			}
			res2, err := twin.Update(sm.Entry{Index: index, Cmd: cmd})
			if err != nil || !reflect.DeepEqual(res, res2) {
				t.Fatalf("twin result differs: %v", err)
			}
		}
		for i := int32(1); i <= 3; i++ {
			update(meta.Encode(meta.RegisterBroker{NodeID: i, Host: "h", Port: 9092}))
		}
		update(meta.Encode(meta.CreateTopic{Name: "t", Partitions: 2, ReplicationFactor: -1}))
		for len(b) > 0 {
			n := min(int(b[0]), len(b)-1)
			update(b[1 : 1+n])
			b = b[1+n:]
		}
		if m.Version() != index {
			t.Fatalf("version %d after %d entries", m.Version(), index)
		}
		if err := m.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
		var snap, snapTwin, again bytes.Buffer
		if err := m.SaveSnapshot(&snap, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := twin.SaveSnapshot(&snapTwin, nil, nil); err != nil || !bytes.Equal(snap.Bytes(), snapTwin.Bytes()) {
			t.Fatalf("twin snapshots differ (err %v)", err)
		}
		restored := meta.New(log)
		if err := restored.RecoverFromSnapshot(bytes.NewReader(snap.Bytes()), nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := restored.SaveSnapshot(&again, nil, nil); err != nil || !bytes.Equal(again.Bytes(), snap.Bytes()) {
			t.Fatalf("restored snapshot differs (err %v)", err)
		}
	})
}
