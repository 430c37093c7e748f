package netio

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	pb "github.com/lni/dragonboat/v4/raftpb"
	"pgregory.net/rapid"
)

// bytesSource feeds readFrame from memory.
type bytesSource struct{ *bytes.Reader }

func (bytesSource) SetReadDeadline(time.Time) error { return nil }

// TestFrameRoundTripAndCorruption: every encoded batch decodes to itself, and
// any single-byte corruption of a frame is an error (never a panic, never a
// different batch).
func TestFrameRoundTripAndCorruption(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		var b pb.MessageBatch
		b.DeploymentId = rapid.Uint64().Draw(rt, "deployment")
		b.SourceAddress = rapid.StringN(0, 20, -1).Draw(rt, "source")
		for i := range rapid.IntRange(0, 4).Draw(rt, "messages") {
			m := pb.Message{Type: pb.Replicate, To: uint64(i), Term: rapid.Uint64().Draw(rt, "term")}
			for range rapid.IntRange(0, 3).Draw(rt, "entries") {
				m.Entries = append(m.Entries, pb.Entry{Index: rapid.Uint64().Draw(rt, "index"),
					Cmd: rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(rt, "cmd")})
			}
			b.Requests = append(b.Requests, m)
		}
		frame, err := encodeFrame(frameKindBatch, &b)
		if err != nil {
			if b.Size() == 0 && errors.Is(err, ErrFrameTooLarge) {
				return // an empty batch has no payload: refused by design
			}
			rt.Fatal(err)
		}
		hdr := make([]byte, frameHeaderBytes)
		kind, payload, err := readFrame(bytesSource{bytes.NewReader(frame)}, hdr)
		if err != nil || kind != frameKindBatch {
			rt.Fatalf("decode: kind %d, %v", kind, err)
		}
		var got pb.MessageBatch
		if err := got.Unmarshal(payload); err != nil {
			rt.Fatal(err)
		}
		again, _ := encodeFrame(frameKindBatch, &got)
		if !bytes.Equal(again, frame) {
			rt.Fatal("round trip changed the batch")
		}

		pos := rapid.IntRange(0, len(frame)-1).Draw(rt, "pos")
		flip := rapid.ByteRange(1, 255).Draw(rt, "flip")
		bad := bytes.Clone(frame)
		bad[pos] ^= flip
		if _, _, err := readFrame(bytesSource{bytes.NewReader(bad)}, hdr); err == nil {
			// A length byte may grow the frame past the data: that is an
			// io error, still an error. Nothing may decode successfully.
			rt.Fatalf("corrupted byte %d (^%#x) decoded without error", pos, flip)
		}
	})
}

// TestSimStreamIntegrity: whatever the link rule and the write/read sizes,
// the reader gets exactly the bytes written, in order, then io.EOF.
func TestSimStreamIntegrity(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		writes := rapid.SliceOfN(rapid.IntRange(1, 300_000), 1, 12).Draw(rt, "writes")
		readBytes := rapid.IntRange(1, 100_000).Draw(rt, "readBytes")
		rule := LinkRule{
			Delay:                time.Duration(rapid.IntRange(0, 50).Draw(rt, "delayMs")) * time.Millisecond,
			Jitter:               time.Duration(rapid.IntRange(0, 50).Draw(rt, "jitterMs")) * time.Millisecond,
			BandwidthBytesPerSec: int64(rapid.SampledFrom([]int{0, 1 << 20, 100 << 20}).Draw(rt, "bandwidth")),
		}
		seed := rapid.Int64().Draw(rt, "seed")
		var want, got []byte
		var readErr error
		synctest.Test(t, func(t *testing.T) {
			s := NewSim(seed)
			s.SetLink("a", "b", rule)
			c, srv := simPair(t, s, "a", "b", 1)
			defer srv.Close()
			go func() {
				defer c.Close()
				for i, n := range writes {
					chunk := bytes.Repeat([]byte{byte(i)}, n)
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, readBytes)
			for {
				n, err := srv.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					if err != io.EOF {
						readErr = err
					}
					return
				}
			}
		})
		for i, n := range writes {
			want = append(want, bytes.Repeat([]byte{byte(i)}, n)...)
		}
		if readErr != nil {
			rt.Fatalf("read: %v", readErr)
		}
		if !bytes.Equal(got, want) {
			rt.Fatalf("got %d bytes, want %d (content or order differs)", len(got), len(want))
		}
	})
}
