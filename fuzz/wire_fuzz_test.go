// Package fuzz holds Chronik's fuzz targets.
package fuzz

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chronik-go/chronik/server"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"
)

// TestMain runs the tests, shuts down FuzzKafkaRequests' broker if one was
// started, then checks for leaked goroutines.
func TestMain(m *testing.M) {
	code := m.Run()
	stopFuzzBroker()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// pipeListener hands out in-memory connections pushed into conns.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func apiVersionsFrame(version int16, corr int32) []byte {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = version
	req.ClientSoftwareName, req.ClientSoftwareVersion = "fuzz", "1.0"
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, 18)
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "fuzz"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// FuzzServeConn writes arbitrary bytes to one connection: the server must
// neither panic nor hang; it answers with well-formed frames or closes.
func FuzzServeConn(f *testing.F) {
	for v := int16(0); v <= 5; v++ {
		frame := apiVersionsFrame(v, int32(v))
		f.Add(frame)
		for _, cut := range []int{2, 4, 9, len(frame) - 1} {
			f.Add(frame[:cut])
		}
		f.Add(append(frame, apiVersionsFrame(0, 99)...))
	}
	f.Add([]byte{0, 0, 0, 12, 0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff, 0xde, 0xad})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		logs := &syncBuffer{}
		srv, err := server.New(server.Config{
			Logger: slog.New(slog.NewTextHandler(logs, nil)),
			// Keep claimed sizes cheap: a frame is allocated once its
			// size is accepted.
			MaxRequestBytes:    64 << 10,
			MaxInFlightPerConn: 4,
		})
		if err != nil {
			t.Fatal(err)
		}
		ln := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()

		client, serverSide := net.Pipe()
		defer client.Close()
		ln.conns <- serverSide
		client.SetDeadline(time.Now().Add(10 * time.Second))

		type readResult struct {
			out []byte
			err error
		}
		read := make(chan readResult, 1)
		go func() {
			out, err := io.ReadAll(client)
			read <- readResult{out, err}
		}()
		// Blocks until the server has read everything or closed.
		client.Write(data)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v\n%s", err, logs)
		}
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
		res := <-read
		var ne net.Error
		if errors.As(res.err, &ne) && ne.Timeout() {
			t.Fatalf("client read timed out: the server neither answered nor closed\n%s", logs)
		}
		if strings.Contains(logs.String(), "panicked") {
			t.Fatalf("handler panicked:\n%s", logs)
		}
		checkFrames(t, res.out)
	})
}

// checkFrames checks out is a sequence of complete response frames.
func checkFrames(t *testing.T, out []byte) {
	for len(out) > 0 {
		if len(out) < 8 {
			t.Fatalf("partial response frame %x", out)
		}
		n := int(binary.BigEndian.Uint32(out))
		if n < 4 || n > len(out)-4 {
			t.Fatalf("response frame size %d with %d bytes left", n, len(out)-4)
		}
		out = out[4+n:]
	}
}
