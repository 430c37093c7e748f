package server

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLeaderlessOnly: a fetch is held only when its errors are all
// NOT_LEADER_OR_FOLLOWER with no leader known elsewhere.
func TestLeaderlessOnly(t *testing.T) {
	const self = 2
	part := func(topic string, p int32, code int16) *fetchPart {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		fp := newFetchPart(topic, &rp)
		fp.resp.ErrorCode = code
		return fp
	}
	leaders := func(m map[topicPartition][2]int32) *currentLeaders {
		return &currentLeaders{leaders: m, used: map[int32]bool{}}
	}
	nl := kerr.NotLeaderForPartition.Code
	for _, tc := range []struct {
		name    string
		parts   []*fetchPart
		leaders map[topicPartition][2]int32
		want    bool
	}{
		{"no errors", []*fetchPart{part("a", 0, 0)}, nil, false},
		{"no leader known", []*fetchPart{part("a", 0, 0), part("a", 1, nl)}, map[topicPartition][2]int32{{"a", 1}: {-1, -1}}, true},
		{"not in metadata", []*fetchPart{part("a", 1, nl)}, nil, true},
		{"stale: names this node", []*fetchPart{part("a", 1, nl)}, map[topicPartition][2]int32{{"a", 1}: {self, 4}}, true},
		{"leader elsewhere", []*fetchPart{part("a", 1, nl)}, map[topicPartition][2]int32{{"a", 1}: {3, 5}}, false},
		{"one moved, one leaderless", []*fetchPart{part("a", 0, nl), part("a", 1, nl)}, map[topicPartition][2]int32{{"a", 0}: {3, 5}, {"a", 1}: {-1, -1}}, false},
		{"another error", []*fetchPart{part("a", 0, nl), part("a", 1, kerr.OffsetOutOfRange.Code)}, nil, false},
	} {
		if got := leaderlessOnly(tc.parts, leaders(tc.leaders), self); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
