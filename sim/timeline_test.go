package sim

import "errors"

// writeTimeline draws tr as a picture beside its trace (see timeline
// drawing); returns its path.
func writeTimeline(tr *trace, seed int64, suffix, finding string) (string, error) {
	return "", errors.New("not yet")
}
