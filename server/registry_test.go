package server

import (
	"context"
	"slices"
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
	mustPanic(t, "registered twice", func() { withAPIs(API{Key: apiVersionsKey, MaxVersion: 1, Handler: nopHandler}) })
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
	r := withAPIs(API{Key: describeClusterKey, MinVersion: 1, MaxVersion: 1, Handler: nopHandler}, API{Key: 3, MaxVersion: 12, Handler: nopHandler})
	keys := r.APIKeys()
	// The built-in table grows as API files are added: expect it plus the
	// two extra keys, sorted by key.
	var want []kmsg.ApiVersionsResponseApiKey
	builtins := BuiltinAPIs()
	for _, a := range append(builtins, API{Key: 3, MaxVersion: 12}, API{Key: describeClusterKey, MinVersion: 1, MaxVersion: 1}) {
		want = append(want, kmsg.ApiVersionsResponseApiKey{ApiKey: a.Key, MinVersion: a.MinVersion, MaxVersion: a.MaxVersion})
	}
	slices.SortFunc(want, func(a, b kmsg.ApiVersionsResponseApiKey) int { return int(a.ApiKey) - int(b.ApiKey) })
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
	if got := BuiltinAPIs(); len(got) != len(builtins) {
		t.Fatalf("BuiltinAPIs %+v", got)
	}
	i3 := slices.IndexFunc(keys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == 3 })
	keys[i3].MaxVersion = 100 // callers own the copy
	if r.APIKeys()[i3].MaxVersion != 12 {
		t.Fatal("APIKeys exposed the registry's table")
	}
}
