// Package server is Chronik's Kafka wire front end: framing, request header
// and body decoding (with kmsg), dispatch to one handler per API key, and
// response encoding. The broker's logic (topics, produce, fetch, groups)
// sits behind the handlers; this package knows only the protocol.
//
// # Structure
//
//   - registry.go: Handler, API, Registry. Each API lives in its own file
//     named after its key (18_api_versions.go, kfake style), opening with
//     the versions it serves and its behaviour, and registers itself from
//     init with register(API{...}); a double registration panics. The
//     built-in table is written only during package initialisation; a
//     Server dispatches from an immutable *Registry (Config.Registry,
//     default NewRegistry(BuiltinAPIs()...)), and ApiVersions answers from
//     that same Registry, so what is advertised is what is dispatched.
//     Tests build their own Registry with extra handlers.
//   - server.go: Config, Server.Serve(net.Listener), Server.Shutdown.
//   - conn.go: one connection: framing, limits, pipelining, ordering.
//   - header.go: RequestContext, request header parsing, sentinel errors.
//   - memsem.go: the request-memory semaphore shared by all connections.
//   - fetch_session.go, fetch_context.go: the broker's fetch session cache
//     (KIP-227) and how a Fetch request uses it (01_fetch.go reads).
//
// # Wire format handled here
//
//	request:  size int32 | api_key int16 | api_version int16 | correlation_id int32
//	          | client_id nullable string (int16 length, -1 = null)
//	          | [tagged fields, header v2 = flexible versions only] | body
//	response: size int32 | correlation_id int32
//	          | [tagged fields, header v1 = flexible versions except ApiVersions] | body
//
// # Concurrency contract
//
// Serve may run on several listeners at once; Shutdown may be called once
// from any goroutine. Each connection has a reader goroutine (framing,
// decoding, dispatch), a writer goroutine, and one goroutine per dispatched
// request running its Handler. Handlers of one connection run concurrently
// (at most Config.MaxInFlightPerConn) and must be safe for that; they get a
// context cancelled when their connection is torn down and must then return
// promptly. Every goroutine is owned: Shutdown returns only after all of
// them have exited.
//
// # Invariants
//
//   - Responses on a connection leave in request order, whatever order the
//     handlers finish in (the writer waits for each request's result in
//     arrival order).
//   - At most MaxInFlightPerConn requests per connection are dispatched and
//     unanswered; the next one is not read past its size prefix until one
//     is answered.
//   - Request frames held in memory, across all connections, never exceed
//     MaxRequestMemoryBytes: a frame's bytes are reserved before its buffer
//     is allocated and released when its handler returns. (Response
//     buffers and anything a handler retains are not counted.)
//   - A claimed frame size is checked against MaxRequestBytes before
//     anything is allocated for it.
//   - Bad bytes from a client (size, header, body), an unknown API key, a
//     version outside the registered range, a handler error or a handler
//     panic close that connection only, with a log line; nothing a client
//     sends can crash the process or disturb other connections.
//
// # Consumer groups
//
// API keys 8-16, 42 and 47: FindCoordinator, JoinGroup, SyncGroup,
// Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups,
// DescribeGroups, DeleteGroups, OffsetDelete.
//
// Coordinator placement: the coordinator of a group is the current leader
// of its group shard (core/node/groupshards.go; Kafka's __consumer_offsets
// partition of the group), because the group's committed offsets and
// records live in that shard: the coordinator's commits are local
// proposals to the leader, and its offset reads come from a replica that
// has applied every earlier commit (node.GroupShardTerm runs a ReadIndex
// barrier once per shard term). FindCoordinator, on any broker, answers
// that broker's id, host and port (COORDINATOR_NOT_AVAILABLE while no
// leader is known). Every group request checks the group's shard first
// (groupCoordinator); a broker that does not lead it answers
// NOT_COORDINATOR, so clients rediscover. The transaction coordinator is
// the controller leader (Node.CoordinatorTerm).
//
// Membership (core/group, in memory) lives on the coordinator only. When
// a group shard's leadership moves, the old coordinator's groups are stale:
// its members get NOT_COORDINATOR (a blocked JoinGroup/SyncGroup is
// answered within 250 ms by a per-call leadership watch; heartbeats and
// commits on their next request; a stopped broker closes its coordinator,
// answering its waiters NOT_COORDINATOR) and rediscover; the new
// coordinator has loaded the groups' replicated records
// (10_find_coordinator.go, group_persist.go), so members of a recorded
// group go on at their generation or epoch, and the others rejoin;
// committed offsets survive in the controller shard. The first group request of a new coordinator term on a
// broker purges every group held from an earlier term (all members leave,
// then the groups are deleted; offsets are untouched), so a broker that
// regains leadership never serves stale membership. The stale groups of a
// broker that lost leadership linger (unserved) until their sessions
// expire or it becomes coordinator again.
//
// Groups that only have committed offsets (admin commits, or every member
// gone after a coordinator move) are merged in from the offset store:
// ListGroups and DescribeGroups show them Empty with protocol type "";
// DeleteGroups and OffsetDelete act on them.
//
// # Kafka pitfalls handled (see ../shared/kafka-pitfalls.md; each has a test)
//
//   - ApiVersions above our max is answered, not dropped: UNSUPPORTED_VERSION,
//     the request's correlation id, a v0 body with our ApiVersions range
//     (KIP-511), so clients retry lower. kgo's first request (v5) takes this
//     path in the tests.
//   - The ApiVersions response header is v0 even for the flexible v3+;
//     other flexible responses get header v1 (one empty tagged-fields byte).
//   - Responses in request order under pipelining.
//   - A nil response (acks=0 produce) sends nothing and keeps the order.
//   - Only tested versions are advertised: ApiVersions 0-4, each exercised
//     by kgo and by raw byte-level tests.
//   - Null arrays in request bodies decode (kmsg) and reach the handler.
//   - MaxRequestBytes defaults to Kafka's socket.request.max.bytes (100 MiB)
//     and must stay above max.message.bytes, so that oversized records get
//     MESSAGE_TOO_LARGE from the produce handler instead of a closed
//     connection.
//   - --- Admin and offsets area (Metadata, CreateTopics, DeleteTopics,
//     CreatePartitions, DeleteRecords, DescribeConfigs,
//     IncrementalAlterConfigs, DescribeCluster, ListOffsets,
//     OffsetForLeaderEpoch; tests in admin_*_test.go) ---
//   - Metadata advertises each broker's configured host/port (never
//     0.0.0.0) and never a leader outside the broker list (-1 with
//     LEADER_NOT_AVAILABLE instead); every broker gives the same answer.
//   - Metadata v0 with an empty topic array means all topics; null means
//     all at v1+; an empty array at v1+ means none.
//   - AllowAutoTopicCreation (v4+) is honoured together with the node's
//     setting; invalid names are INVALID_TOPIC_EXCEPTION, never created.
//   - CreateTopics with null ReplicaAssignment/Configs arrays is legal;
//     NumPartitions/ReplicationFactor -1 take defaults; validate-only runs
//     the controller's own checks.
//   - Leader epochs are real (Raft terms): ListOffsets and
//     OffsetForLeaderEpoch fence on CurrentLeaderEpoch (FENCED_LEADER_EPOCH
//     / UNKNOWN_LEADER_EPOCH) and OffsetForLeaderEpoch answers from the
//     log's epochs, so a kgo consumer keeps its position across a leader
//     change (KIP-320; tested by stopping the leader).
//   - DescribeConfigs answers BROKER resources (empty list) instead of
//     failing, and reports defaults for every allowed topic config.
//   - DescribeLogDirs (v1-4, as Kafka 4) describes the broker's one log
//     dir, its data directory, with every replica it hosts (segment bytes
//     on disk); unknown topics and partitions are absent, not errors; v4
//     filesystem figures are -1 unless the binary supplies statfs.
//   - ---- Data path (Produce, Fetch, InitProducerId, DescribeProducers;
//     tests in data_*_test.go) ----
//   - Produce v0 is advertised (librdkafka's gzip/snappy/lz4) and v0-v2
//     answered UNSUPPORTED_VERSION (Kafka 4); acks=0 gets no response;
//     INVALID_REQUIRED_ACKS for acks other than 0/1/-1.
//   - A connection's Produce requests run one at a time in request order
//     (API.Ordered), as Kafka handles a connection's requests: pipelined
//     acks=0 and idempotent in-flight batches keep their order.
//   - All four codecs pass through untouched; CORRUPT_MESSAGE on a bad
//     CRC-32C and MESSAGE_TOO_LARGE above max.message.bytes, nothing
//     written, the broker keeps serving.
//   - Idempotent duplicates answer success with the original offset.
//   - A fetch inside a batch returns the whole batch; kgo consumers
//     starting mid-batch get exactly the records from their offset.
//   - Fetch sessions (KIP-227) are served fully, as Kafka's FetchManager:
//     incremental fetches, forgotten partitions, epochs
//     (INVALID_FETCH_SESSION_EPOCH), unknown or evicted sessions
//     (FETCH_SESSION_ID_NOT_FOUND), the v13 topic-id boundary
//     (FETCH_SESSION_TOPIC_ID_ERROR), a bounded per-node cache with Kafka's
//     eviction rules, and SessionID 0 (a plain full fetch) when no slot can
//     be had; a full fetch's high watermark is never -1. kgo consumers use
//     them by default (TestDataThreeNodes/fetch-sessions counts the
//     incremental fetches); fetch_session.go has the rules. A connection's
//     Fetch requests run one at a time in request order (API.Ordered), so
//     pipelined fetches of one session meet its epochs in order.
//   - KIP-74: the first partition with data returns a whole batch even
//     above MaxBytes/PartitionMaxBytes.
//   - Long polls wait on the replica's high-watermark channel, not a timer
//     loop, and return as soon as data arrives.
//   - Fetch v13+ by topic id (UNKNOWN_TOPIC_ID); leader-epoch fencing
//     (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH) from v9.
//
// Consumer groups:
//
//   - Only tested versions are advertised: FindCoordinator 0-6, JoinGroup
//     0-9, SyncGroup 0-5, Heartbeat 0-4, LeaveGroup 0-5, OffsetCommit 2-9,
//     OffsetFetch 1-9, ListGroups 0-5, DescribeGroups 0-5, DeleteGroups 0-2,
//     OffsetDelete 0, each sent on the wire at every version
//     (TestGroupRawVersions) and by kgo/kadm. OffsetCommit starts at 2 and
//     OffsetFetch at 1 (KIP-896 minimums).
//   - JoinGroup v0 has no rebalance timeout: the session timeout stands in.
//     v4+ new members get MEMBER_ID_REQUIRED and rejoin with the id
//     (KIP-394); before v7 the response's protocol name is non-nullable
//     (sent as "" on errors).
//   - LeaveGroup v0-2 carry one member and one top-level code; v3+ per
//     member, and a member named by instance id alone is removed
//     administratively.
//   - Static members (KIP-345) restarting quickly cause no rebalance: same
//     generation and assignment (TestGroupConsumersSingleNode/static).
//   - The coordinator moving (controller failover) loses no committed
//     offset, and consumers rejoin without loss or repeats once they are
//     back (TestGroupConsumersThreeNodes/failover).
//   - OffsetCommit outcomes are per partition as in Kafka, although the
//     controller commits all or nothing: the valid partitions of a request
//     with failing ones are committed in a second proposal.
//   - OffsetFetch for a partition without a commit: offset -1, epoch -1,
//     metadata "", no error; null topics (v2+) fetch every offset.
//   - DescribeGroups v3+ AuthorizedOperations is INT32_MIN unless
//     requested; an unknown group is Dead with no error (v0-5).
//   - OffsetDelete answers GROUP_SUBSCRIBED_TO_TOPIC for topics a Stable
//     consumer group's members subscribe to (from their
//     ConsumerMemberMetadata); while such a group rebalances every topic
//     counts as subscribed (Kafka's rule for unknown subscriptions);
//     NON_EMPTY_GROUP for a non-"consumer" group with members.
//
// Group deviations from Kafka: FindCoordinator key type 1 (transactions)
// names the same coordinator (txn.go), other types INVALID_REQUEST; offsets never expire (OffsetCommit v2-4
// retention is ignored); KIP-848 consumer groups (68, 69) have no mixed
// classic members and answer FENCED_MEMBER_EPOCH after a coordinator move
// (see core/group, "Consumer protocol"); membership is not
// persisted (see core/group); DeleteGroups of an offsets-only group races
// with a member joining it meanwhile (its offsets are deleted anyway); the
// leadership watch polls with the real clock.
//
// Not handled: ControlledShutdown v0's header v0 (no client id) — key 7 is
// not registered, so such a request closes the connection; SASL/TLS.
package server
