package server

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Handler serves one decoded request.
//
// Contract:
//   - A non-nil response is written to the client. Its Key must be the
//     request's key; its version is normally the request's version (take it
//     from req.ResponseKind()). Kafka-level failures go in the response's
//     ErrorCode fields.
//   - A nil response with a nil error sends nothing (acks=0 produce). The
//     request still occupies its place in the response order until the
//     handler returns.
//   - A non-nil error means the connection is broken: it is logged and the
//     connection is closed, without a response.
//   - A panic is recovered, logged with the API key, and closes only this
//     connection.
//   - ctx is cancelled when the connection is torn down (client gone,
//     protocol error, Shutdown deadline passed). Handlers must return
//     promptly once it is: Shutdown waits for every handler.
//   - Handlers of one connection run concurrently with each other (up to
//     Config.MaxInFlightPerConn); the connection writes their responses in
//     request order regardless of when they finish.
type Handler func(ctx context.Context, rc *RequestContext, req kmsg.Request) (kmsg.Response, error)

// API is one Kafka API key served by a Registry: the inclusive version range
// it accepts and advertises in ApiVersions, and its handler.
type API struct {
	Key        int16
	MinVersion int16
	MaxVersion int16
	Handler    Handler
	// Ordered makes a connection start this key's handlers in request
	// order: each starts once the previous one of the same key on that
	// connection returned or called RequestContext.ReleaseOrder. Produce
	// needs it: pipelined acks=0 requests and idempotent batches must
	// reach the log in the order the client sent them. Its handler
	// releases the order once every partition's entry is queued to its
	// shard, so the next request proposes while this one waits for its
	// commit (several in one group commit), and answers still leave in
	// request order (the writer).
	Ordered bool
	// KeepsNoRequestBytes promises that nothing (the handler, anything it
	// started, its response) refers to the request's bytes once the
	// handler returned: the connection then reuses the request's frame
	// buffer for a later request. Produce sets it (its records are copied
	// into the Raft proposal, the response holds no slice of the request).
	KeepsNoRequestBytes bool
}

// Registry is an immutable table of the APIs a Server serves. ApiVersions
// answers from it, so what is advertised is exactly what is dispatched.
//
// Registry values are read-only after NewRegistry returns and are safe for
// concurrent use; tests build their own (for example the built-in APIs plus
// a test-only handler) instead of mutating shared state.
type Registry struct {
	apis map[int16]API
	// keys is the ApiVersions table, sorted by key.
	keys []kmsg.ApiVersionsResponseApiKey
}

// NewRegistry builds a Registry from apis. It panics on an invalid entry
// (negative key or versions, min > max, nil handler, a key kmsg does not
// know, a max version kmsg cannot encode) or on a key registered twice:
// these are programming errors in the broker, not runtime conditions.
func NewRegistry(apis ...API) *Registry {
	r := &Registry{apis: make(map[int16]API, len(apis))}
	for _, a := range apis {
		checkAPI(a)
		if _, dup := r.apis[a.Key]; dup {
			panic(fmt.Sprintf("server: API key %d (%s) registered twice", a.Key, kmsg.NameForKey(a.Key)))
		}
		r.apis[a.Key] = a
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = a.Key, a.MinVersion, a.MaxVersion
		r.keys = append(r.keys, k)
	}
	slices.SortFunc(r.keys, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
	return r
}

func checkAPI(a API) {
	if a.Key < 0 || a.MinVersion < 0 || a.MaxVersion < a.MinVersion || a.Handler == nil {
		panic(fmt.Sprintf("server: invalid API registration key=%d min=%d max=%d nilHandler=%v",
			a.Key, a.MinVersion, a.MaxVersion, a.Handler == nil))
	}
	req := kmsg.RequestForKey(a.Key)
	if req == nil {
		panic(fmt.Sprintf("server: API key %d unknown to kmsg", a.Key))
	}
	if a.MaxVersion > req.MaxVersion() {
		panic(fmt.Sprintf("server: API key %d (%s) max version %d above kmsg's %d",
			a.Key, kmsg.NameForKey(a.Key), a.MaxVersion, req.MaxVersion()))
	}
}

// Lookup returns the API registered for key.
func (r *Registry) Lookup(key int16) (API, bool) {
	a, ok := r.apis[key]
	return a, ok
}

// APIKeys returns the ApiVersions table (sorted by key); the caller owns the
// returned slice.
func (r *Registry) APIKeys() []kmsg.ApiVersionsResponseApiKey {
	return slices.Clone(r.keys)
}

// Built-in APIs: each API file (NN_name.go, kfake style) calls register from
// its init function. The table is written only during package
// initialisation and is read-only afterwards; BuiltinAPIs hands out copies.
var (
	builtinMu   sync.Mutex
	builtinAPIs = map[int16]API{}
)

// register adds a built-in API. It panics on a double registration.
func register(a API) {
	checkAPI(a)
	builtinMu.Lock()
	defer builtinMu.Unlock()
	if _, dup := builtinAPIs[a.Key]; dup {
		panic(fmt.Sprintf("server: built-in API key %d (%s) registered twice", a.Key, kmsg.NameForKey(a.Key)))
	}
	builtinAPIs[a.Key] = a
}

// BuiltinAPIs returns the APIs registered by this package's API files, sorted
// by key. Pass them (plus any extra APIs) to NewRegistry.
func BuiltinAPIs() []API {
	builtinMu.Lock()
	defer builtinMu.Unlock()
	out := make([]API, 0, len(builtinAPIs))
	for _, a := range builtinAPIs {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b API) int { return int(a.Key) - int(b.Key) })
	return out
}

// DefaultRegistry is NewRegistry(BuiltinAPIs()...).
func DefaultRegistry() *Registry { return NewRegistry(BuiltinAPIs()...) }
