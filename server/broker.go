package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/meta"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/raftlog"
)

// BrokerConfig is one Chronik process: the replicated node and its Kafka
// listener.
type BrokerConfig struct {
	// Node configures the replicated core. Node.Host/Port are what Metadata
	// advertises; they must be reachable by clients.
	Node node.Config
	// Listener accepts Kafka clients (from a netio.Network: TCP in
	// production, netio.Sim in the simulator). The broker closes it.
	Listener net.Listener
	// Server holds the wire limits; its Logger and Broker are filled in.
	Server Config
	// Groups configures the consumer group coordinator (Incarnation is
	// filled in).
	Groups group.Options
	// FetchSessions bounds this node's fetch session cache (KIP-227).
	FetchSessions FetchSessionConfig
	Logger        *slog.Logger
}

// Broker ties a node.Node to a Server: the object every API handler reaches
// through RequestContext.Broker.
type Broker struct {
	Node *node.Node
	// Groups coordinates consumer groups whose coordinator is this node:
	// those of the group shards it leads (membership in memory; committed
	// offsets and records in the group shards).
	Groups *group.Coordinator
	// NodeID is this broker's Kafka broker id (the node id).
	NodeID int32

	// fetchSessions is this node's fetch session cache (in memory: a
	// restart loses every session).
	fetchSessions *fetchSessionCache
	// groupWriter proposes the coordinator's group membership records.
	groupWriter *groupWriter
	// tenures are the terms this broker's groups were built in, per
	// group shard (groupCoordinator). A field, not a package-level map
	// keyed by broker: that kept every broker a process ever started (the
	// simulator starts thousands), and its lazy creation by the first
	// group request was state one schedule left to the next.
	tenures tenures

	clock    clock.Clock // the node's clock (the simulator's per-node clock)
	log      *slog.Logger
	srv      *Server
	serveErr chan error
	stopOnce sync.Once
}

// StartBroker starts the node, then serves Kafka on cfg.Listener.
func StartBroker(ctx context.Context, cfg BrokerConfig) (*Broker, error) {
	if cfg.Listener == nil {
		return nil, errors.New("server: BrokerConfig.Listener is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Node.Logger == nil {
		cfg.Node.Logger = log
	}
	gopts := cfg.Groups
	// Member ids must never repeat across restarts of this coordinator:
	// the incarnation mixes the node id with the (node's) clock at start.
	gclock := cfg.Node.Clock
	if gclock == nil {
		gclock = clock.Real()
	}
	incarnation := cfg.Node.NodeID<<48 ^ uint64(gclock.Now().UnixNano())
	gopts.Incarnation = incarnation
	var nodeRef atomic.Pointer[node.Node]
	gopts.Topics = groupTopics(&nodeRef)
	// Tenures are per group shard (groupCoordinator); N is fixed once the
	// shards exist, and no group is served before.
	gopts.ShardOf = func(g string) int32 {
		n := nodeRef.Load()
		if n == nil {
			return 0
		}
		return meta.GroupShardIndex(g, n.GroupShardCount())
	}
	// Membership records go to the group's shard (see group_persist.go);
	// a new coordinator tenure loads them (groupCoordinator).
	gw := newGroupWriter(log.With("component", "groups"), nodeRef.Load)
	gopts.Persist = gw.persist
	groups := group.New(gclock, log.With("component", "groups"), gopts)
	// The node's offset expiry keeps the offsets of groups with members
	// here, and waits after a coordinator move until live members had
	// their longest session timeout to rejoin, except for groups the
	// coordinator loaded (Known).
	cfg.Node.GroupActive = groups.Active
	// Groups loaded at the start of a tenure need no wait: their
	// membership is known.
	cfg.Node.GroupKnown = groups.Known
	// A group whose last offset expired is forgotten if it is Empty, as
	// Kafka drops it (Delete refuses a group with members).
	cfg.Node.GroupExpired = func(g string) { groups.Delete([]string{g}) }
	if cfg.Node.OffsetsExpirySettle == 0 && gopts.SessionTimeoutMax > 0 {
		cfg.Node.OffsetsExpirySettle = gopts.SessionTimeoutMax
	}
	n, err := node.Start(ctx, cfg.Node)
	if err != nil {
		groups.Close()
		gw.close(false)
		cfg.Listener.Close()
		return nil, fmt.Errorf("server: start node: %w", err)
	}
	nodeRef.Store(n)
	b := &Broker{
		Node: n, Groups: groups, groupWriter: gw,
		NodeID: int32(cfg.Node.NodeID), clock: gclock, log: log, serveErr: make(chan error, 1),
	}
	scfg := cfg.Server
	scfg.Logger = log
	scfg.Broker = b
	srv, err := New(scfg)
	if err != nil {
		cfg.Listener.Close()
		b.Groups.Close()
		gw.close(false)
		_ = n.Close(ctx)
		return nil, err
	}
	go gw.run()
	b.srv = srv
	b.fetchSessions = newFetchSessionCache(gclock, cfg.FetchSessions, srv.Metrics(), incarnation)
	nodeID := cfg.Node.NodeID
	srv.metrics.tickBatches = func() (uint64, uint64) { return raftlog.TickBatches(nodeID) }
	srv.metrics.stages = n.Stages()
	go func() { b.serveErr <- srv.Serve(cfg.Listener) }()
	return b, nil
}

// Metrics returns the Kafka front end's counters.
func (b *Broker) Metrics() *Metrics { return b.srv.Metrics() }

// Shutdown stops accepting connections, lets in-flight requests finish
// until ctx ends, then closes the node (which hands its leaderships to other
// replicas where it can). Safe to call more than once.
func (b *Broker) Shutdown(ctx context.Context) error {
	var err error
	b.stopOnce.Do(func() {
		serr := b.srv.Shutdown(ctx)
		if e := <-b.serveErr; e != nil && !errors.Is(e, ErrServerClosed) && serr == nil {
			serr = e
		}
		b.Groups.Close()
		b.groupWriter.close(true)
		nerr := b.Node.Close(context.WithoutCancel(ctx))
		err = errors.Join(serr, nerr)
	})
	return err
}

// groupTopics is the consumer-protocol coordinator's view of the topics
// (group.Options.Topics): the node's topics, rebuilt only when the
// controller view's topology moved. The coordinator calls it with its lock
// held, so calls never overlap; the mutex only documents that.
func groupTopics(ref *atomic.Pointer[node.Node]) func() []group.TopicInfo {
	var mu sync.Mutex
	var version uint64
	var topics []group.TopicInfo
	return func() []group.TopicInfo {
		n := ref.Load()
		if n == nil {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		v, ts := n.GroupTopics(version)
		if v != version {
			version = v
			topics = make([]group.TopicInfo, len(ts))
			for i, t := range ts {
				topics[i] = group.TopicInfo{Name: t.Name, ID: t.ID, Partitions: t.Partitions}
			}
		}
		return topics
	}
}
