package meta

import "errors"

// Failpoints (github.com/pingcap/failpoint; compiled in only by
// `make failpoint-enable`, no-ops otherwise). Their full names are
// "github.com/chronik-go/chronik/core/meta/<name>", in the Update of both
// StateMachine and GroupStateMachine:
//
//	beforeApply  Update fails before it touches the state (the applied
//	             index does not move). dragonboat treats an Update error as
//	             fatal for the node (it panics: fail-stop); the restarted
//	             node rebuilds the state from its snapshot and log, so the
//	             entry is applied exactly once, after the restart.
//	afterApply   Update applied the entry to the in-memory state but fails
//	             before publishing it or returning its result: the same
//	             fail-stop; the state the node held is discarded with it,
//	             and the restart applies the entry exactly once.
//	slowApply    (StateMachine only) enabled as sleep(N): each Update
//	             waits N ms first, so a restarted node's controller replica
//	             replays its log slowly (TestFailpointRestartSweepsDeletedShards).
//
// errFailpoint is what they inject.
var errFailpoint = errors.New("meta: failpoint: injected error")
