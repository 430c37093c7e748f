package netio

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kfakeListenFn makes kfake listen through n. kfake asks for
// "127.0.0.1:<port>"; the host part is replaced by listenHost ("" keeps it).
func kfakeListenFn(n Network, listenHost string) func(network, addr string) (net.Listener, error) {
	return func(_, addr string) (net.Listener, error) {
		if listenHost != "" {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			addr = net.JoinHostPort(listenHost, port)
		}
		return n.Listen(addr)
	}
}

// produceConsume runs a real franz-go client against a kfake cluster that
// listens through server, the client dialling through client.
func produceConsume(t *testing.T, server Network, listenHost string, client Network) {
	t.Helper()
	const topic, recordCount = "chronik-test", 20
	cluster, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.ListenFn(kfakeListenFn(server, listenHost)),
		kfake.SeedTopics(1, topic),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cluster.ListenAddrs()...),
		kgo.Dialer(KgoDialer(client)),
		kgo.DefaultProduceTopic(topic),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	for i := range recordCount {
		r := &kgo.Record{Value: fmt.Appendf(nil, "record-%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	got := 0
	for got < recordCount {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, recordCount, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("record-%d", got); string(r.Value) != want {
				t.Fatalf("record %d = %q, want %q", got, r.Value, want)
			}
			got++
		})
	}
}

// TestKgoOverOS runs franz-go against kfake listening through NewOS().
func TestKgoOverOS(t *testing.T) {
	produceConsume(t, NewOS(), "", NewOS())
}
