package plog

import (
	"fmt"

	"github.com/chronik-go/chronik/diskio"
)

// Failpoints (github.com/pingcap/failpoint; compiled in only by
// `make failpoint-enable`, no-ops otherwise). Their full names are
// "github.com/chronik-go/chronik/core/plog/<name>":
//
//	writeError  an Append's write fails (as if the disk returned EIO)
//	syncError   a group-commit fsync fails (the log must fail every waiter)
//	afterSync   after a group-commit fsync, before its waiters learn of it
//	            (use "pause" or "sleep" terms to hold the process there)
//
// errFailpoint is what the error failpoints inject; it matches
// diskio.ErrInjected.
var errFailpoint = fmt.Errorf("plog: failpoint: %w", diskio.ErrInjected)
