package node

import (
	"fmt"

	"github.com/lni/dragonboat/v4"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Failpoints (github.com/pingcap/failpoint; compiled in only by
// `make failpoint-enable`, no-ops otherwise). Their full names are
// "github.com/chronik-go/chronik/core/node/<name>":
//
//	beforeProduceResult         Produce has its applied result and is about
//	                            to answer: "sleep(ms)" delays the answer,
//	                            "return" loses it (the caller sees
//	                            REQUEST_TIMED_OUT although the batches are
//	                            in the log; an idempotent retry must get
//	                            the original offsets)
//	startPartitionError         the reconciler fails to start a partition
//	                            shard (it retries on its timer)
//	stopPartitionError          the reconciler fails to stop and remove a
//	                            partition shard (it retries on its timer;
//	                            a restart sweeps it, sweepDeleted)
//	commitOffsetsBeforePropose  a group offset commit fails before it is
//	                            proposed (nothing committed)
//	commitOffsetsAfterPropose   a group offset commit's proposal returns an
//	                            error after it was applied (as a proposal
//	                            that times out and commits anyway)
//
// errFailpoint is what the error failpoints inject: a dragonboat timeout,
// so that callers map it as they map a real one (retriable codes).
var errFailpoint = fmt.Errorf("node: failpoint: %w", dragonboat.ErrTimeout)

// lostProduceResult is what a caller sees when a produce's answer is lost.
func lostProduceResult(epoch int32) ProduceResult {
	return ProduceResult{ErrorCode: kerr.RequestTimedOut.Code, BaseOffset: -1, LastOffset: -1,
		LogAppendTimeMs: -1, LogStartOffset: -1, LeaderEpoch: epoch}
}
