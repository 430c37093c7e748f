//go:build synctests

package sim

// defaultWorkload is the workload TestSim runs: real franz-go clients.
var defaultWorkload = kgoWorkload
