package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const describeClusterKey = 60 // flexible from v0: exercises header v1

// gatedDescribeCluster is a test API whose handler, per correlation id,
// reports that it started and then waits for its gate.
type gatedDescribeCluster struct {
	started chan int32
	gates   map[int32]chan struct{}
	done    chan int32
}

func newGated(corrs ...int32) *gatedDescribeCluster {
	g := &gatedDescribeCluster{
		started: make(chan int32, 16),
		gates:   map[int32]chan struct{}{},
		done:    make(chan int32, 16),
	}
	for _, c := range corrs {
		g.gates[c] = make(chan struct{})
	}
	return g
}

func (g *gatedDescribeCluster) api() API {
	return API{Key: describeClusterKey, MinVersion: 0, MaxVersion: 1, Handler: g.handle}
}

func (g *gatedDescribeCluster) handle(ctx context.Context, rc *RequestContext, req kmsg.Request) (kmsg.Response, error) {
	g.started <- rc.CorrelationID
	if gate := g.gates[rc.CorrelationID]; gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.ClusterID = "c" + string(rune('0'+rc.CorrelationID%10))
	g.done <- rc.CorrelationID
	return resp, nil
}

func describeCluster(corr int32) []byte {
	return frameRequest(kmsg.NewPtrDescribeClusterRequest(), corr, nil)
}

// readDescribeCluster reads a DescribeCluster v0 response, checking its
// header is v1 (one empty tagged-fields byte after the correlation id).
func readDescribeCluster(t *testing.T, c net.Conn) (int32, *kmsg.DescribeClusterResponse) {
	t.Helper()
	corr, b := readFrame(t, c)
	if len(b) == 0 || b[0] != 0 {
		t.Fatalf("corr %d: response header lacks the empty tagged-fields byte: %x", corr, b)
	}
	resp := kmsg.NewPtrDescribeClusterResponse()
	if err := resp.ReadFrom(b[1:]); err != nil {
		t.Fatalf("corr %d: decode: %v", corr, err)
	}
	return corr, resp
}

// Three pipelined requests whose handlers finish in reverse order are
// answered in request order.
func TestPipelinedResponsesInRequestOrder(t *testing.T) {
	g := newGated(1, 2, 3)
	ts := startServer(t, Config{Registry: withAPIs(g.api())})
	c := dial(t, ts.addr)
	send(t, c, describeCluster(1), describeCluster(2), describeCluster(3))
	for range 3 {
		recv(t, g.started)
	}
	for _, corr := range []int32{3, 2, 1} {
		close(g.gates[corr])
		if got := recv(t, g.done); got != corr {
			t.Fatalf("handler %d finished, want %d", got, corr)
		}
	}
	for want := int32(1); want <= 3; want++ {
		corr, resp := readDescribeCluster(t, c)
		if corr != want || resp.ClusterID != "c"+string(rune('0'+want)) {
			t.Fatalf("response %d (cluster %q), want %d", corr, resp.ClusterID, want)
		}
	}
}

// A nil response (acks=0 produce) sends nothing; the next response follows.
func TestNilResponseSendsNothing(t *testing.T) {
	api := API{Key: describeClusterKey, MaxVersion: 1, Handler: func(_ context.Context, rc *RequestContext, req kmsg.Request) (kmsg.Response, error) {
		if rc.CorrelationID == 1 {
			return nil, nil
		}
		return req.ResponseKind(), nil
	}}
	ts := startServer(t, Config{Registry: withAPIs(api)})
	c := dial(t, ts.addr)
	send(t, c, describeCluster(1), describeCluster(2))
	if corr, _ := readDescribeCluster(t, c); corr != 2 {
		t.Fatalf("first response has correlation id %d, want 2", corr)
	}
}

// The header carries the client id (null reads as "") and the version.
func TestRequestContext(t *testing.T) {
	got := make(chan RequestContext, 2)
	api := API{Key: describeClusterKey, MaxVersion: 1, Handler: func(_ context.Context, rc *RequestContext, req kmsg.Request) (kmsg.Response, error) {
		got <- *rc
		return req.ResponseKind(), nil
	}}
	ts := startServer(t, Config{Registry: withAPIs(api)})
	c := dial(t, ts.addr)
	id := "my-client"
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	send(t, c, frameRequest(req, 5, &id), frameRequest(req, 6, nil))
	// Handlers run concurrently: collect both, then check by corr.
	byCorr := map[int32]RequestContext{}
	for range 2 {
		rc := recv(t, got)
		byCorr[rc.CorrelationID] = rc
	}
	for _, want := range []struct {
		corr int32
		id   string
	}{{5, "my-client"}, {6, ""}} {
		rc := byCorr[want.corr]
		if rc.CorrelationID != want.corr || rc.ClientID != want.id || rc.Version != 1 || rc.APIKey != describeClusterKey || rc.Registry == nil || rc.Logger == nil {
			t.Fatalf("RequestContext %+v, want corr %d client %q", rc, want.corr, want.id)
		}
	}
}

// Null arrays are legal in requests (a broker crashed on them): Metadata v1
// with a null topic list (all topics) and CreateTopics with a null
// assignment list reach the handler.
func TestNullArraysReachHandler(t *testing.T) {
	seen := make(chan kmsg.Request, 2)
	h := func(_ context.Context, _ *RequestContext, req kmsg.Request) (kmsg.Response, error) {
		seen <- req
		return req.ResponseKind(), nil
	}
	ts := startServer(t, Config{Registry: withAPIs(API{Key: 3, MaxVersion: 1, Handler: h}, API{Key: 19, MaxVersion: 4, Handler: h})})
	c := dial(t, ts.addr)

	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 1
	meta.Topics = nil // encoded as -1
	send(t, c, frameRequest(meta, 1, nil))
	if got := recv(t, seen).(*kmsg.MetadataRequest); got.Topics != nil {
		t.Fatalf("Metadata topics %v, want null", got.Topics)
	}
	readFrame(t, c)

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 4
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = "t", 1, 1
	ct.Topics = append(ct.Topics, topic)
	frame := frameRequest(ct, 2, nil)
	// The topic is followed by assignments (int32 count, empty = 0) and
	// configs (int32 count 0) and then the timeout and validate_only.
	// Rewrite the assignments count to -1 (null).
	tail := len(frame) - (4 + 4 + 4 + 1) // assignments, configs, timeout, validate
	if !bytes.Equal(frame[tail:tail+4], []byte{0, 0, 0, 0}) {
		t.Fatalf("unexpected encoding %x", frame)
	}
	binary.BigEndian.PutUint32(frame[tail:], 0xffffffff)
	send(t, c, frame)
	if got := recv(t, seen).(*kmsg.CreateTopicsRequest); len(got.Topics) != 1 || len(got.Topics[0].ReplicaAssignment) != 0 {
		t.Fatalf("CreateTopics decoded as %+v", got)
	}
	readFrame(t, c)
}

// Bad input on one connection closes that connection with a log line, never
// allocates a claimed size, and never disturbs other connections.
func TestMalformedInputClosesOnlyThatConnection(t *testing.T) {
	reg := withAPIs(API{Key: describeClusterKey, MaxVersion: 1, Handler: func(_ context.Context, _ *RequestContext, req kmsg.Request) (kmsg.Response, error) {
		return req.ResponseKind(), nil
	}})
	ts := startServer(t, Config{Registry: reg})
	// other stays open throughout and keeps being answered.
	other := dial(t, ts.addr)
	otherCorr := int32(0)
	hdr := func(key, version int16, rest ...byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(key))
		b = binary.BigEndian.AppendUint16(b, uint16(version))
		b = binary.BigEndian.AppendUint32(b, 77)
		return append(b, rest...)
	}
	for _, tc := range []struct {
		name  string
		input []byte
		log   string
	}{
		{"http-garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "frame size"},
		{"claims-2GiB", []byte{0x80, 0, 0, 0}, "frame size"},
		{"claims-2GiB-minus-1", []byte{0x7f, 0xff, 0xff, 0xff, 1, 2, 3}, "frame size"},
		{"zero-length", []byte{0, 0, 0, 0}, "frame size"},
		{"negative-length", []byte{0xff, 0xff, 0xff, 0xfe}, "frame size"},
		{"header-too-short", rawFrame([]byte{0, 18, 0, 0, 0}), "malformed request header"},
		{"unknown-key", rawFrame(hdr(9999, 0, 0xff, 0xff)), "unknown API key"},
		{"known-to-kafka-not-registered", rawFrame(hdr(0, 9, 0xff, 0xff)), "unknown API key"},
		{"version-below-min", rawFrame(hdr(18, -1, 0xff, 0xff)), "unsupported API version"},
		{"version-above-max-not-apiversions", rawFrame(hdr(describeClusterKey, 2, 0xff, 0xff, 0)), "unsupported API version"},
		{"client-id-negative-length", rawFrame(hdr(18, 0, 0xff, 0xf0)), "malformed request header"},
		{"client-id-past-frame", rawFrame(hdr(18, 0, 0, 50, 'a')), "malformed request header"},
		{"flexible-header-tags-truncated", rawFrame(hdr(18, 3, 0xff, 0xff, 2, 0)), "malformed request header"},
		{"flexible-header-tag-size-past-frame", rawFrame(hdr(18, 3, 0xff, 0xff, 1, 0, 0x7f)), "malformed request header"},
		{"body-truncated", rawFrame(hdr(18, 3, 0xff, 0xff, 0, 10, 'a')), "malformed request body"},
		{"body-array-count-huge", rawFrame(hdr(describeClusterKey, 0, 0xff, 0xff, 0, 0xff)), "malformed request body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			c := dial(t, ts.addr)
			send(t, c, tc.input)
			expectClosed(t, c)
			runtime.ReadMemStats(&after)
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
				t.Errorf("allocated %d bytes for a rejected frame", grown)
			}
			waitLog(t, ts.logs, tc.log)
			otherCorr++
			req := kmsg.NewPtrApiVersionsRequest()
			send(t, other, frameRequest(req, otherCorr, nil))
			if r := readAPIVersions(t, other, otherCorr, 0); r.ErrorCode != 0 || len(r.ApiKeys) == 0 {
				t.Fatalf("other connection: %+v", r)
			}
			apiVersionsOK(t, ts.addr)
		})
	}
}

// A frame cut short by the client closing closes the connection without a
// response; other connections are unaffected.
func TestTruncatedFrameThenClose(t *testing.T) {
	ts := startServer(t, Config{})
	c := dial(t, ts.addr)
	frame := describeCluster(1)
	send(t, c, frame[:len(frame)-3])
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	apiVersionsOK(t, ts.addr)
}

// A panicking handler is recovered and logged with its API key; only its
// connection closes. A handler error closes its connection too.
func TestHandlerPanicAndErrorCloseOnlyThatConnection(t *testing.T) {
	api := API{Key: describeClusterKey, MaxVersion: 1, Handler: func(_ context.Context, rc *RequestContext, req kmsg.Request) (kmsg.Response, error) {
		switch rc.CorrelationID {
		case 1:
			panic("boom")
		case 2:
			return nil, errors.New("broken pipe to the log")
		case 3:
			return kmsg.NewPtrMetadataResponse(), nil // wrong key
		}
		return req.ResponseKind(), nil
	}}
	ts := startServer(t, Config{Registry: withAPIs(api)})
	for corr, log := range map[int32]string{
		1: "DescribeCluster (key 60) v0: boom",
		2: "broken pipe to the log",
		3: "response key 3 for request key 60",
	} {
		other := dial(t, ts.addr)
		c := dial(t, ts.addr)
		send(t, c, describeCluster(corr))
		expectClosed(t, c)
		waitLog(t, ts.logs, log)
		send(t, other, describeCluster(9))
		if got, _ := readDescribeCluster(t, other); got != 9 {
			t.Fatalf("other connection: corr %d", got)
		}
	}
}
