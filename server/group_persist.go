package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
)

// groupWriter proposes the group coordinator's membership records
// (group.Options.Persist) to the controller shard, one at a time, in the
// order the coordinator handed them out. A record still queued when a
// newer one of the same group arrives is replaced in place (only a group's
// latest record matters), so the queue holds at most one record per group
// and is bounded by groupWriteQueueMax besides. A failed proposal is
// logged and dropped: the group in memory is unaffected, and its next
// record writes again (until then a coordinator move would load the
// previous record, or none, and its members rejoin).
type groupWriter struct {
	log  *slog.Logger
	node func() *node.Node

	mu    sync.Mutex
	queue []group.Record
	wake  chan struct{} // capacity 1: a record was queued

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	done   chan struct{} // closed when run returns
}

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

// persist is group.Options.Persist: it never blocks.
func (w *groupWriter) persist(rec group.Record) {
	w.mu.Lock()
	queued := false
	for i := range w.queue {
		if w.queue[i].Group == rec.Group {
			w.queue[i], queued = rec, true
			break
		}
	}
	if !queued && len(w.queue) >= groupWriteQueueMax {
		w.mu.Unlock()
		w.log.Warn("group records: queue full; record dropped", "group", rec.Group, "queued", groupWriteQueueMax)
		return
	}
	if !queued {
		w.queue = append(w.queue, rec)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
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
			rec := w.queue[0]
			w.queue = w.queue[1:]
			w.mu.Unlock()
			w.write(w.ctx, rec)
		}
	}
}

func (w *groupWriter) write(ctx context.Context, rec group.Record) {
	ctx, cancel := context.WithTimeout(ctx, groupWriteTimeout)
	defer cancel()
	err := w.node().PutGroupState(ctx, meta.PutGroupState{Group: rec.Group, Term: rec.Term, Seq: rec.Seq, Data: rec.Data})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("group records: write failed; the group's next record writes again", "group", rec.Group, "term", rec.Term, "seq", rec.Seq, "err", err)
		return
	}
	w.log.Debug("group records: written", "group", rec.Group, "term", rec.Term, "seq", rec.Seq, "bytes", len(rec.Data))
}

// close stops run (if started) and waits for it.
func (w *groupWriter) close(started bool) {
	w.cancel()
	if started {
		<-w.done
	}
}
