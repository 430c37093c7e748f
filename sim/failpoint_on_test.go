//go:build failpoint

package sim

// failpointsCompiled: this build was made by `make failpoint-test`, whose
// failpoint-ctl rewrite turns the markers into live code, so the swarm may
// draw failpoint faults (faults_test.go, fkFailpoint).
const failpointsCompiled = true
