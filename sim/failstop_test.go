package sim

import (
	"fmt"
	"os"
)

// Fail-stop. dragonboat stops on a storage error (a failed write or
// fsync, a corrupt log or checkpoint, a state machine Update error) by
// panicking on one of its worker goroutines: by design, the process
// exits. Inside one test process that ends every simulated node at once,
// and it cannot be contained: a worker that exits instead (tried through
// raftlog.SetPanicHook and runtime.Goexit) leaves NodeHost.Close waiting
// forever on its worker pool. So the schedules inject only the disk
// faults a node survives without stopping (see faults_test.go), and a
// dragonboat panic during a run is a finding: the hook below writes the
// trace and the reproduce line before the panic ends the process.

// onPanic is the raftlog panic hook of a run.
func (c *cluster) onPanic(pkg, msg string) {
	c.tr.add(evNode, "dragonboat panic (%s): %s", pkg, msg)
	p, err := c.tr.write(c.seed, ".panic")
	fmt.Fprintf(os.Stderr, "sim: dragonboat panicked: %s: %s\ntrace: %s %v\nreproduce: make sim SEED=%d\n", pkg, msg, p, err, c.seed)
}
