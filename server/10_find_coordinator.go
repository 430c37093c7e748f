package server

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/group"
)

// FindCoordinator: v0-6
//
// Behaviour:
//   - The coordinator of EVERY group is the current leader of the
//     controller shard (node.Metadata's ControllerID, as this broker's
//     controller replica sees it): committed offsets live in the controller
//     shard, so the coordinator's commits are local proposals. The answer
//     is that broker's id, host and port; COORDINATOR_NOT_AVAILABLE while no
//     leader is known.
//   - Key type 0 (group) and 1 (transaction: the transaction coordinator
//     is the same broker, see txn.go; DESCRIBE on the TRANSACTIONAL_ID
//     needed, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED); other types (2 =
//     share group) answer INVALID_REQUEST, as Kafka answers unknown types.
//   - v4+ batches keys (CoordinatorKeys): one entry per key, in order.
//
// Version notes: v1 key type, throttle, error message; v3 flexible; v4
// batched keys (KIP-699); v5 same as v4 (transactional
// TRANSACTION_ABORTABLE); v6 share group key type (KIP-932), not served.
//
// This file also holds what every group API shares: the coordinator check
// (groupCoordinator) and the leadership watch of blocking calls
// (whileCoordinator).

const findCoordinatorKey = 10

func init() {
	register(API{Key: findCoordinatorKey, MinVersion: 0, MaxVersion: 6, Handler: handleFindCoordinator})
}

func handleFindCoordinator(ctx context.Context, rc *RequestContext, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if rc.Broker == nil {
		return nil, errNoBroker
	}
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	v := rc.Broker.Node.Metadata(ctx, []string{})
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Port = key, -1, -1
		switch req.CoordinatorType {
		case 0, 1:
			if req.CoordinatorType == 0 {
				c.ErrorCode = rc.groupDenied(kmsg.ACLOperationDescribe, key)
			} else {
				c.ErrorCode = rc.txnDenied(kmsg.ACLOperationDescribe, key)
			}
			if c.ErrorCode != 0 {
				break
			}
			c.ErrorCode = kerr.CoordinatorNotAvailable.Code
			for _, b := range v.Brokers {
				if v.ControllerID >= 0 && b.NodeID == v.ControllerID {
					c.ErrorCode, c.NodeID, c.Host, c.Port = 0, b.NodeID, b.Host, b.Port
				}
			}
		default:
			c.ErrorCode = kerr.InvalidRequest.Code
		}
		if c.ErrorCode != 0 && c.ErrorMessage == nil {
			msg := kerr.ErrorForCode(c.ErrorCode).Error()
			c.ErrorMessage = &msg
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.NodeID, c.Host, c.Port
		if req.Version >= 1 {
			resp.ErrorMessage = c.ErrorMessage
		}
	}
	return resp, nil
}

// tenure is one broker's view of its coordinator term: the controller
// term in which its in-memory groups were built and loaded
// (Broker.tenure).
type tenure struct {
	mu   sync.Mutex // held only briefly, never while proposing or waiting
	term uint64
	// loading is non-nil while one request begins a tenure (proposes the
	// fence and loads the records); it is closed when that ends. Other
	// requests wait on it: a channel, not the mutex, so that a simulated
	// clock can advance meanwhile.
	loading chan struct{}
}

// tenureWaitsMax bounds how many loads by other requests one request
// waits through before it answers NOT_COORDINATOR.
const tenureWaitsMax = 3

// groupCoordinator returns the broker's group coordinator if this broker
// coordinates groups now (it leads the controller shard and is ready in
// its term), else code NOT_COORDINATOR so that the client rediscovers.
//
// The first group request in a new coordinator term begins a new tenure
// of the coordinator: it fences the replicated group membership records
// at the term and reads them (node.BeginGroupTenure), then
// group.Coordinator.BeginTenure forgets every group held in memory (they
// date from an earlier term of this broker, and another coordinator may
// have served them since) and loads the records: those groups keep their
// generation and members (see core/group's doc.go, "Coordinator moves").
// Committed offsets are not touched. Requests arriving meanwhile wait for
// it. If the fence fails the request is answered NOT_COORDINATOR and the
// next one tries again.
func groupCoordinator(ctx context.Context, rc *RequestContext) (*group.Coordinator, uint64, int16, error) {
	if rc.Broker == nil {
		return nil, 0, 0, errNoBroker
	}
	term, ok := rc.Broker.Node.CoordinatorTerm(ctx)
	if !ok {
		return nil, 0, kerr.NotCoordinator.Code, nil
	}
	tn := &rc.Broker.tenure
	for range tenureWaitsMax {
		tn.mu.Lock()
		if tn.term == term {
			tn.mu.Unlock()
			return rc.Broker.Groups, term, 0, nil
		}
		if ch := tn.loading; ch != nil {
			tn.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, 0, kerr.NotCoordinator.Code, nil
			}
		}
		ch := make(chan struct{})
		tn.loading = ch
		tn.mu.Unlock()
		ok := beginTenure(ctx, rc.Broker, term)
		tn.mu.Lock()
		if ok {
			tn.term = term
		}
		tn.loading = nil
		close(ch)
		tn.mu.Unlock()
		if !ok {
			return nil, 0, kerr.NotCoordinator.Code, nil
		}
		return rc.Broker.Groups, term, 0, nil
	}
	return nil, 0, kerr.NotCoordinator.Code, nil
}

// beginTenure fences and loads the group records for term (only one
// request at a time runs it, see groupCoordinator).
func beginTenure(ctx context.Context, b *Broker, term uint64) bool {
	states, err := b.Node.BeginGroupTenure(ctx, term)
	if err != nil {
		b.log.Warn("groups: cannot begin coordinator tenure", "term", term, "err", err)
		return false
	}
	recs := make([]group.Record, len(states))
	for i, st := range states {
		recs[i] = group.Record{Group: st.Group, Term: st.Term, Seq: st.Seq, Data: st.Data}
	}
	n := b.Groups.BeginTenure(term, recs)
	b.log.Info("groups: coordinator tenure began", "term", term, "records", len(recs), "loaded", n)
	return true
}

// coordinatorPollEvery is how often a blocked JoinGroup or SyncGroup
// checks that its broker still coordinates groups.
const coordinatorPollEvery = 250 * time.Millisecond

// whileCoordinator derives a context that is cancelled, besides with ctx,
// when this broker stops coordinating groups in term (controller
// leadership moved): a member blocked in JoinGroup or SyncGroup is then
// answered NOT_COORDINATOR instead of waiting for a rebalance that will
// never complete here. lost reports whether that happened. The watcher
// polls on the node's clock and exits when stop is called.
func whileCoordinator(ctx context.Context, rc *RequestContext, term uint64) (wctx context.Context, lost func() bool, stop func()) {
	wctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	gone := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := rc.Broker.clock.NewTimer(coordinatorPollEvery)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C():
				t.Reset(coordinatorPollEvery)
				if cur, ok := rc.Broker.Node.CoordinatorTerm(wctx); wctx.Err() == nil && (!ok || cur != term) {
					mu.Lock()
					gone = true
					mu.Unlock()
					cancel()
					return
				}
			}
		}
	}()
	lost = func() bool {
		mu.Lock()
		defer mu.Unlock()
		return gone && ctx.Err() == nil
	}
	stop = func() {
		cancel()
		<-done
	}
	return wctx, lost, stop
}

// clientHost is the peer address as Kafka shows it in DescribeGroups
// ("/127.0.0.1").
func grpClientHost(rc *RequestContext) string {
	if rc.RemoteAddr == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(rc.RemoteAddr.String())
	if err != nil {
		h = rc.RemoteAddr.String()
	}
	return "/" + h
}

// deref is *s, "" when nil.
func grpDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// nullable is &s, nil when s is "".
func grpNullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
