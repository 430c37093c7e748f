//go:build !failpoint

package sim

// failpointsCompiled: without failpoint-ctl's rewrite the markers are
// no-ops, so the swarm never draws failpoint faults.
const failpointsCompiled = false
