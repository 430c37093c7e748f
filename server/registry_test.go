package server

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func nopHandler(context.Context, *RequestContext, kmsg.Request) (kmsg.Response, error) {
	return nil, nil
}

func mustPanic(t *testing.T, substr string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		v := recover()
		if v == nil {
			t.Fatalf("no panic, want one containing %q", substr)
		}
		if s, _ := v.(string); !strings.Contains(s, substr) {
			t.Fatalf("panic %v, want one containing %q", v, substr)
		}
	}()
	f()
}

func TestRegistryRejectsBadRegistrations(t *testing.T) {
	ok := API{Key: describeClusterKey, MaxVersion: 1, Handler: nopHandler}
	mustPanic(t, "registered twice", func() { NewRegistry(ok, ok) })
	mustPanic(t, "registered twice", func() {
		NewRegistry(append(BuiltinAPIs(), API{Key: apiVersionsKey, MaxVersion: 1, Handler: nopHandler})...)
	})
	mustPanic(t, "built-in API key 18 (ApiVersions) registered twice", func() {
		register(API{Key: apiVersionsKey, MaxVersion: 1, Handler: nopHandler})
	})
	mustPanic(t, "invalid API registration", func() { NewRegistry(API{Key: -1, Handler: nopHandler}) })
	mustPanic(t, "invalid API registration", func() { NewRegistry(API{Key: 3, MinVersion: 2, MaxVersion: 1, Handler: nopHandler}) })
	mustPanic(t, "invalid API registration", func() { NewRegistry(API{Key: 3}) })
	mustPanic(t, "unknown to kmsg", func() { NewRegistry(API{Key: 9999, Handler: nopHandler}) })
	mustPanic(t, "above kmsg's", func() { NewRegistry(API{Key: 3, MaxVersion: 999, Handler: nopHandler}) })
}

// ApiVersions advertises exactly the registry, sorted by key; the built-in
// table is untouched by registries built on top of it.
func TestRegistryAdvertisesWhatItDispatches(t *testing.T) {
	before := BuiltinAPIs()
	av, _ := DefaultRegistry().Lookup(apiVersionsKey)
	r := NewRegistry(av, API{Key: describeClusterKey, MinVersion: 1, MaxVersion: 1, Handler: nopHandler}, API{Key: 3, MaxVersion: 12, Handler: nopHandler})
	keys := r.APIKeys()
	want := []kmsg.ApiVersionsResponseApiKey{{ApiKey: 3, MaxVersion: 12}, {ApiKey: 18, MaxVersion: 4}, {ApiKey: 60, MinVersion: 1, MaxVersion: 1}}
	if len(keys) != len(want) {
		t.Fatalf("keys %+v", keys)
	}
	for i := range want {
		if keys[i].ApiKey != want[i].ApiKey || keys[i].MinVersion != want[i].MinVersion || keys[i].MaxVersion != want[i].MaxVersion {
			t.Fatalf("keys %+v, want %+v", keys, want)
		}
		if _, ok := r.Lookup(keys[i].ApiKey); !ok {
			t.Fatalf("advertised key %d not dispatched", keys[i].ApiKey)
		}
	}
	if got := BuiltinAPIs(); len(got) != len(before) {
		t.Fatalf("BuiltinAPIs %+v, before %+v", got, before)
	}
	keys[0].MaxVersion = 100 // callers own the copy
	if r.APIKeys()[0].MaxVersion != 12 {
		t.Fatal("APIKeys exposed the registry's table")
	}
}
