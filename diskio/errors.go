package diskio

import (
	"errors"
	"io/fs"
	"syscall"
)

// ErrLocked: VFS.Lock of a path whose lock is already held in this process.
var ErrLocked = errors.New("diskio: lock already held")

// errInvalid: a negative offset or size, or an operation on the wrong kind of
// node (a directory opened as a file). It matches fs.ErrInvalid.
var errInvalid = errors.New("diskio: invalid argument")

// kindError is the Err of every *PathError built here. It matches its
// package sentinel and the standard library's equivalent (fs.ErrNotExist,
// syscall.ENOSPC, ...) with errors.Is, so that both our callers and
// pebble/dragonboat's oserror.IsNotExist and vfs.IsNoSpaceError see through
// it; and it unwraps (single chain, which cockroachdb/errors also walks) to
// the operating system's error when there is one.
type kindError struct {
	sentinel error // one of this package's Err* values
	std      error // the standard library's equivalent, or nil
	cause    error // the underlying OS error or injected error, or nil
}

func (e *kindError) Error() string {
	if e.cause != nil && e.cause != e.sentinel {
		return e.sentinel.Error() + ": " + e.cause.Error()
	}
	return e.sentinel.Error()
}

func (e *kindError) Is(target error) bool {
	return target == e.sentinel || (e.std != nil && target == e.std)
}

func (e *kindError) Unwrap() error { return e.cause }

// stdEquivalent maps a sentinel to the standard error that generic code
// (os.IsNotExist-style checks, vfs.IsNoSpaceError) tests for.
func stdEquivalent(sentinel error) error {
	switch sentinel {
	case ErrNotExist:
		return fs.ErrNotExist
	case ErrExist:
		return fs.ErrExist
	case ErrNoSpace:
		return syscall.ENOSPC
	case ErrClosed:
		return fs.ErrClosed
	case ErrReadOnly:
		return fs.ErrPermission
	case errInvalid:
		return fs.ErrInvalid
	}
	return nil
}

// newPathError builds the *PathError for op on path wrapping sentinel, with
// cause (may be nil) at the end of the chain.
func newPathError(op, path string, sentinel, cause error) *PathError {
	return &PathError{Op: op, Path: path, Err: &kindError{sentinel: sentinel, std: stdEquivalent(sentinel), cause: cause}}
}

// injectedError wraps a fault rule's error: it matches ErrInjected, and the
// rule's error (and, if that is one of our sentinels, its std equivalent).
func injectedError(op, path string, ruleErr error) *PathError {
	if ruleErr == nil || ruleErr == ErrInjected {
		return newPathError(op, path, ErrInjected, nil)
	}
	var cause error = ruleErr
	if std := stdEquivalent(ruleErr); std != nil {
		cause = &kindError{sentinel: ruleErr, std: std}
	}
	return newPathError(op, path, ErrInjected, cause)
}
