//go:build synctests

// franz-go's internal mutexes become channel-backed under the synctests tag,
// which a synctest bubble needs to advance its clock; without the tag the
// test could hang, so it only builds with: go test -tags synctests ./netio

package netio

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestKgoOverSim runs a real franz-go client against kfake, both inside a
// synctest bubble, talking over the simulated network with link delays.
func TestKgoOverSim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSim(11)
		s.SetLink("client", "kafka", LinkRule{Delay: 2 * time.Millisecond, Jitter: time.Millisecond})
		s.SetLink("kafka", "client", LinkRule{Delay: 2 * time.Millisecond})
		start := time.Now()
		produceConsume(t, s.Host("kafka"), "kafka", s.Host("client"))
		t.Logf("virtual time elapsed: %v", time.Since(start))
	})
}
