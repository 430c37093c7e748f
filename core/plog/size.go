package plog

// SizeBytes is the number of bytes of the log's segment files: the
// complete frames of every segment, as they sit on disk (index, time-index
// and checkpoint files are not counted). It is read under the log's lock
// (a consistent sum at one instant), never does I/O, and is 0 once the log
// is closed.
func (l *Log) SizeBytes() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0
	}
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	return total
}
