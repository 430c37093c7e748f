//go:build !invariants

package netio

// invariantsExpensive enables O(n) invariant checks; build with -tags
// invariants to turn them on.
const invariantsExpensive = false
