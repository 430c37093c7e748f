package partition

// SizeBytes is the number of bytes of this replica's log segments on disk
// (plog.Log.SizeBytes). A replica closed, or whose log was swapped for a
// snapshot's while it was read, returns ErrClosed.
func (r *Replica) SizeBytes() (int64, error) {
	l, _, _, err := r.current()
	if err != nil {
		return 0, err
	}
	n := l.SizeBytes()
	// A 0 from a log closed under us must not pass for an empty log.
	if cur, _, _, err := r.current(); err != nil || cur != l {
		return 0, ErrClosed
	}
	return n, nil
}
