package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
	"github.com/pingcap/failpoint"
)

// groupWriter proposes the group coordinator's membership records
// (group.Options.Persist) to the controller shard, one at a time, in the
// order the coordinator handed them out, and reports each outcome to its
// done callback (the leader's SyncGroup waits for it). A record still
// queued when a newer one of the same group arrives is replaced in place
// (only a group's latest record matters; the replaced one's done gets
// errGroupRecordSuperseded), so the queue holds at most one record per
// group and is bounded by groupWriteQueueMax besides. A failed proposal is
// logged and reported, never retried: the coordinator decides (a
// generation's record that failed makes the group rebalance; other
// records are rewritten by the group's next one).
type groupWriter struct {
	log  *slog.Logger
	node func() *node.Node

	mu    sync.Mutex
	queue []groupWrite
	wake  chan struct{} // capacity 1: a record was queued

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
}

// groupWrite is one queued record and whom to tell its outcome.
type groupWrite struct {
	rec  group.Record
	done func(error) // nil: nobody waits
}

var (
	errGroupRecordSuperseded = errors.New("server: group record superseded by a newer one")
	errGroupRecordQueueFull  = errors.New("server: group record queue full")
)

// groupWriteQueueMax bounds the queued records (beyond it a record is
// dropped and logged); groupWriteTimeout bounds one proposal.
const (
	groupWriteQueueMax = 10_000
	groupWriteTimeout  = 5 * time.Second
)

func newGroupWriter(log *slog.Logger, n func() *node.Node) *groupWriter {
	ctx, cancel := context.WithCancel(context.Background())
	return &groupWriter{log: log, node: n, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// persist is group.Options.Persist: it never blocks, and calls no done
// itself (the coordinator's lock is held): outcomes are reported from
// run's goroutine or, for a record refused here, a goroutine of its own.
func (w *groupWriter) persist(rec group.Record, done func(error)) {
	w.mu.Lock()
	var replaced func(error)
	queued := false
	for i := range w.queue {
		if w.queue[i].rec.Group == rec.Group {
			replaced, queued = w.queue[i].done, true
			w.queue[i] = groupWrite{rec, done}
			break
		}
	}
	full := !queued && len(w.queue) >= groupWriteQueueMax
	if !queued && !full {
		w.queue = append(w.queue, groupWrite{rec, done})
	}
	w.mu.Unlock()
	switch {
	case full:
		w.log.Warn("group records: queue full; record dropped", "group", rec.Group, "queued", groupWriteQueueMax)
		report(done, errGroupRecordQueueFull)
		return
	case replaced != nil:
		report(replaced, errGroupRecordSuperseded)
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// report calls done with err from a goroutine of its own (done takes the
// coordinator's lock, which persist's caller holds). It ends as soon as
// done returns.
func report(done func(error), err error) {
	if done != nil {
		go done(err)
	}
}

// run proposes queued records until close; started once the node runs.
func (w *groupWriter) run() {
	defer close(w.done)
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			if len(w.queue) == 0 {
				w.mu.Unlock()
				break
			}
			wr := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			err := w.write(w.ctx, wr.rec)
			if wr.done != nil {
				wr.done(err)
			}
		}
	}
}

func (w *groupWriter) write(ctx context.Context, rec group.Record) error {
	// groupRecordWrite: sleep(ms) delays every write; return("msg") fails
	// it with msg (failpoint builds only).
	failpoint.Inject("groupRecordWrite", func(v failpoint.Value) {
		if msg, ok := v.(string); ok {
			failpoint.Return(errors.New(msg))
		}
	})
	ctx, cancel := context.WithTimeout(ctx, groupWriteTimeout)
	defer cancel()
	err := w.node().PutGroupState(ctx, meta.PutGroupState{Group: rec.Group, Term: rec.Term, Seq: rec.Seq, Data: rec.Data})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("group records: write failed", "group", rec.Group, "term", rec.Term, "seq", rec.Seq, "err", err)
		return err
	}
	if err != nil {
		return err
	}
	w.log.Debug("group records: written", "group", rec.Group, "term", rec.Term, "seq", rec.Seq, "bytes", len(rec.Data))
	return nil
}

// close stops run (if started) and waits for it; records still queued
// are reported failed (the coordinator is closed by then and ignores it).
func (w *groupWriter) close(started bool) {
	w.cancel()
	if started {
		<-w.done
	}
	w.mu.Lock()
	q := w.queue
	w.queue = nil
	w.mu.Unlock()
	for _, wr := range q {
		if wr.done != nil {
			wr.done(context.Canceled)
		}
	}
}
