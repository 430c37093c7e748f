package diskio

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"time"
)

// Op is a kind of operation, for fault rules and latency.
type Op int

const (
	OpRead     Op = iota // File.ReadAt
	OpWrite              // File.WriteAt, File.Append
	OpSync               // File.Sync, FS.SyncDir
	OpOpen               // FS.Open, FS.OpenRW
	OpCreate             // FS.Create, FS.CreateExclusive, FS.MkdirAll
	OpRemove             // FS.Remove, FS.RemoveAll
	OpRename             // FS.Rename (the rule's pattern matches oldname)
	OpTruncate           // File.Truncate
	opCount
)

var opNames = [...]string{"read", "write", "sync", "open", "create", "remove", "rename", "truncate"}

func (o Op) String() string {
	if o >= 0 && o < opCount {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Faults configures a Sim's fault injection. Every random decision comes from
// the Sim's seeded source, so the same seed and the same sequence of calls
// give the same faults.
type Faults struct {
	// Rules are tried in order for each operation; the first that fires
	// fails it before it has any effect.
	Rules []FaultRule
	// CapacityBytes: a write or truncate that would make the total size of
	// the linked files exceed it fails with ErrNoSpace and writes nothing.
	// 0 means unlimited.
	CapacityBytes int64
	// ReadBitFlipProbability: the chance that a successful ReadAt flips one
	// random bit of the returned bytes (the stored bytes are unchanged).
	ReadBitFlipProbability float64
	// ReadBitFlipPattern limits bit flips to files whose path (as passed
	// in, without a leading "/") matches one of its path.Match globs,
	// separated by "|" ("" = every file).
	ReadBitFlipPattern string
	// ReadBitFlipSticky makes each flip a bad spot: every later read of
	// that byte returns the bit flipped too, as a failing sector or path
	// would, until a write covers it or SetFaults is called again (which
	// forgets every bad spot; a crash image has none). The stored bytes
	// stay intact.
	ReadBitFlipSticky bool
	// Latency is slept (outside the Sim's lock, so virtual time under
	// synctest) before each operation of the kind.
	Latency map[Op]time.Duration
	// LyingSync is a deliberately broken disk for testing the simulator:
	// File.Sync returns nil without making anything durable
	// (a crash image keeps only what was synced before it was set).
	LyingSync bool
	// LyingSyncPattern limits LyingSync to files whose base name matches
	// this path.Match glob ("" = every file).
	LyingSyncPattern string
}

// FaultRule fails operations of kind Op on paths matching PathPattern.
type FaultRule struct {
	Op          Op
	PathPattern string  // path.Match glob against the path as passed in; "" = any
	Probability float64 // in [0, 1]
	Err         error   // wrapped in the *PathError along with ErrInjected; nil = ErrInjected alone
}

// SetFaults replaces the fault configuration. Faults{} turns injection off.
func (s *Sim) SetFaults(f Faults) {
	f.Rules = slices.Clone(f.Rules)
	f.Latency = maps.Clone(f.Latency)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	for _, ino := range s.badInodes {
		ino.badBits = nil
	}
	s.badInodes = nil
}

// before runs the fault rules and the latency for an operation of kind op
// (named opName in errors) on name. It takes mu only to decide, and sleeps
// after releasing it.
func (s *Sim) before(op Op, opName, name string) error {
	s.mu.Lock()
	latency := s.faults.Latency[op]
	var err error
	for _, r := range s.faults.Rules {
		if r.Op != op || r.Probability <= 0 {
			continue
		}
		if r.PathPattern != "" {
			target := name
			if op == OpRename {
				target = renameOld(name)
			}
			if ok, _ := path.Match(r.PathPattern, target); !ok {
				continue
			}
		}
		if r.Probability >= 1 || s.faultRng.Float64() < r.Probability {
			s.stats.FaultsInjected++
			err = injectedError(opName, name, r.Err)
			break
		}
	}
	s.mu.Unlock()
	sleep(latency)
	return err
}

// renameOld extracts oldname from the "old -> new" path of a rename.
func renameOld(p string) string {
	for i := 0; i+4 <= len(p); i++ {
		if p[i:i+4] == " -> " {
			return p[:i]
		}
	}
	return p
}
