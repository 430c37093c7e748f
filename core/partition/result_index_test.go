package partition

import (
	"testing"

	sm "github.com/lni/dragonboat/v4/statemachine"

	"github.com/chronik-go/chronik/diskio"
)

// TestResultCarriesRaftIndex: every result names the index of the entry it
// answers (core/node waits on it for min.insync.replicas), whatever the
// outcome; a result in the earlier layout (no index) still decodes.
func TestResultCarriesRaftIndex(t *testing.T) {
	h, _ := openHarness(t, testOptions(diskio.NewSim(1)))
	defer h.close()
	for _, cmd := range [][]byte{produceCmd(0, tb{pid: -1}), {9, 9}, EncodeDeleteRecords(DeleteRecords{Offset: -1})} {
		idx := h.next + 7
		res := h.applyAt(idx, cmd)
		kind, p, err := decodeResult(res)
		if err != nil || p.Index != idx {
			t.Fatalf("kind %d: result index %d (err %v), want %d", kind, p.Index, err, idx)
		}
	}
	res := encodeProduceResult(ProduceResult{BaseOffset: 4, LastOffset: 5, Index: 99})
	old := sm.Result{Value: res.Value, Data: res.Data[:resultBytesV1]}
	if p, err := DecodeProduceResult(old); err != nil || p.BaseOffset != 4 || p.LastOffset != 5 || p.Index != 0 {
		t.Fatalf("earlier layout: %+v %v", p, err)
	}
}
