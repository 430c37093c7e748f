package partition

import (
	"fmt"

	"github.com/chronik-go/chronik/diskio"
)

// Failpoints (github.com/pingcap/failpoint; compiled in only by
// `make failpoint-enable`, no-ops otherwise). Their full names are
// "github.com/chronik-go/chronik/core/partition/<name>". dragonboat treats
// every error below as fatal for the node (it panics: fail-stop); a
// restarted replica replays from the index Open reports.
//
//	beforeApply           an entry's apply fails before it touches the log
//	                      (Update returns the error; nothing of the entry is
//	                      applied or acknowledged)
//	afterApply            Update fails after applying its entries, before
//	                      publishing and returning their results (applied but
//	                      never acknowledged; a restart must not apply twice)
//	syncError             Sync fails before the log fsync and the producer
//	                      checkpoint (nothing new becomes durable)
//	snapshotSaveError     SaveSnapshot fails after the header and the first
//	                      chunk of batches (a partial stream)
//	snapshotRecoverError  RecoverFromSnapshot fails after staging the
//	                      snapshot's log, before swapping it in (the old state
//	                      must stay intact and serving)
//
// errFailpoint is what they inject; it matches diskio.ErrInjected.
var errFailpoint = fmt.Errorf("partition: failpoint: %w", diskio.ErrInjected)
