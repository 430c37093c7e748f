//go:build failpoint

package group

import (
	"testing"

	"github.com/pingcap/failpoint"
)

const fpValidateCommit = "github.com/chronik-go/chronik/core/group/validateCommit"

// TestFailpointValidateCommit: the injected code reaches the caller once,
// the group is untouched (invariants hold), and the next validation of the
// same commit succeeds.
func TestFailpointValidateCommit(t *testing.T) {
	bubble(t, Options{}, func(t *testing.T, c *Coordinator) {
		if err := failpoint.Enable(fpValidateCommit, "1*return(16)"); err != nil {
			t.Fatal(err)
		}
		defer failpoint.Disable(fpValidateCommit)
		if code := c.ValidateCommit("g", "", "", -1); code != errNotCoordinator {
			t.Fatalf("under the failpoint: code %d, want NOT_COORDINATOR", code)
		}
		check(t, c)
		if code := c.ValidateCommit("g", "", "", -1); code != errNone {
			t.Fatalf("retry: code %d", code)
		}
	})
}
