package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func wantOurRanges(t *testing.T, keys []kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	want := DefaultRegistry().APIKeys()
	if len(keys) != len(want) {
		t.Fatalf("ApiKeys %+v, want %+v", keys, want)
	}
	for i := range want {
		if keys[i].ApiKey != want[i].ApiKey || keys[i].MinVersion != want[i].MinVersion || keys[i].MaxVersion != want[i].MaxVersion {
			t.Fatalf("ApiKeys %+v, want %+v", keys, want)
		}
	}
}

// A real client connects (its first ApiVersions is v5, above our max, so it
// goes through the UNSUPPORTED_VERSION downgrade) and then issues
// ApiVersions at each version we serve, chosen by capping its max version.
func TestKgoApiVersions(t *testing.T) {
	ts := startServer(t, Config{})
	for _, maxV := range []int16{-1, 0, 1, 2, 3, 4} {
		name := "default"
		opts := []kgo.Opt{kgo.SeedBrokers(ts.addr)}
		if maxV >= 0 {
			name = fmt.Sprintf("max-v%d", maxV)
			vs := kversion.Stable()
			vs.SetMaxKeyVersion(apiVersionsKey, maxV)
			opts = append(opts, kgo.MaxVersions(vs))
		}
		t.Run(name, func(t *testing.T) {
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			kresp, err := cl.Request(ctx, kmsg.NewPtrApiVersionsRequest())
			if err != nil {
				t.Fatal(err)
			}
			resp := kresp.(*kmsg.ApiVersionsResponse)
			wantV := maxV
			if maxV < 0 {
				wantV = 4
			}
			if resp.Version != wantV {
				t.Errorf("response version %d, want %d", resp.Version, wantV)
			}
			if resp.ErrorCode != 0 {
				t.Fatalf("error code %d", resp.ErrorCode)
			}
			wantOurRanges(t, resp.ApiKeys)
			if maxV < 0 {
				// kgo opened with v5 and was downgraded by our answer.
				waitLog(t, ts.logs, "answering UNSUPPORTED_VERSION")
			}
		})
	}
}

// Kafka answers an ApiVersions above its max with UNSUPPORTED_VERSION, the
// request's correlation id, a v0 body and its ApiVersions range; the body is
// not parsed (v99's layout is unknown), and the connection stays usable.
func TestApiVersionsAboveMax(t *testing.T) {
	ts := startServer(t, Config{})
	v5 := kmsg.NewPtrApiVersionsRequest()
	v5.Version = 5
	v5.ClientSoftwareName, v5.ClientSoftwareVersion = "kgo", "1.0"
	// key 18, version 99, correlation id 42, null client id, garbage.
	v99 := []byte{0, 18, 0, 99, 0, 0, 0, 42, 0xff, 0xff, 0xde, 0xad, 0xbe}
	for _, tc := range []struct {
		name  string
		frame []byte
		corr  int32
	}{
		{"v5", frameRequest(v5, 1234, nil), 1234},
		{"v99-garbage-body", rawFrame(v99), 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			send(t, c, tc.frame)
			resp := readAPIVersions(t, c, tc.corr, 0)
			if resp.ErrorCode != kerr.UnsupportedVersion.Code {
				t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
			}
			if len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 || resp.ApiKeys[0].MinVersion != 0 || resp.ApiKeys[0].MaxVersion != 4 {
				t.Fatalf("ApiKeys %+v, want [{18 0 4}]", resp.ApiKeys)
			}
			// Retrying at our max works on the same connection.
			v4 := kmsg.NewPtrApiVersionsRequest()
			v4.Version = 4
			v4.ClientSoftwareName, v4.ClientSoftwareVersion = "kgo", "1.0"
			send(t, c, frameRequest(v4, tc.corr+1, nil))
			if r := readAPIVersions(t, c, tc.corr+1, 4); r.ErrorCode != 0 {
				t.Fatalf("v4 retry: error %d", r.ErrorCode)
			}
		})
	}
}

// The ApiVersions response header is v0 at every version: the bytes after
// the correlation id are exactly the response body, with no tagged-fields
// byte, even for the flexible v3 and v4.
func TestApiVersionsHeaderAlwaysV0(t *testing.T) {
	ts := startServer(t, Config{})
	c := dial(t, ts.addr)
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "chronik-test", "0.1"
		id := "raw"
		send(t, c, frameRequest(req, int32(100+v), &id))
		corr, got := readFrame(t, c)
		if corr != int32(100+v) {
			t.Fatalf("v%d: correlation id %d", v, corr)
		}
		want := kmsg.NewPtrApiVersionsResponse()
		want.Version = v
		want.ApiKeys = DefaultRegistry().APIKeys()
		setFeatures(want)
		if v >= 3 && (len(want.FinalizedFeatures) != 1 || want.FinalizedFeatures[0].Name != "transaction.version" || want.FinalizedFeatures[0].MaxVersionLevel != 2) {
			t.Fatalf("v%d: finalized features %+v, want transaction.version 2", v, want.FinalizedFeatures)
		}
		if wantBytes := want.AppendTo(nil); !bytes.Equal(got, wantBytes) {
			t.Fatalf("v%d: bytes after correlation id\n got %x\nwant %x (a leading 00 would be a v1 header)", v, got, wantBytes)
		}
	}
}

// v3+ validates the client software name and version as Kafka does.
func TestApiVersionsInvalidSoftwareName(t *testing.T) {
	ts := startServer(t, Config{})
	c := dial(t, ts.addr)
	for i, name := range []string{"", "-kgo", "kgo lib", "kgo."} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = name, "1.0"
		send(t, c, frameRequest(req, int32(i), nil))
		if r := readAPIVersions(t, c, int32(i), 3); r.ErrorCode != kerr.InvalidRequest.Code {
			t.Fatalf("name %q: error %d, want INVALID_REQUEST", name, r.ErrorCode)
		}
	}
	// v0-v2 carry no software name: no validation.
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 2
	send(t, c, frameRequest(req, 9, nil))
	if r := readAPIVersions(t, c, 9, 2); r.ErrorCode != 0 {
		t.Fatalf("v2: error %d", r.ErrorCode)
	}
}

// Concurrent requests from one kgo client share its connection (pipelined);
// every one is matched to its response by correlation id.
func TestKgoConcurrentRequests(t *testing.T) {
	ts := startServer(t, Config{})
	cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	errs := make(chan error, 20)
	for range cap(errs) {
		go func() {
			_, err := cl.Request(ctx, kmsg.NewPtrApiVersionsRequest())
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := recv(t, errs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMetricsCountRequests: requests and connections show up in the
// Prometheus output.
func TestMetricsCountRequests(t *testing.T) {
	ts := startServer(t, Config{})
	for range 3 {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(2)
		rawRoundTrip(t, ts.addr, req)
	}
	var sb strings.Builder
	if err := ts.srv.Metrics().WritePrometheus(&sb); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{`chronik_requests_total{api="ApiVersions"} 3`, "chronik_connections_accepted_total 3", "# TYPE chronik_connections_open gauge"} {
		if !strings.Contains(out, want) {
			t.Fatalf("metrics lack %q:\n%s", want, out)
		}
	}
}
