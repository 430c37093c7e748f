package netio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// netEnv runs a conformance case against one Network implementation.
type netEnv struct {
	name string
	// run calls f with a server and a client Network, an address the server
	// can listen on, and an address nobody listens on.
	run func(t *testing.T, f func(t *testing.T, server, client Network, listenAddr string))
}

func envs() []netEnv {
	return []netEnv{
		{"OS", func(t *testing.T, f func(*testing.T, Network, Network, string)) {
			f(t, NewOS(), NewOS(), "127.0.0.1:0")
		}},
		{"Sim", func(t *testing.T, f func(*testing.T, Network, Network, string)) {
			synctest.Test(t, func(t *testing.T) {
				s := NewSim(1)
				f(t, s.Host("srv"), s.Host("cli"), "srv:9000")
			})
		}},
	}
}

func TestConformance(t *testing.T) {
	cases := []struct {
		name string
		f    func(t *testing.T, server, client Network, listenAddr string)
	}{
		{"Echo", testEcho},
		{"LargeTransferInOrder", testLargeTransfer},
		{"CloseGivesEOF", testCloseEOF},
		{"CloseWrite", testCloseWrite},
		{"ListenerCloseUnblocksAccept", testListenerClose},
		{"ReadDeadline", testReadDeadline},
		{"DialRefused", testDialRefused},
		{"Addrs", testAddrs},
	}
	for _, env := range envs() {
		for _, c := range cases {
			t.Run(env.name+"/"+c.name, func(t *testing.T) { env.run(t, c.f) })
		}
	}
}

// serve accepts one connection and runs h on it in a goroutine; the returned
// channel yields h's error once the connection and listener are closed.
func serve(t *testing.T, ln net.Listener, h func(net.Conn) error) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- h(c)
	}()
	return done
}

func listenDial(t *testing.T, server, client Network, addr string, h func(net.Conn) error) (net.Conn, <-chan error) {
	t.Helper()
	ln, err := server.Listen(addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	done := serve(t, ln, h)
	c, err := client.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		ln.Close()
		t.Fatalf("dial %s: %v", ln.Addr(), err)
	}
	return c, done
}

func testEcho(t *testing.T, server, client Network, addr string) {
	c, done := listenDial(t, server, client, addr, func(c net.Conn) error {
		_, err := io.Copy(c, c)
		return err
	})
	msg := []byte("hello, chronik")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func testLargeTransfer(t *testing.T, server, client Network, addr string) {
	const sizeBytes = 10 << 20 // more than the Sim's per-direction buffer
	data := make([]byte, sizeBytes)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(data)
	var got [32]byte
	c, done := listenDial(t, server, client, addr, func(c net.Conn) error {
		h := sha256.New()
		n, err := io.Copy(h, c)
		if err != nil {
			return err
		}
		if n != sizeBytes {
			return errors.New("short transfer")
		}
		copy(got[:], h.Sum(nil))
		return nil
	})
	// Odd write sizes exercise chunk splitting.
	for off := 0; off < sizeBytes; {
		n := min(sizeBytes-off, 100_003)
		if _, err := c.Write(data[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	if got != want {
		t.Fatal("transferred bytes differ (order or content)")
	}
}

func testCloseEOF(t *testing.T, server, client Network, addr string) {
	c, done := listenDial(t, server, client, addr, func(c net.Conn) error {
		b, err := io.ReadAll(c) // ends at io.EOF
		if err != nil {
			return err
		}
		if string(b) != "last words" {
			return errors.New("got " + string(b))
		}
		return nil
	})
	if _, err := c.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close = %v, want net.ErrClosed", err)
	}
}

func testCloseWrite(t *testing.T, server, client Network, addr string) {
	c, done := listenDial(t, server, client, addr, func(c net.Conn) error {
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		_, err = c.Write(append([]byte("re: "), b...))
		return err
	})
	if _, err := c.Write([]byte("question")); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "re: question" {
		t.Fatalf("reply = %q, %v", b, err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func testListenerClose(t *testing.T, server, _ Network, addr string) {
	ln, err := server.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		errc <- err
	}()
	ln.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after close = %v, want net.ErrClosed", err)
	}
}

func testReadDeadline(t *testing.T, server, client Network, addr string) {
	c, done := listenDial(t, server, client, addr, func(c net.Conn) error {
		_, err := io.Copy(io.Discard, c)
		return err
	})
	defer func() { c.Close(); <-done }()
	start := time.Now()
	const timeout = 50 * time.Millisecond
	c.SetReadDeadline(start.Add(timeout))
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read = %v, want os.ErrDeadlineExceeded", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read error %v is not a net.Error timeout", err)
	}
	if el := time.Since(start); el < timeout {
		t.Fatalf("deadline fired after %v, want >= %v", el, timeout)
	}
	// Clearing the deadline makes the connection usable again.
	c.SetReadDeadline(time.Time{})
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
}

func testDialRefused(t *testing.T, server, client Network, addr string) {
	ln, err := server.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	_, err = client.Dial(context.Background(), target)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial closed port = %v, want ECONNREFUSED", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("dial error %T is not a *net.OpError", err)
	}
}

func testAddrs(t *testing.T, server, client Network, addr string) {
	ln, err := server.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := client.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	ln.Close()
	defer c.Close()
	defer s.Close()
	if c.RemoteAddr().String() != ln.Addr().String() {
		t.Errorf("client remote %v, listener %v", c.RemoteAddr(), ln.Addr())
	}
	if s.RemoteAddr().String() != c.LocalAddr().String() {
		t.Errorf("server remote %v, client local %v", s.RemoteAddr(), c.LocalAddr())
	}
}
