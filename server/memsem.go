package server

import (
	"container/list"
	"context"
	"fmt"
	"sync"
)

// memSem is a weighted FIFO semaphore bounding the bytes of request frames
// held in memory across all connections. FIFO, so a large request is not
// starved by a stream of small ones.
//
// Invariant: 0 <= avail <= capacity.
type memSem struct {
	capacity int64

	mu      sync.Mutex
	avail   int64
	waiters list.List // of *memWaiter, in arrival order
}

type memWaiter struct {
	n     int64
	ready chan struct{} // closed when the bytes are granted
}

func newMemSem(capacity int64) *memSem {
	return &memSem{capacity: capacity, avail: capacity}
}

// acquire takes n bytes, waiting until they are free or ctx is done. n must
// be in [1, capacity]: callers check first, because a larger n could never
// be granted.
func (s *memSem) acquire(ctx context.Context, n int64) error {
	if n <= 0 || n > s.capacity {
		panic(fmt.Sprintf("server: memSem.acquire(%d) with capacity %d", n, s.capacity))
	}
	s.mu.Lock()
	if s.waiters.Len() == 0 && s.avail >= n {
		s.avail -= n
		s.mu.Unlock()
		return nil
	}
	w := &memWaiter{n: n, ready: make(chan struct{})}
	e := s.waiters.PushBack(w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		select {
		case <-w.ready:
			// Granted while we were giving up: hand the bytes back.
			s.mu.Unlock()
			s.release(n)
		default:
			s.waiters.Remove(e)
			// Our leaving may unblock smaller waiters queued behind us.
			s.grantLocked()
			s.mu.Unlock()
		}
		return ctx.Err()
	}
}

// tryAcquire takes n bytes if they are free now and nobody waits before us.
func (s *memSem) tryAcquire(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiters.Len() == 0 && s.avail >= n {
		s.avail -= n
		return true
	}
	return false
}

// release returns n bytes.
func (s *memSem) release(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.avail += n
	if s.avail > s.capacity {
		panic(fmt.Sprintf("server: memSem released to %d above capacity %d", s.avail, s.capacity))
	}
	s.grantLocked()
}

func (s *memSem) grantLocked() {
	for e := s.waiters.Front(); e != nil; e = s.waiters.Front() {
		w := e.Value.(*memWaiter)
		if s.avail < w.n {
			return
		}
		s.avail -= w.n
		s.waiters.Remove(e)
		close(w.ready)
	}
}

// available reports the free bytes (for tests and metrics).
func (s *memSem) available() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.avail
}
