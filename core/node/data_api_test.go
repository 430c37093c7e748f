package node

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lni/dragonboat/v4"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/chronik-go/chronik/core/clock"
	"github.com/chronik-go/chronik/core/meta"
)

// TestDataAPIAccessors: TopicName/TopicID round-trip, Producers lists an
// idempotent producer after a produce and answers unknown partitions.
func TestDataAPIAccessors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 11, 1)
		defer c.closeAll()
		c.createTopic("t", 1, -1)
		n := c.node(1)
		id, ok := n.TopicID("t")
		if !ok || id.IsZero() {
			t.Fatalf("TopicID: %v %v", id, ok)
		}
		if name, ok := n.TopicName(id); !ok || name != "t" {
			t.Fatalf("TopicName: %q %v", name, ok)
		}
		if _, ok := n.TopicName(meta.TopicID{1}); ok {
			t.Fatal("TopicName of an unknown id")
		}
		if _, ok := n.TopicName(meta.TopicID{}); ok {
			t.Fatal("TopicName of the zero id")
		}
		if _, ok := n.TopicID("nope"); ok {
			t.Fatal("TopicID of an unknown topic")
		}
		ctx := context.Background()
		pid, _, code := n.InitProducerID(ctx)
		if code != 0 {
			t.Fatalf("InitProducerID: %d", code)
		}
		c.produce("t", 0, batch(pid, 0, 3, 10, 1000), 20*time.Second)
		ps, code := n.Producers(ctx, "t", 0)
		if code != 0 || len(ps) != 1 || ps[0].ProducerID != pid || ps[0].LastSequence != 2 {
			t.Fatalf("Producers: %+v code %d", ps, code)
		}
		if _, code := n.Producers(ctx, "t", 5); code != kerr.UnknownTopicOrPartition.Code {
			t.Fatalf("Producers of an unknown partition: code %d", code)
		}
	})
}

// TestProduceSubmittedOnce: ProduceOptions.Submitted is called exactly
// once whether the entry was proposed (before the answer: the callback
// sees no answer yet), refused before proposing (an unknown partition,
// an invalid batch) or answered with an error.
func TestProduceSubmittedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 12, 1)
		defer c.closeAll()
		c.createTopic("t", 1, -1)
		c.produce("t", 0, batch(-1, 0, 1, 10, 1000), 20*time.Second) // a ready leader
		n := c.node(1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, tc := range []struct {
			name    string
			part    int32
			batches []byte
			code    int16
		}{
			{"applied", 0, batch(-1, 0, 2, 10, 1000), 0},
			{"unknown-partition", 7, batch(-1, 0, 1, 10, 1000), kerr.UnknownTopicOrPartition.Code},
			{"invalid-batch", 0, []byte{1, 2, 3}, kerr.CorruptMessage.Code},
		} {
			calls := 0
			answered := false
			r := n.ProduceWith(ctx, "t", tc.part, tc.batches, ProduceOptions{Submitted: func() {
				calls++
				if answered {
					t.Errorf("%s: Submitted after the answer", tc.name)
				}
			}})
			answered = true
			if calls != 1 {
				t.Errorf("%s: Submitted called %d times", tc.name, calls)
			}
			if r.ErrorCode != tc.code {
				t.Errorf("%s: code %d, want %d", tc.name, r.ErrorCode, tc.code)
			}
		}
	})
}

// TestRetryBusy: a proposal refused with ErrSystemBusy is tried again
// after growing waits on the clock until it is taken; when ctx ends
// first the busy error is returned and answers REQUEST_TIMED_OUT, not a
// leader change.
func TestRetryBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.Real() // the bubble's virtual time
		calls := 0
		start := time.Now()
		v, err := retryBusy(context.Background(), clk, func() (int, error) {
			calls++
			if calls <= 3 {
				return 0, dragonboat.ErrSystemBusy
			}
			return 7, nil
		})
		if err != nil || v != 7 || calls != 4 {
			t.Fatalf("got %d, %v after %d calls", v, err, calls)
		}
		if waited := time.Since(start); waited != (1+2+4)*busyRetryMin {
			t.Fatalf("waited %v, want %v", waited, 7*busyRetryMin)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		calls = 0
		_, err = retryBusy(ctx, clk, func() (int, error) {
			calls++
			return 0, dragonboat.ErrSystemBusy
		})
		if !errors.Is(err, dragonboat.ErrSystemBusy) || calls < 5 {
			t.Fatalf("busy until the deadline: %v after %d calls", err, calls)
		}
		if code := (&Node{}).errCode(ctx, err); code != kerr.RequestTimedOut.Code {
			t.Fatalf("code %d, want REQUEST_TIMED_OUT", code)
		}
	})
}
