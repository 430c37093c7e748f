package server

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/metric"
	"github.com/chronik-go/chronik/core/node"
)

// apiKeyLimit bounds the per-API metric arrays; kmsg knows fewer keys.
const apiKeyLimit = 128

// Metrics counts what the wire layer sees. Safe for concurrent use; written
// in the Prometheus text format by WritePrometheus (no client library: the
// format is a few lines and keeps the dependency list short).
type Metrics struct {
	requests      [apiKeyLimit]atomic.Uint64 // dispatched requests by API key
	failed        [apiKeyLimit]atomic.Uint64 // handler Go errors or panics (connection closed)
	latencyNs     [apiKeyLimit]atomic.Uint64 // summed handler time
	connsOpen     atomic.Int64
	connsAccepted atomic.Uint64
	// tlsHandshakeFailures counts TLS connections closed because their
	// handshake failed or timed out.
	tlsHandshakeFailures atomic.Uint64
	saslSuccesses        atomic.Uint64 // authentications and re-authentications
	saslFailures         atomic.Uint64

	// Fetch sessions (KIP-227), written by the broker's session cache.
	fetchSessions          atomic.Int64  // sessions in the cache
	fetchSessionPartitions atomic.Int64  // partitions cached, over all sessions
	fetchSessionEvictions  atomic.Uint64 // sessions evicted to make room
	fetchSessionRefused    atomic.Uint64 // full fetches that got no session (no slot)
	fetchIncremental       atomic.Uint64 // incremental fetches served from a session
	// tickBatches, if set (StartBroker, before serving), reports this
	// node's Raft tick batches (raftlog.TickBatches).
	tickBatches func() (batches, ticks uint64)
	// stages, if set (StartBroker), is the node's produce stage metrics.
	stages *node.Stages

	// The produce stages the front end owns (DESIGN.md, "Where a
	// produce's time goes"): frame read to handler start (waiting behind
	// the connection's earlier produce: requests of one connection are
	// handled in order), and handler return to response written.
	produceQueue, produceAnswer metric.Histogram
}

func (m *Metrics) observe(key int16, d time.Duration, failed bool) {
	if key < 0 || int(key) >= apiKeyLimit {
		return
	}
	m.requests[key].Add(1)
	m.latencyNs[key].Add(uint64(d))
	if failed {
		m.failed[key].Add(1)
	}
}

// WritePrometheus writes every metric in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	p("# HELP chronik_connections_open Kafka client connections open.\n# TYPE chronik_connections_open gauge\nchronik_connections_open %d\n", m.connsOpen.Load())
	p("# HELP chronik_connections_accepted_total Kafka client connections accepted.\n# TYPE chronik_connections_accepted_total counter\nchronik_connections_accepted_total %d\n", m.connsAccepted.Load())
	p("# HELP chronik_tls_handshake_failures_total Kafka client TLS handshakes that failed or timed out.\n# TYPE chronik_tls_handshake_failures_total counter\nchronik_tls_handshake_failures_total %d\n", m.tlsHandshakeFailures.Load())
	p("# HELP chronik_sasl_authentications_total SASL authentications (and re-authentications), by outcome.\n# TYPE chronik_sasl_authentications_total counter\nchronik_sasl_authentications_total{outcome=\"success\"} %d\nchronik_sasl_authentications_total{outcome=\"failure\"} %d\n", m.saslSuccesses.Load(), m.saslFailures.Load())
	p("# HELP chronik_fetch_sessions Fetch sessions (KIP-227) in this node's cache.\n# TYPE chronik_fetch_sessions gauge\nchronik_fetch_sessions %d\n", m.fetchSessions.Load())
	p("# HELP chronik_fetch_session_partitions Partitions cached in fetch sessions.\n# TYPE chronik_fetch_session_partitions gauge\nchronik_fetch_session_partitions %d\n", m.fetchSessionPartitions.Load())
	p("# HELP chronik_fetch_session_evictions_total Fetch sessions evicted to make room for new ones.\n# TYPE chronik_fetch_session_evictions_total counter\nchronik_fetch_session_evictions_total %d\n", m.fetchSessionEvictions.Load())
	p("# HELP chronik_fetch_session_refused_total Full fetches answered without a session because no cache slot could be had.\n# TYPE chronik_fetch_session_refused_total counter\nchronik_fetch_session_refused_total %d\n", m.fetchSessionRefused.Load())
	p("# HELP chronik_fetch_incremental_total Incremental fetches served from a fetch session.\n# TYPE chronik_fetch_incremental_total counter\nchronik_fetch_incremental_total %d\n", m.fetchIncremental.Load())
	p("# HELP chronik_requests_total Kafka requests handled, by API.\n# TYPE chronik_requests_total counter\n")
	for k := range apiKeyLimit {
		if n := m.requests[k].Load(); n > 0 {
			p("chronik_requests_total{api=%q} %d\n", kmsg.NameForKey(int16(k)), n)
		}
	}
	p("# HELP chronik_request_failures_total Requests whose handler failed and closed the connection, by API.\n# TYPE chronik_request_failures_total counter\n")
	for k := range apiKeyLimit {
		if n := m.failed[k].Load(); n > 0 {
			p("chronik_request_failures_total{api=%q} %d\n", kmsg.NameForKey(int16(k)), n)
		}
	}
	p("# HELP chronik_request_seconds_total Time spent in request handlers, by API.\n# TYPE chronik_request_seconds_total counter\n")
	for k := range apiKeyLimit {
		if n := m.latencyNs[k].Load(); n > 0 {
			p("chronik_request_seconds_total{api=%q} %.6f\n", kmsg.NameForKey(int16(k)), float64(n)/1e9)
		}
	}
	if err == nil {
		err = m.writeStages(w)
	}
	if m.tickBatches != nil {
		b, n := m.tickBatches()
		p("# HELP chronik_raft_tick_batches_total Times a Raft shard of this node found more than ElectionRTT/2 ticks queued at once (its step worker fell behind; dragonboat's \"had N LocalTick msgs in one batch\", logged at most once per 10 s).\n# TYPE chronik_raft_tick_batches_total counter\nchronik_raft_tick_batches_total %d\n", b)
		p("# HELP chronik_raft_ticks_batched_total Ticks held in those batches.\n# TYPE chronik_raft_ticks_batched_total counter\nchronik_raft_ticks_batched_total %d\n", n)
	}
	return err
}

// produceStageMetric is the histogram of the produce path's stages,
// labelled stage= queue, frontend, propose, apply, result, answer (in
// order; DESIGN.md, "Where a produce's time goes").
const produceStageMetric = "chronik_produce_stage_seconds"

// writeStages writes the produce stage histograms and the Raft log's
// SaveRaftState (write + fsync) timing.
func (m *Metrics) writeStages(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "# HELP %s Time a produce spends in each stage (queue: frame read to handler start; frontend: to proposal submitted; propose: to its apply starting, covering Raft, the log write and fsync and commit; apply: the apply call; result: apply end to the proposer woken; answer: handler return to response written).\n# TYPE %s histogram\n", produceStageMetric, produceStageMetric); err != nil {
		return err
	}
	st := m.stages
	type named struct {
		stage string
		h     *metric.Histogram
	}
	hs := []named{{"queue", &m.produceQueue}}
	if st != nil {
		hs = append(hs, named{"frontend", &st.FrontEnd}, named{"propose", &st.Propose}, named{"apply", &st.Apply}, named{"result", &st.Result})
	}
	hs = append(hs, named{"answer", &m.produceAnswer})
	for _, x := range hs {
		if err := x.h.WritePrometheus(w, produceStageMetric, `stage="`+x.stage+`"`); err != nil {
			return err
		}
	}
	if st == nil {
		return nil
	}
	const save = "chronik_raft_logdb_save_seconds"
	if _, err := fmt.Fprintf(w, "# HELP %s Duration of the Raft log's SaveRaftState calls (entries written and fsynced for a batch of shards).\n# TYPE %s histogram\n", save, save); err != nil {
		return err
	}
	if err := st.LogDB.Save.WritePrometheus(w, save, ""); err != nil {
		return err
	}
	const fsync = "chronik_raft_logdb_fsync_seconds"
	if _, err := fmt.Fprintf(w, "# HELP %s Duration of each fsync of the Raft log's files (inside SaveRaftState: the rest of that call is the write).\n# TYPE %s histogram\n", fsync, fsync); err != nil {
		return err
	}
	if err := st.LogDB.Fsync.WritePrometheus(w, fsync, ""); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "# HELP chronik_raft_logdb_entries_total Raft entries saved to the Raft log.\n# TYPE chronik_raft_logdb_entries_total counter\nchronik_raft_logdb_entries_total %d\n"+
		"# HELP chronik_raft_logdb_entry_bytes_total Command bytes of the Raft entries saved to the Raft log.\n# TYPE chronik_raft_logdb_entry_bytes_total counter\nchronik_raft_logdb_entry_bytes_total %d\n"+
		"# HELP chronik_produce_stage_missed_total Produces left out of the propose, apply and result stages (their apply call was no longer remembered).\n# TYPE chronik_produce_stage_missed_total counter\nchronik_produce_stage_missed_total %d\n",
		st.LogDB.Entries.Load(), st.LogDB.EntryBytes.Load(), st.ApplyTimingMissed.Load())
	return err
}
