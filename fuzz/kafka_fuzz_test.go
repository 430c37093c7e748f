package fuzz

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/group"
	"github.com/chronik-go/chronik/core/node"
	"github.com/chronik-go/chronik/core/raftlog"
	"github.com/chronik-go/chronik/diskio"
	"github.com/chronik-go/chronik/netio"
	"github.com/chronik-go/chronik/server"
)

// The broker FuzzKafkaRequests talks to: one real single-node broker
// (diskio.Sim disk, loopback TCP, real clock) per fuzzing process, started
// on first use and shut down by TestMain after every test has run.
var (
	brokerOnce sync.Once
	brokerErr  error
	broker     *server.Broker
	brokerAddr string
	brokerLogs panicWatch
)

// Bounds that keep one input short and the broker's footprint small: the
// fuzz body's fields that make a request wait, or start Raft shards, are
// clamped before sending (see clampRequest).
const (
	fuzzIOTimeout      = 10 * time.Second
	fuzzFetchWaitMsMax = 50
	fuzzRebalanceMsMax = 200
	fuzzTopicsMax      = 2
	fuzzPartitionsMax  = 2
	fuzzTopic          = "fz"
	// fuzzFetchSessionSlots bounds the broker's fetch session cache.
	fuzzFetchSessionSlots = 4
)

// panicWatch is a log sink that remembers whether any line mentions a
// panic (the server recovers handler panics and logs them).
type panicWatch struct {
	mu    sync.Mutex
	seen  atomic.Bool
	first []byte
}

func (w *panicWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("panic")) && w.seen.CompareAndSwap(false, true) {
		w.mu.Lock()
		w.first = bytes.Clone(p)
		w.mu.Unlock()
	}
	return len(p), nil
}

func (w *panicWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.first)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startFuzzBroker() error {
	raftlog.Install(slog.New(slog.DiscardHandler), slog.LevelError)
	raftAddr, err := freePort()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	log := slog.New(slog.NewTextHandler(&brokerLogs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := server.StartBroker(context.Background(), server.BrokerConfig{
		Node: node.Config{
			NodeID: 1, RaftAddr: raftAddr, Host: "127.0.0.1", Port: int32(port), Peers: map[uint64]string{1: raftAddr},
			DataDir: "/data", FS: diskio.NewSim(1), Net: netio.NewOS(), Clock: clock.Real(),
			RTTMillisecond: 5, ElectionRTT: 10, HeartbeatRTT: 1,
			DefaultPartitions: 1,
		},
		Listener: ln,
		Server:   server.Config{MaxRequestBytes: 1 << 20, MaxInFlightPerConn: 8, IdleTimeout: 5 * time.Second},
		Groups:   group.Options{InitialRebalanceDelay: -1, SessionTimeoutMin: time.Millisecond, SessionTimeoutMax: time.Second},
		// A small fetch session cache: inputs that open sessions reach
		// the full-cache and eviction paths.
		FetchSessions: server.FetchSessionConfig{Slots: fuzzFetchSessionSlots},
		Logger:        log,
	})
	if err != nil {
		return err
	}
	broker, brokerAddr = b, ln.Addr().String()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r := b.Node.CreateTopics(ctx, []node.TopicSpec{{Name: fuzzTopic, Partitions: 1, ReplicationFactor: 1}}, false)[0]
		cancel()
		if r.ErrorCode == 0 || r.ErrorCode == 36 { // TOPIC_ALREADY_EXISTS
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("create topic %s: code %d", fuzzTopic, r.ErrorCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r := b.Node.Produce(ctx, fuzzTopic, 0, plainBatch([]byte("seed")))
		cancel()
		if r.ErrorCode == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("partition %s/0 never served a produce", fuzzTopic)
}

// stopFuzzBroker is called by TestMain.
func stopFuzzBroker() {
	if broker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = broker.Shutdown(ctx)
}

// requestFrame frames body as one request: size, key, version,
// correlation id, client id, and the tag buffer of flexible headers.
func requestFrame(key, version int16, corr int32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "fuzz"...)
	if flexibleRequest(key, version) {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func flexibleRequest(key, version int16) bool {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return false
	}
	req.SetVersion(version)
	return req.IsFlexible()
}

// clampRequest bounds the fields of a decodable request that would make
// the broker wait (Fetch, JoinGroup) or start many Raft shards
// (CreateTopics, CreatePartitions); everything else is sent as fuzzed.
func clampRequest(key, version int16, body []byte) []byte {
	req := kmsg.RequestForKey(key)
	if req == nil {
		return body
	}
	req.SetVersion(version)
	if req.ReadFrom(body) != nil {
		return body
	}
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		r.MaxWaitMillis = min(r.MaxWaitMillis, fuzzFetchWaitMsMax)
	case *kmsg.JoinGroupRequest:
		r.RebalanceTimeoutMillis = min(r.RebalanceTimeoutMillis, fuzzRebalanceMsMax)
		r.SessionTimeoutMillis = min(r.SessionTimeoutMillis, fuzzRebalanceMsMax)
	case *kmsg.CreateTopicsRequest:
		r.Topics = r.Topics[:min(len(r.Topics), fuzzTopicsMax)]
		for i := range r.Topics {
			r.Topics[i].NumPartitions = min(r.Topics[i].NumPartitions, fuzzPartitionsMax)
			r.Topics[i].ReplicationFactor = min(r.Topics[i].ReplicationFactor, 1)
			r.Topics[i].ReplicaAssignment = nil
		}
	case *kmsg.CreatePartitionsRequest:
		r.Topics = r.Topics[:min(len(r.Topics), fuzzTopicsMax)]
		for i := range r.Topics {
			r.Topics[i].Count = min(r.Topics[i].Count, fuzzPartitionsMax+1)
			r.Topics[i].Assignment = nil
		}
	default:
		return body
	}
	return req.AppendTo(nil)
}

// readFrame reads one response frame.
func readFrame(c net.Conn) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return b, err
}

// closedConn reports whether err means the server closed the connection
// (rather than it staying open without answering).
func closedConn(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return err != nil
}

// checkResponse decodes a response frame of a request the registry serves.
func checkResponse(t *testing.T, key, version int16, frame []byte) {
	body := frame[4:]
	if flexibleRequest(key, version) && key != 18 { // ApiVersions answers with header v0
		var err error
		if body, err = skipTags(body); err != nil {
			t.Fatalf("key %d v%d: response header: %v", key, version, err)
		}
	}
	resp := kmsg.ResponseForKey(key)
	resp.SetVersion(version)
	if key == 18 && len(body) >= 2 && binary.BigEndian.Uint16(body) == 35 { // UNSUPPORTED_VERSION answers v0
		resp.SetVersion(0)
	}
	if err := resp.ReadFrom(body); err != nil {
		t.Fatalf("key %d v%d: undecodable response (%d bytes): %v", key, version, len(body), err)
	}
}

// skipTags skips one tag buffer (uvarint count, then uvarint tag, uvarint
// size and data per tag).
func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[k:]
	for range n {
		if _, k = binary.Uvarint(b); k <= 0 { // tag
			return nil, errors.New("bad tag")
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, errors.New("bad tag size")
		}
		b = b[k+int(size):]
	}
	return b, nil
}

// stillServes checks a fresh connection gets an ApiVersions answer.
func stillServes(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", brokerAddr, fuzzIOTimeout)
	if err != nil {
		t.Fatalf("broker no longer accepts connections: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(fuzzIOTimeout))
	if _, err := c.Write(apiVersionsFrame(3, 7)); err != nil {
		t.Fatalf("broker no longer serves: write: %v", err)
	}
	frame, err := readFrame(c)
	if err != nil || len(frame) < 6 || binary.BigEndian.Uint32(frame) != 7 || binary.BigEndian.Uint16(frame[4:]) != 0 {
		t.Fatalf("broker no longer serves ApiVersions: %x %v", frame[:min(len(frame), 16)], err)
	}
}

// fuzzKeys is the registry's table: what the input's key index picks from.
var fuzzKeys = server.DefaultRegistry().APIKeys()

// pick maps the input's key and version selectors to a request key and
// version: a registered key (or, for the last index, the raw key), at a
// version from its minimum to one past its maximum (or, for a negative
// selector, the raw version).
func pick(keySel uint16, verSel int16) (key, version int16, registered bool) {
	i := int(keySel) % (len(fuzzKeys) + 1)
	if i == len(fuzzKeys) {
		key = int16(keySel >> 1)
		for _, k := range fuzzKeys {
			if k.ApiKey == key {
				return key, verSel, true
			}
		}
		return key, verSel, false
	}
	k := fuzzKeys[i]
	if verSel < 0 {
		return k.ApiKey, verSel, verSel >= k.MinVersion && verSel <= k.MaxVersion
	}
	v := k.MinVersion + int16(int(verSel)%int(k.MaxVersion-k.MinVersion+2))
	return k.ApiKey, v, v <= k.MaxVersion
}

func fuzzSeedRequests(f *testing.F) {
	for i, k := range fuzzKeys {
		req := kmsg.RequestForKey(k.ApiKey)
		if d, ok := req.(interface{ Default() }); ok {
			d.Default()
		}
		req.SetVersion(k.MaxVersion)
		body := req.AppendTo(nil)
		sel := k.MaxVersion - k.MinVersion
		f.Add(uint16(i), sel, body, false)
		f.Add(uint16(i), sel, body[:len(body)/2], false)
		f.Add(uint16(i), sel+1, body, false)
		f.Add(uint16(i), int16(0), body, true)
		f.Add(uint16(i), int16(0), requestFrame(k.ApiKey, k.MaxVersion, 1, body), true)
	}
	// Requests on the topic the broker holds.
	seeds := []kmsg.Request{
		&kmsg.ProduceRequest{Version: 9, Acks: -1, TimeoutMillis: 1000, Topics: []kmsg.ProduceRequestTopic{{Topic: fuzzTopic,
			Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: plainBatch([]byte("x"))}}}}},
		&kmsg.ProduceRequest{Version: 9, Acks: 0, TimeoutMillis: 1000, Topics: []kmsg.ProduceRequestTopic{{Topic: fuzzTopic,
			Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: plainBatch([]byte("y"))}}}}},
		&kmsg.FetchRequest{Version: 12, MaxWaitMillis: 10, MaxBytes: 1 << 20, Topics: []kmsg.FetchRequestTopic{{Topic: fuzzTopic,
			Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}},
		// Fetch sessions: open one (epoch 0), an incremental fetch with
		// forgotten topics on a session id, and a close (epoch -1).
		&kmsg.FetchRequest{Version: 12, MaxWaitMillis: 10, MaxBytes: 1 << 20, SessionEpoch: 0, Topics: []kmsg.FetchRequestTopic{{Topic: fuzzTopic,
			Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, FetchOffset: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}}},
		&kmsg.FetchRequest{Version: 12, MaxWaitMillis: 10, MaxBytes: 1 << 20, SessionID: 1, SessionEpoch: 1, Topics: []kmsg.FetchRequestTopic{{Topic: fuzzTopic,
			Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 1, FetchOffset: 3, PartitionMaxBytes: 1, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}},
			ForgottenTopics: []kmsg.FetchRequestForgottenTopic{{Topic: fuzzTopic, Partitions: []int32{0, 0, 7}}}},
		&kmsg.FetchRequest{Version: 16, MaxWaitMillis: 10, MaxBytes: 1 << 20, SessionID: 1, SessionEpoch: -1, Topics: []kmsg.FetchRequestTopic{{TopicID: [16]byte{1},
			Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20, CurrentLeaderEpoch: -1, LogStartOffset: -1}}}},
			ForgottenTopics: []kmsg.FetchRequestForgottenTopic{{TopicID: [16]byte{1}, Partitions: []int32{0}}}},
		&kmsg.MetadataRequest{Version: 12, Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr(fuzzTopic)}}},
		&kmsg.ListOffsetsRequest{Version: 7, ReplicaID: -1, Topics: []kmsg.ListOffsetsRequestTopic{{Topic: fuzzTopic,
			Partitions: []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -1, CurrentLeaderEpoch: -1}}}}},
		&kmsg.OffsetCommitRequest{Version: 8, Group: "g", Generation: -1, Topics: []kmsg.OffsetCommitRequestTopic{{Topic: fuzzTopic,
			Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}},
		&kmsg.JoinGroupRequest{Version: 5, Group: "g2", SessionTimeoutMillis: 100, RebalanceTimeoutMillis: 100, ProtocolType: "consumer",
			Protocols: []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}},
		&kmsg.CreateTopicsRequest{Version: 5, TimeoutMillis: 1000, Topics: []kmsg.CreateTopicsRequestTopic{{Topic: "fz2", NumPartitions: 1, ReplicationFactor: 1}}},
		&kmsg.DeleteRecordsRequest{Version: 2, TimeoutMillis: 1000, Topics: []kmsg.DeleteRecordsRequestTopic{{Topic: fuzzTopic,
			Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 1}}}}},
		&kmsg.InitProducerIDRequest{Version: 4, TransactionTimeoutMillis: -1, ProducerID: -1, ProducerEpoch: -1},
	}
	for _, r := range seeds {
		for i, k := range fuzzKeys {
			if k.ApiKey == r.Key() {
				f.Add(uint16(i), r.GetVersion()-k.MinVersion, r.AppendTo(nil), false)
			}
		}
	}
	f.Add(uint16(0), int16(0), []byte{0x7f, 0xff, 0xff, 0xff}, true)
	f.Add(uint16(0), int16(0), []byte{0, 0, 0, 12, 0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff, 0xde, 0xad}, true)
}

// FuzzKafkaRequests sends one request (the input picks a key and version
// from the registry, or raw ones, and supplies the body; or, raw, supplies
// whole frames) to a real single-node broker. The broker must never panic;
// a framed request is answered with a decodable response carrying its
// correlation id, or the connection is closed (an acks=0 produce may go
// unanswered: an ApiVersions pipelined after it must then be answered);
// raw bytes get well-formed frames or a close; and afterwards a fresh
// connection's ApiVersions still succeeds.
func FuzzKafkaRequests(f *testing.F) {
	fuzzSeedRequests(f)
	f.Fuzz(func(t *testing.T, keySel uint16, verSel int16, body []byte, raw bool) {
		brokerOnce.Do(func() { brokerErr = startFuzzBroker() })
		if brokerErr != nil {
			t.Fatalf("start broker: %v", brokerErr)
		}
		c, err := net.DialTimeout("tcp", brokerAddr, fuzzIOTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(fuzzIOTimeout))
		if raw {
			sendRaw(t, c.(*net.TCPConn), body)
		} else {
			sendFramed(t, c, keySel, verSel, body)
		}
		if brokerLogs.seen.Load() {
			t.Fatalf("the broker logged a panic: %s", brokerLogs.String())
		}
		stillServes(t)
	})
}

func sendRaw(t *testing.T, c *net.TCPConn, data []byte) {
	if _, err := c.Write(data); err != nil && !closedConn(err) {
		t.Fatalf("write: %v", err)
	}
	c.CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil && !closedConn(err) {
		t.Fatalf("raw %x: the server neither answered nor closed: %v", data[:min(len(data), 32)], err)
	}
	checkFrames(t, out)
}

func sendFramed(t *testing.T, c net.Conn, keySel uint16, verSel int16, body []byte) {
	key, version, registered := pick(keySel, verSel)
	const corr, probe = int32(0x1234), int32(0x1235)
	if registered {
		body = clampRequest(key, version, body)
	}
	frame := append(requestFrame(key, version, corr, body), apiVersionsFrame(3, probe)...)
	if _, err := c.Write(frame); err != nil {
		if closedConn(err) {
			return
		}
		t.Fatalf("write: %v", err)
	}
	answered := false
	for {
		resp, err := readFrame(c)
		if err != nil {
			if !closedConn(err) {
				t.Fatalf("key %d v%d (%d bytes): the server neither answered nor closed: %v", key, version, len(body), err)
			}
			return
		}
		switch got := int32(binary.BigEndian.Uint32(resp)); {
		case got == corr && !answered:
			answered = true
			if registered {
				checkResponse(t, key, version, resp)
			}
		case got == probe:
			if !answered && !(key == 0 && registered) {
				t.Fatalf("key %d v%d: the request after it was answered, it was not", key, version)
			}
			return
		default:
			t.Fatalf("key %d v%d: response with correlation id %d (answered %v)", key, version, got, answered)
		}
	}
}
