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
//
// Not handled: ControlledShutdown v0's header v0 (no client id) — key 7 is
// not registered, so such a request closes the connection; SASL/TLS.
package server
