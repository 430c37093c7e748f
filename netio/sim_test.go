package netio

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// simPair dials from host `from` to a listener on `to` and returns both ends.
func simPair(t *testing.T, s *Sim, from, to string, port int) (client, server net.Conn) {
	t.Helper()
	ln, err := s.Host(to).Listen(":" + itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := s.Host(from).Dial(context.Background(), to+":"+itoa(port))
	if err != nil {
		t.Fatalf("dial %s->%s: %v", from, to, err)
	}
	srv := <-accepted
	if srv == nil {
		t.Fatal("accept failed")
	}
	return c, srv
}

func mustReset(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: got %v, want ECONNRESET", what, err)
	}
}

func TestSimPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		c, srv := simPair(t, s, "a", "b", 1)
		defer c.Close()
		defer srv.Close()
		ln, err := s.Host("b").Listen("b:2")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()

		s.Partition("a", "b")
		start := time.Now()
		_, err = s.Host("a").Dial(context.Background(), "b:2")
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("dial across partition = %v, want timeout", err)
		}
		if el := time.Since(start); el < simCutDialTimeout {
			t.Fatalf("dial failed after %v, want >= %v", el, simCutDialTimeout)
		}
		// A context ending first wins.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		_, err = s.Host("b").Dial(ctx, "a:1")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("dial with short ctx = %v", err)
		}

		_, err = c.Write([]byte("lost"))
		mustReset(t, "write across partition", err)
		_, err = srv.Read(make([]byte, 1))
		mustReset(t, "peer read", err)
		_, err = srv.Write([]byte("x"))
		mustReset(t, "peer write", err)

		s.Heal()
		c2, srv2 := simPair(t, s, "a", "b", 3)
		defer c2.Close()
		defer srv2.Close()
		echo(t, c2, srv2, "healed")
	})
}

// echo writes msg on w and checks that r reads it.
func echo(t *testing.T, w, r net.Conn, msg string) {
	t.Helper()
	if _, err := w.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
		t.Fatalf("read %q, %v; want %q", got, err, msg)
	}
}

func TestSimPartitionOneWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		ab, ba := simPair(t, s, "a", "b", 1)
		defer ab.Close()
		defer ba.Close()
		s.PartitionOneWay("a", "b")
		// The handshake needs both directions: dials fail either way.
		for _, d := range [][2]string{{"a", "b:1"}, {"b", "a:9"}} {
			if _, err := s.Host(d[0]).Dial(context.Background(), d[1]); err == nil {
				t.Fatalf("dial %s -> %s across one-way cut succeeded", d[0], d[1])
			}
		}
		echo(t, ba, ab, "b->a still flows")
		_, err := ab.Write([]byte("a->b is cut"))
		mustReset(t, "write on cut direction", err)
	})
}

func TestSimIsolate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		s.Isolate("c") // also covers hosts that appear later
		ln, err := s.Host("c").Listen(":1")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if _, err := s.Host("newcomer").Dial(context.Background(), "c:1"); err == nil {
			t.Fatal("dial to isolated host succeeded")
		}
		// Loopback is never cut.
		self, err := s.Host("c").Dial(context.Background(), "c:1")
		if err != nil {
			t.Fatalf("isolated host cannot reach itself: %v", err)
		}
		self.Close()
		if acc, err := ln.Accept(); err == nil {
			acc.Close()
		}
		s.Heal()
		c, srv := simPair(t, s, "newcomer", "c", 2)
		defer c.Close()
		defer srv.Close()
		echo(t, c, srv, "ok")
	})
}

func TestSimDelayAndBandwidth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		const delay = 30 * time.Millisecond
		s.SetLink("a", "b", LinkRule{Delay: delay, BandwidthBytesPerSec: 1 << 20})
		s.SetLink("b", "a", LinkRule{Delay: delay})
		start := time.Now()
		c, srv := simPair(t, s, "a", "b", 1)
		defer c.Close()
		defer srv.Close()
		if el := time.Since(start); el < 2*delay {
			t.Fatalf("dial took %v, want >= one RTT %v", el, 2*delay)
		}
		start = time.Now()
		echo(t, c, srv, "ping")
		if el := time.Since(start); el < delay {
			t.Fatalf("delivery took %v, want >= %v", el, delay)
		}
		// 1 MiB at 1 MiB/s occupies the link for a second.
		start = time.Now()
		go c.Write(make([]byte, 1<<20))
		if _, err := io.ReadFull(srv, make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < time.Second+delay {
			t.Fatalf("1 MiB took %v, want >= %v", el, time.Second+delay)
		}
	})
}

func TestSimJitterKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		s.SetLink("a", "b", LinkRule{Delay: time.Millisecond, Jitter: 50 * time.Millisecond})
		c, srv := simPair(t, s, "a", "b", 1)
		defer srv.Close()
		go func() {
			defer c.Close()
			for i := range 200 {
				c.Write([]byte{byte(i)})
				time.Sleep(time.Millisecond)
			}
		}()
		got, err := io.ReadAll(srv)
		if err != nil || len(got) != 200 {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		for i, b := range got {
			if b != byte(i) {
				t.Fatalf("byte %d = %d: order not preserved", i, b)
			}
		}
	})
}

func TestSimCrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		c, srv := simPair(t, s, "a", "b", 1)
		defer c.Close()
		defer srv.Close()
		ln, err := s.Host("b").Listen(":2")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		acceptErr := make(chan error, 1)
		go func() {
			_, err := ln.Accept()
			acceptErr <- err
		}()
		readErr := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			readErr <- err
		}()
		synctest.Wait() // both are blocked now

		s.Crash("b")
		if err := <-acceptErr; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("accept on crashed host = %v", err)
		}
		mustReset(t, "blocked read of peer", <-readErr)
		_, err = srv.Write([]byte("x"))
		mustReset(t, "write on crashed host", err)
		_, err = s.Host("a").Dial(context.Background(), "b:2")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial crashed host = %v, want ECONNREFUSED", err)
		}
		// Restart: the host listens again on the same port.
		c2, srv2 := simPair(t, s, "a", "b", 2)
		defer c2.Close()
		defer srv2.Close()
		echo(t, c2, srv2, "back")
	})
}

func TestSimWriteBlocksWhenFullAndDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		c, srv := simPair(t, s, "a", "b", 1)
		defer c.Close()
		defer srv.Close()
		// Nobody reads: the writer fills the buffer and then times out.
		c.SetWriteDeadline(time.Now().Add(time.Second))
		n, err := c.Write(make([]byte, 2*simPipeBytesMax))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write = %v, want deadline exceeded", err)
		}
		if n != simPipeBytesMax {
			t.Fatalf("wrote %d bytes before blocking, want %d", n, simPipeBytesMax)
		}
		// A deadline moved while blocked is honoured by the blocked Read.
		errc := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 1))
			errc <- err
		}()
		synctest.Wait()
		c.SetReadDeadline(time.Now())
		if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("blocked read after deadline = %v", err)
		}
	})
}

func TestSimListenRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		h := s.Host("a")
		if _, err := h.Listen("b:1"); err == nil {
			t.Fatal("host a listened on b's address")
		}
		ln, err := h.Listen("a:1")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if _, err := h.Listen(":1"); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("second listen = %v, want EADDRINUSE", err)
		}
		eph, err := h.Listen(":0")
		if err != nil {
			t.Fatal(err)
		}
		defer eph.Close()
		if eph.Addr().String() == "a:0" {
			t.Fatal("port 0 was not assigned")
		}
	})
}

// dropTrace dials and writes one byte 60 times over a lossy link and records
// which writes were lost, while unrelated lossy traffic runs on another link
// when noise is set.
func dropTrace(t *testing.T, seed int64, noise bool) []bool {
	var trace []bool
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(seed)
		s.SetLink("a", "b", LinkRule{DropProbability: 0.3})
		s.SetLink("c", "b", LinkRule{DropProbability: 0.5})
		for i := range 60 {
			if noise {
				x, y := simPair(t, s, "c", "b", 1000+i)
				x.Write([]byte("noise"))
				x.Close()
				y.Close()
			}
			c, srv := simPair(t, s, "a", "b", i+1)
			_, err := c.Write([]byte{1})
			trace = append(trace, err != nil)
			c.Close()
			srv.Close()
		}
	})
	return trace
}

func TestSimDropsDeterministic(t *testing.T) {
	a := dropTrace(t, 42, false)
	b := dropTrace(t, 42, true)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different drops (other link's traffic perturbed this one):\n%v\n%v", a, b)
	}
	if !slices.Contains(a, true) || !slices.Contains(a, false) {
		t.Fatalf("drop trace %v should mix drops and deliveries", a)
	}
	if c := dropTrace(t, 43, false); slices.Equal(a, c) {
		t.Fatalf("seeds 42 and 43 gave identical traces %v", a)
	}
}

// arrival writes one byte from `from` to `to` at the bubble's current
// instant and returns how long it took to arrive.
func arrival(t *testing.T, s *Sim, from, to string, port int) time.Duration {
	t.Helper()
	c, srv := simPair(t, s, from, to, port)
	defer c.Close()
	defer srv.Close()
	start := time.Now()
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(srv, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// With a delay skew, each link has its own constant extra delay, a function
// of the seed and the link: two links' deliveries of one instant's writes
// differ, and a link's delay is the same every time.
func TestSimDelaySkew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(7)
		s.SetDelaySkew(time.Microsecond)
		s.SetLink("a", "b", LinkRule{Delay: time.Millisecond})
		ab, ab2, cb := arrival(t, s, "a", "b", 1), arrival(t, s, "a", "b", 2), arrival(t, s, "c", "b", 3)
		if ab != ab2 {
			t.Fatalf("a->b took %v then %v: a link's skew must be constant", ab, ab2)
		}
		if ab < time.Millisecond || ab >= time.Millisecond+time.Microsecond || cb >= time.Microsecond {
			t.Fatalf("a->b %v, c->b %v: want the rule's delay plus a skew below 1µs", ab, cb)
		}
		if ab-time.Millisecond == cb {
			t.Fatalf("a->b and c->b have the same skew %v", cb)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		if d := arrival(t, NewSim(7), "a", "b", 1); d != 0 {
			t.Fatalf("no skew set: a perfect link took %v", d)
		}
	})
}

// jitterTrace records the delivery delays of 20 one-byte writes on one
// connection over a jittery link, while another connection on the same
// link writes at the same instants when noise is set.
func jitterTrace(t *testing.T, noise bool) []time.Duration {
	var out []time.Duration
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(42)
		s.SetLink("a", "b", LinkRule{Jitter: time.Second})
		c, srv := simPair(t, s, "a", "b", 1)
		x, y := simPair(t, s, "a", "b", 2)
		defer x.Close()
		defer y.Close()
		go io.Copy(io.Discard, y)
		for range 20 {
			if noise {
				x.Write([]byte("noise"))
			}
			start := time.Now()
			c.Write([]byte{1})
			io.ReadFull(srv, make([]byte, 1))
			out = append(out, time.Since(start))
		}
		c.Close()
		srv.Close()
	})
	return out
}

// Each connection draws from its own stream: another connection's writes
// on the same link (in whatever order goroutines make them) never change
// its jitter.
func TestSimConnStreamsIndependent(t *testing.T) {
	a, b := jitterTrace(t, false), jitterTrace(t, true)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different jitter when another connection shares the link:\n%v\n%v", a, b)
	}
}

// dialOrderTrace dials two connections over a jittery link in the given
// order and returns the delivery delays of 10 writes on the one to port 1.
func dialOrderTrace(t *testing.T, swap bool) []time.Duration {
	var out []time.Duration
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(42)
		s.SetLink("a", "b", LinkRule{Jitter: time.Second})
		var c, srv, x, y net.Conn
		if swap {
			x, y = simPair(t, s, "a", "b", 2)
			c, srv = simPair(t, s, "a", "b", 1)
		} else {
			c, srv = simPair(t, s, "a", "b", 1)
			x, y = simPair(t, s, "a", "b", 2)
		}
		defer x.Close()
		defer y.Close()
		for i := range 10 {
			start := time.Now()
			c.Write([]byte{byte(i)})
			io.ReadFull(srv, make([]byte, 1))
			out = append(out, time.Since(start))
		}
		c.Close()
		srv.Close()
	})
	return out
}

// A chunk's fate does not depend on the order in which connections were
// dialled (connections dialled at one instant are ordered by goroutine
// scheduling).
func TestSimChunkFateIndependentOfDialOrder(t *testing.T) {
	a, b := dialOrderTrace(t, false), dialOrderTrace(t, true)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different jitter when the dial order changes:\n%v\n%v", a, b)
	}
	if slices.Min(a) == slices.Max(a) {
		t.Fatalf("no jitter drawn: %v", a)
	}
}

// dialPorts dials b:1 and b:2 from a at one instant, in the given order,
// and returns the local ports, of the connection to b:1 first.
func dialPorts(t *testing.T, swap bool) [2]string {
	var out [2]string
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(42)
		var c1, s1, c2, s2 net.Conn
		if swap {
			c2, s2 = simPair(t, s, "a", "b", 2)
			c1, s1 = simPair(t, s, "a", "b", 1)
		} else {
			c1, s1 = simPair(t, s, "a", "b", 1)
			c2, s2 = simPair(t, s, "a", "b", 2)
		}
		out = [2]string{c1.LocalAddr().String(), c2.LocalAddr().String()}
		for _, c := range []net.Conn{c1, s1, c2, s2} {
			c.Close()
		}
	})
	return out
}

// A dialled end's port does not depend on the order of the dials of one
// instant (a trace that shows ports would otherwise part on it).
func TestSimDialPortIndependentOfDialOrder(t *testing.T) {
	a, b := dialPorts(t, false), dialPorts(t, true)
	if a != b {
		t.Fatalf("same seed and instant, ports follow the dial order: %v vs %v", a, b)
	}
	if a[0] == a[1] {
		t.Fatalf("two open connections share a port: %v", a)
	}
}
