package netio

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"reflect"
	"testing"
	"testing/synctest"

	"github.com/lni/dragonboat/v4/config"
	pb "github.com/lni/dragonboat/v4/raftpb"
)

// transportEnv gives a transport test two Networks and listen addresses.
type transportEnv struct {
	name string
	run  func(t *testing.T, f func(t *testing.T, a, b Network, addrA, addrB string))
}

func transportEnvs() []transportEnv {
	return []transportEnv{
		{"OS", func(t *testing.T, f func(*testing.T, Network, Network, string, string)) {
			f(t, NewOS(), NewOS(), "127.0.0.1:0", "127.0.0.1:0")
		}},
		{"Sim", func(t *testing.T, f func(*testing.T, Network, Network, string, string)) {
			synctest.Test(t, func(t *testing.T) {
				s := NewSim(3)
				s.SetLink("a", "b", LinkRule{Delay: 5e6, Jitter: 5e6})
				f(t, s.Host("a"), s.Host("b"), "a:7000", "b:7000")
			})
		}},
	}
}

type received struct {
	batches chan pb.MessageBatch
	chunks  chan pb.Chunk
}

func startTransport(t *testing.T, n Network, addr string, accept bool) (*transport, *received) {
	t.Helper()
	r := &received{batches: make(chan pb.MessageBatch, 16), chunks: make(chan pb.Chunk, 16)}
	f := NewTransportFactory(n)
	tr := f.Create(config.NodeHostConfig{RaftAddress: addr},
		func(b pb.MessageBatch) { r.batches <- b },
		func(c pb.Chunk) bool { r.chunks <- c; return accept }).(*transport)
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	return tr, r
}

func sampleBatch() pb.MessageBatch {
	return pb.MessageBatch{
		DeploymentId:  7,
		SourceAddress: "a:7000",
		BinVer:        210,
		Requests: []pb.Message{{
			Type: pb.Replicate, To: 2, From: 1, ShardID: 9, Term: 3, LogTerm: 3, LogIndex: 10, Commit: 9,
			Entries: []pb.Entry{{Term: 3, Index: 11, Cmd: []byte("produce")}, {Term: 3, Index: 12, Cmd: make([]byte, 100_000)}},
		}, {Type: pb.Heartbeat, To: 3, From: 1, ShardID: 9, Term: 3}},
	}
}

func TestTransportDelivers(t *testing.T) {
	for _, env := range transportEnvs() {
		t.Run(env.name, func(t *testing.T) {
			env.run(t, func(t *testing.T, a, b Network, addrA, addrB string) {
				ta, _ := startTransport(t, a, addrA, true)
				defer ta.Close()
				tb, rb := startTransport(t, b, addrB, true)
				defer tb.Close()

				conn, err := ta.GetConnection(context.Background(), tb.addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				want := sampleBatch()
				for range 3 {
					if err := conn.SendMessageBatch(want); err != nil {
						t.Fatal(err)
					}
				}
				for range 3 {
					if got := <-rb.batches; !reflect.DeepEqual(got, want) {
						t.Fatalf("received batch differs:\n got %+v\nwant %+v", got, want)
					}
				}

				sc, err := ta.GetSnapshotConnection(context.Background(), tb.addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer sc.Close()
				chunk := pb.Chunk{ShardID: 9, ReplicaID: 2, From: 1, Index: 100, Term: 3, ChunkId: 0, ChunkCount: 1, Data: []byte("snapshot bytes")}
				if err := sc.SendChunk(chunk); err != nil {
					t.Fatal(err)
				}
				if got := <-rb.chunks; !reflect.DeepEqual(got, chunk) {
					t.Fatalf("received chunk differs:\n got %+v\nwant %+v", got, chunk)
				}
			})
		})
	}
}

// frame builds a raw frame with the given header fields.
func rawFrame(magic uint32, kind uint16, length uint32, crc uint32, payload []byte) []byte {
	b := make([]byte, frameHeaderBytes, frameHeaderBytes+len(payload))
	binary.BigEndian.PutUint32(b[0:], magic)
	binary.BigEndian.PutUint16(b[4:], kind)
	binary.BigEndian.PutUint32(b[8:], length)
	binary.BigEndian.PutUint32(b[12:], crc)
	return append(b, payload...)
}

func TestTransportBadFramesCloseConnection(t *testing.T) {
	garbage := []byte{0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07}
	crcOf := func(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
	cases := []struct {
		name  string
		frame []byte
	}{
		{"garbage", append(garbage, garbage...)},
		{"bad magic", rawFrame(0xdeadbeef, frameKindBatch, 8, crcOf(garbage), garbage)},
		{"bad kind", rawFrame(frameMagic, 99, 8, crcOf(garbage), garbage)},
		{"empty", rawFrame(frameMagic, frameKindBatch, 0, 0, nil)},
		{"too large", rawFrame(frameMagic, frameKindBatch, framePayloadBytesMax+1, 0, nil)},
		{"bad crc", rawFrame(frameMagic, frameKindBatch, 8, crcOf(garbage)+1, garbage)},
		{"undecodable batch", rawFrame(frameMagic, frameKindBatch, 8, crcOf(garbage), garbage)},
		{"undecodable chunk", rawFrame(frameMagic, frameKindChunk, 8, crcOf(garbage), garbage)},
	}
	for _, env := range transportEnvs() {
		t.Run(env.name, func(t *testing.T) {
			env.run(t, func(t *testing.T, a, b Network, addrA, addrB string) {
				tb, rb := startTransport(t, b, addrB, true)
				defer tb.Close()
				for _, c := range cases {
					conn, err := a.Dial(context.Background(), tb.addr().String())
					if err != nil {
						t.Fatal(err)
					}
					if _, err := conn.Write(c.frame); err != nil {
						t.Fatalf("%s: write: %v", c.name, err)
					}
					// The transport closes the connection: we read EOF
					// (or a reset, if it closed with our bytes unread).
					_, err = conn.Read(make([]byte, 1))
					if err == nil {
						t.Fatalf("%s: connection still open", c.name)
					}
					conn.Close()
				}
				// The transport still works after all that.
				ta, _ := startTransport(t, a, addrA, true)
				defer ta.Close()
				good, err := ta.GetConnection(context.Background(), tb.addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer good.Close()
				if err := good.SendMessageBatch(sampleBatch()); err != nil {
					t.Fatal(err)
				}
				<-rb.batches
				if len(rb.batches) != 0 {
					t.Fatal("a bad frame was delivered")
				}
			})
		})
	}
}

func TestTransportChunkRejectedClosesConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(1)
		tb, rb := startTransport(t, s.Host("b"), "b:1", false)
		defer tb.Close()
		ta, _ := startTransport(t, s.Host("a"), "a:1", true)
		defer ta.Close()
		sc, err := ta.GetSnapshotConnection(context.Background(), "b:1")
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		if err := sc.SendChunk(pb.Chunk{ShardID: 1, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		<-rb.chunks
		synctest.Wait() // the server has closed its end
		if err := sc.SendChunk(pb.Chunk{ShardID: 1, Data: []byte("y")}); err == nil {
			t.Fatal("send on a connection the receiver closed succeeded")
		}
	})
}

func TestTransportCloseStopsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(1)
		tb, _ := startTransport(t, s.Host("b"), "b:1", true)
		ta, _ := startTransport(t, s.Host("a"), "a:1", true)
		conn, err := ta.GetConnection(context.Background(), "b:1")
		if err != nil {
			t.Fatal(err)
		}
		// Close with connections open in both directions: readers must end
		// (synctest.Test fails on goroutines left behind).
		if err := tb.Close(); err != nil {
			t.Fatal(err)
		}
		if err := ta.Close(); err != nil {
			t.Fatal(err)
		}
		if err := conn.SendMessageBatch(sampleBatch()); err == nil {
			t.Fatal("send after Close succeeded")
		}
		conn.Close()
		if _, err := ta.GetConnection(context.Background(), "b:1"); err == nil {
			t.Fatal("GetConnection to a closed transport succeeded")
		}
	})
}

func TestTransportValidate(t *testing.T) {
	f := NewTransportFactory(NewSim(1).Host("a"))
	for addr, want := range map[string]bool{
		"a:1": true, "node-1.example:63000": true, "127.0.0.1:9000": true,
		"a": false, ":1": false, "a:0": false, "a:70000": false, "a:x": false, "": false,
	} {
		if got := f.Validate(addr); got != want {
			t.Errorf("Validate(%q) = %v, want %v", addr, got, want)
		}
	}
}
