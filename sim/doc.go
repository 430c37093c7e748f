// Package sim is Chronik's deterministic simulator: whole nodes inside one
// testing/synctest bubble, on diskio.Sim and netio.Sim, driven by one seed.
//
// Today it holds the proof that the seams fit: three dragonboat NodeHosts on
// the simulated disk and network, inside synctest, survive a crash by the
// crash model without losing a committed entry (raftcrash_test.go). The
// seeded schedules, the workload of real franz-go clients and the checkers
// come with the broker (see DESIGN.md, "Not built yet").
package sim
