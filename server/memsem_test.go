package server

import (
	"context"
	"errors"
	"testing"

	"pgregory.net/rapid"
)

// Model test: tryAcquire/release against a counter.
func TestMemSemModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		capacity := rapid.Int64Range(1, 1000).Draw(t, "capacity")
		s := newMemSem(capacity)
		var held []int64
		avail := capacity
		for range rapid.IntRange(0, 100).Draw(t, "ops") {
			if len(held) > 0 && rapid.Bool().Draw(t, "release") {
				i := rapid.IntRange(0, len(held)-1).Draw(t, "which")
				s.release(held[i])
				avail += held[i]
				held = append(held[:i], held[i+1:]...)
			} else {
				n := rapid.Int64Range(1, capacity).Draw(t, "n")
				got := s.tryAcquire(n)
				if got != (n <= avail) {
					t.Fatalf("tryAcquire(%d) = %v with %d available", n, got, avail)
				}
				if got {
					avail -= n
					held = append(held, n)
				}
			}
			if s.available() != avail {
				t.Fatalf("available %d, model %d", s.available(), avail)
			}
		}
	})
}

// A waiter that gives up leaves nothing behind, and a granted waiter is FIFO.
func TestMemSemWaiters(t *testing.T) {
	s := newMemSem(10)
	if err := s.acquire(context.Background(), 8); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.acquire(ctx, 5); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with cancelled ctx: %v", err)
	}
	if s.available() != 2 || s.waiters.Len() != 0 {
		t.Fatalf("available %d waiters %d", s.available(), s.waiters.Len())
	}
	got := make(chan error, 1)
	go func() { got <- s.acquire(context.Background(), 10) }()
	s.release(8)
	if err := recv(t, got); err != nil {
		t.Fatal(err)
	}
	if s.available() != 0 {
		t.Fatalf("available %d", s.available())
	}
	s.release(10)
	mustPanic(t, "above capacity", func() { s.release(1) })
	mustPanic(t, "memSem.acquire(11)", func() { s.acquire(context.Background(), 11) })
}
