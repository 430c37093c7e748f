// Package netio is Chronik's network seam: the Network interface through
// which a node accepts and opens stream connections (Kafka clients, Raft
// traffic), with a real implementation (NewOS), a deterministic simulated one
// (Sim) for tests and the simulator, and a dragonboat Raft transport built on
// any Network (NewTransportFactory).
//
// # OS
//
// NewOS is TCP through the operating system, TCP_NODELAY on.
//
// # Sim
//
// Sim is an in-memory network of named hosts, designed to run inside a
// testing/synctest bubble, where its delays are virtual time (it also works,
// slowly, in real time). Sim.Host(name) is a host's Network: it listens on
// "name:port" or ":port" (port 0 picks a free one) and dials "other:port".
// Dialling a port nobody listens on fails with a *net.OpError wrapping
// syscall.ECONNREFUSED. A dialled end's local port is drawn from (seed,
// host, remote address, instant, count of the host's dials to that
// address at that instant), not from the order of dials, so traces that
// show ports reproduce even when goroutines dial in another order.
//
// Connections implement net.Conn fully: Read, Write, Close, CloseWrite,
// deadlines (timer-driven; timeouts wrap os.ErrDeadlineExceeded and are
// net.Error timeouts), LocalAddr/RemoteAddr. Each direction buffers up to
// simPipeBytesMax bytes (in flight plus unread); a writer blocks beyond it.
// Closing one end lets the peer read what was sent, then io.EOF; the peer's
// later writes fail with EPIPE. Closing a listener unblocks Accept with
// net.ErrClosed.
//
// Links. A link is the ordered pair (from, to) of host names and has a
// LinkRule (SetLink). A Write is cut into chunks of at most simChunkBytesMax;
// each chunk is judged when written:
//   - link cut (PartitionOneWay, Partition, Isolate) or lost with
//     DropProbability: the chunk is discarded and the whole connection is
//     reset at once (a stream cannot lose bytes silently; a real TCP
//     connection would time out, we fail immediately for determinism). Both
//     ends then fail every Read and Write with an error wrapping
//     syscall.ECONNRESET; unread data is lost.
//   - otherwise it is delivered at now + transmission time (if
//     BandwidthBytesPerSec is set: chunks queue on the link's wire, shared by
//     all connections on the link) + Delay + uniform [0, Jitter), but never
//     before an earlier chunk of the same connection: byte order within a
//     connection is always kept.
//
// A rule change affects chunks written and dials started after it; an idle
// connection across a new partition notices on its next write (as TCP does).
// Dials take one round trip (Delay of both links). A dial across a cut link,
// in either direction since the handshake needs both, fails after
// simCutDialTimeout with a timeout error (ETIMEDOUT), or earlier with ctx's
// error. Heal clears every rule and isolation.
//
// Crash(host) resets every connection of the host and closes its listeners;
// the host may Listen again (a restart).
//
// Determinism: every random decision about a chunk is drawn from a stream
// named by (seed, from, to, the virtual instant, the chunk's bytes, and how
// many chunks with the same bytes the link saw at that instant before it),
// never from a shared or global source nor from a per-connection one:
// traffic on one connection never perturbs another's drops and jitter,
// even on the same link and at the same instant, and neither does the
// order in which connections were dialled (goroutine order, for dials of
// one instant). Given the same seed, the same chunks at the same instants
// are lost and delayed alike. SetDelaySkew adds a constant per-link delay
// drawn from (seed, from, to), so that messages sent at one
// instant over different links arrive at distinct instants and their order
// is virtual time's, not the scheduler's. (Goroutine scheduling still
// orders writers and dials of one instant; run simulations with
// GOMAXPROCS=1 for replay.)
//
// Concurrency contract of Sim: all methods are safe for concurrent use. No
// goroutine ever blocks on time or on a channel while holding a sync.Mutex
// (a synctest bubble cannot advance time while anyone waits on a mutex):
// waiting is done on channels (a per-direction "changed" channel that is
// closed and replaced on every state change, semaphore channels serialising
// Reads and Writes, deadline channels) and critical sections only update
// state. Lock order: Sim.mu is never taken while holding a pipe's mutex and
// vice versa. Delivery uses one time.AfterFunc timer per direction, stopped
// on close or reset; the Sim starts no goroutine that outlives a call.
//
// Invariants (checked with panics that print the values; the O(n) checks
// only with -tags invariants):
//   - per direction, queued bytes == buffered + in-flight bytes <=
//     simPipeBytesMax;
//   - in-flight chunks are sorted by delivery time.
//
// # Raft transport
//
// NewTransportFactory(n) makes a dragonboat config.TransportFactory. A
// transport listens on NodeHostConfig.ListenAddress (or RaftAddress) and dials
// targets through n. Message batches and snapshot chunks are marshalled on
// send and framed (format in transport.go: magic, kind, length <=
// framePayloadBytesMax, CRC32-C of the payload). A bad frame, an undecodable
// payload, or a chunk the ChunkHandler rejects closes that connection; it is
// logged, never a panic. Close closes the listener and every connection the
// transport accepted or opened, and waits for its accept loop and readers.
// WithAckObserver adds a callback that sees followers' progress: every
// follower answer to a leader (accepted ReplicateResp with its match
// index, HeartbeatResp) as a batch is decoded, before dragonboat gets it,
// and every Heartbeat a leader sends (its match index for the follower,
// capped at its commit index): core/node builds its ISR from it. It runs
// on reader and sender goroutines and must not block.
package netio
