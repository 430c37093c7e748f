//go:build invariants

package netio

// invariantsExpensive enables O(n) invariant checks.
const invariantsExpensive = true
