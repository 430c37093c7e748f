//go:build synctests

package sim

// defaultWorkload is the workload TestSim runs: nil selects the core-API
// workload until the Kafka handlers exist.
var defaultWorkload = coreWorkloadFunc
