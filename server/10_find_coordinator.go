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
//   - Key type 0 (group): the coordinator of a group is the current leader
//     of its group shard (core/node/groupshards.go; shard
//     abs(javaHashCode(group)) % N, as Kafka's __consumer_offsets
//     partition), as this broker's controller replica last saw it
//     reported: the group's committed offsets and records live in that
//     shard, so the coordinator's commits are local proposals.
//     COORDINATOR_NOT_AVAILABLE while the shards do not exist yet (the
//     request asks for their creation) or no leader is known.
//   - Key type 1 (transaction): the transaction coordinator is the
//     controller shard's leader (see txn.go; DESCRIBE on the
//     TRANSACTIONAL_ID needed, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
//     other types (2 = share group) answer INVALID_REQUEST, as Kafka
//     answers unknown types.
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
			want := v.ControllerID
			if req.CoordinatorType == 0 {
				want = -1
				if idx, ok := rc.Broker.Node.GroupShardOf(key); ok {
					want = rc.Broker.Node.GroupShardLeader(idx)
				}
			}
			for _, b := range v.Brokers {
				if want >= 0 && b.NodeID == want {
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

// tenures is one broker's view of its coordinator terms: per group shard,
// the shard's Raft term in which its in-memory groups were built and
// loaded (Broker.tenures).
type tenures struct {
	mu     sync.Mutex // held only briefly, never while proposing or waiting
	shards map[int32]*tenure
}

// tenure is one group shard's.
type tenure struct {
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
// coordinates group now (it leads the group's shard and is ready in its
// term, node.GroupShardTerm), else code NOT_COORDINATOR so that the
// client rediscovers (COORDINATOR_NOT_AVAILABLE while no group shard
// exists). It also returns the shard and its term.
//
// The first request of a group of a shard in a new term begins a new
// tenure of the shard: it fences the shard's replicated group membership
// records at the term and reads them (node.BeginGroupTenure), then
// group.Coordinator.BeginShardTenure forgets every group of that shard
// held in memory (they date from an earlier term of this broker, and
// another coordinator may have served them since) and loads the records:
// those groups keep their generation and members (see core/group's
// doc.go, "Coordinator moves"). Groups of other shards, and committed
// offsets, are not touched. Requests arriving meanwhile wait for it. If
// the fence fails the request is answered NOT_COORDINATOR and the next
// one tries again.
func groupCoordinator(ctx context.Context, rc *RequestContext, groupID string) (*group.Coordinator, shardTerm, int16, error) {
	if rc.Broker == nil {
		return nil, shardTerm{}, 0, errNoBroker
	}
	idx, ok := rc.Broker.Node.GroupShardOf(groupID)
	if !ok {
		return nil, shardTerm{}, kerr.CoordinatorNotAvailable.Code, nil
	}
	st, code := shardCoordinator(ctx, rc.Broker, idx)
	if code != 0 {
		return nil, shardTerm{}, code, nil
	}
	return rc.Broker.Groups, st, 0, nil
}

// shardTerm names a group shard's tenure.
type shardTerm struct {
	shard int32
	term  uint64
}

// shardCoordinator makes sure b coordinates group shard idx in its
// current term (beginning the tenure if needed; see groupCoordinator).
func shardCoordinator(ctx context.Context, b *Broker, idx int32) (shardTerm, int16) {
	term, ok := b.Node.GroupShardTerm(ctx, idx)
	if !ok {
		return shardTerm{}, kerr.NotCoordinator.Code
	}
	st := shardTerm{shard: idx, term: term}
	ts := &b.tenures
	for range tenureWaitsMax {
		ts.mu.Lock()
		if ts.shards == nil {
			ts.shards = map[int32]*tenure{}
		}
		tn := ts.shards[idx]
		if tn == nil {
			tn = &tenure{}
			ts.shards[idx] = tn
		}
		if tn.term == term {
			ts.mu.Unlock()
			return st, 0
		}
		if ch := tn.loading; ch != nil {
			ts.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return shardTerm{}, kerr.NotCoordinator.Code
			}
		}
		ch := make(chan struct{})
		tn.loading = ch
		ts.mu.Unlock()
		ok := beginTenure(ctx, b, idx, term)
		ts.mu.Lock()
		if ok {
			tn.term = term
		}
		tn.loading = nil
		close(ch)
		ts.mu.Unlock()
		if !ok {
			return shardTerm{}, kerr.NotCoordinator.Code
		}
		return st, 0
	}
	return shardTerm{}, kerr.NotCoordinator.Code
}

// beginTenure fences and loads the group records of shard idx for term
// (only one request at a time runs it per shard, see shardCoordinator).
func beginTenure(ctx context.Context, b *Broker, idx int32, term uint64) bool {
	states, err := b.Node.BeginGroupTenure(ctx, idx, term)
	if err != nil {
		b.log.Warn("groups: cannot begin coordinator tenure", "shard", idx, "term", term, "err", err)
		return false
	}
	recs := make([]group.Record, len(states))
	for i, st := range states {
		recs[i] = group.Record{Group: st.Group, Term: st.Term, Seq: st.Seq, Data: st.Data}
	}
	n := b.Groups.BeginShardTenure(idx, term, recs)
	b.log.Info("groups: coordinator tenure began", "shard", idx, "term", term, "records", len(recs), "loaded", n)
	return true
}

// coordinatorPollEvery is how often a blocked JoinGroup or SyncGroup
// checks that its broker still coordinates groups.
const coordinatorPollEvery = 250 * time.Millisecond

// whileCoordinator derives a context that is cancelled, besides with ctx,
// when this broker stops coordinating the group shard st in its term (the
// shard's leadership moved): a member blocked in JoinGroup or SyncGroup is then
// answered NOT_COORDINATOR instead of waiting for a rebalance that will
// never complete here. lost reports whether that happened. The watcher
// polls on the node's clock and exits when stop is called.
func whileCoordinator(ctx context.Context, rc *RequestContext, st shardTerm) (wctx context.Context, lost func() bool, stop func()) {
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
				if cur, ok := rc.Broker.Node.GroupShardTerm(wctx, st.shard); wctx.Err() == nil && (!ok || cur != st.term) {
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
