package server

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-go/chronik/core/node"
)

// TestOffsetExpiry: with offsets.retention.minutes at 1 s (through
// node.Config) and a check every 100 ms, a group whose consumer committed
// and left loses its offsets; a group with an active member keeps offsets
// committed even earlier, until that member leaves too.
func TestOffsetExpiry(t *testing.T) {
	c := startClusterWith(t, 1, func(nc *node.Config) {
		nc.OffsetsRetention = time.Second
		nc.OffsetsRetentionCheckInterval = 100 * time.Millisecond
		nc.OffsetsExpirySettle = -1
	}, fastGroups)
	const topic = "t-expiry"
	grpCreateTopic(t, c.broker(1), topic, 1)
	prod := producer(c)
	produceTo(t, prod, topic, 1, 10, map[[2]int64]bool{})
	adm := c.admin()

	// committed returns the group's committed offset of partition 0, -1
	// when it has none (kadm's FetchOffsets answers no partition then).
	committed := func(grp string) int64 {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		offs, err := adm.FetchOffsets(ctx, grp)
		if err != nil {
			t.Fatalf("fetch offsets of %s: %v", grp, err)
		}
		if o, ok := offs.Lookup(topic, 0); ok && o.Err == nil {
			return o.At
		}
		return -1
	}
	consumeAndCommit := func(name, grp string) *groupConsumer {
		seen := newSeen()
		gc := startConsumer(t, c, name, grp, topic, seen, kgo.DisableAutoCommit())
		eventually(t, groupWait, func() bool { return seen.total() == 10 }, "%s consumed", name)
		gc.commit(t)
		if got := committed(grp); got != 10 {
			t.Fatalf("%s committed %d, want 10", grp, got)
		}
		return gc
	}

	// The active group commits first, so its offset is the older one.
	active := consumeAndCommit("stays", "g-active")
	waitStable(t, adm, "g-active", 1)
	gone := consumeAndCommit("leaves", "g-gone")
	gone.close()

	eventually(t, groupWait, func() bool { return committed("g-gone") == -1 }, "g-gone's offsets expired")
	// The pass that expired g-gone's offset saw g-active's, older than the
	// same cutoff (groups go in name order, g-active first), and kept it.
	if got := committed("g-active"); got != 10 {
		t.Fatalf("active group's offset %d, want 10 kept", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	// The Empty group whose last offset expired is forgotten (Kafka: Dead),
	// just after the expiry applied.
	eventually(t, testWait, func() bool {
		ls, err := adm.ListGroups(ctx)
		return err == nil && len(ls) == 1 && ls.Groups()[0] == "g-active"
	}, "only g-active listed")

	// DescribeConfigs shows both settings as static.
	rc, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil || len(rc) != 1 || rc[0].Err != nil {
		t.Fatalf("describe broker: %+v %v", rc, err)
	}
	want := map[string]string{"offsets.retention.check.interval.ms": "100", "offsets.retention.minutes": "0"}
	for _, cf := range rc[0].Configs {
		if v, ok := want[cf.Key]; ok {
			if cf.Value == nil || *cf.Value != v || cf.Source != kmsg.ConfigSourceStaticBrokerConfig {
				t.Errorf("%s: %+v, want static %s", cf.Key, cf, v)
			}
			delete(want, cf.Key)
		}
	}
	if len(want) != 0 {
		t.Errorf("not described: %v", want)
	}

	// Once its member leaves, the active group's offsets expire too.
	active.close()
	eventually(t, groupWait, func() bool { return committed("g-active") == -1 }, "g-active's offsets expired after its member left")
}
