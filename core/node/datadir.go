package node

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	pb "github.com/lni/dragonboat/v4/raftpb"

	"github.com/chronik-go/chronik/core/wal"
	"github.com/chronik-go/chronik/diskio"
)

// Data directory checks made before dragonboat opens it, so that the
// operator gets an error that says what is wrong and what to do, instead
// of dragonboat's bare one (or, for the old layout, a Raft log silently
// started empty beside the old one).
var (
	// ErrOldRaftLogLayout: the data dir holds a Raft log written by an
	// earlier Chronik (dragonboat's tan), which this version cannot read.
	ErrOldRaftLogLayout = errors.New("node: data dir holds a Raft log in the tan layout")
	// ErrRaftAddrChanged: the data dir was written by a node with another
	// --raft-addr (dragonboat binds its data to the address).
	ErrRaftAddrChanged = errors.New("node: raft address changed")
)

const (
	// dragonboatFlagFile is where dragonboat records, in NodeHostDir, the
	// address, LogDB type and settings the directory was created with: an
	// 8-byte hash, then a marshalled raftpb.RaftDataStatus.
	dragonboatFlagFile = "dragonboat.ds"
	flagFileHashBytes  = 8
	// tanDirName is the directory tan keeps its files in, two levels
	// below NodeHostDir (<hostname>/<deployment id>/tandb).
	tanDirName = "tandb"
)

// checkDataDir refuses a NodeHostDir written in tan's layout or by a node
// with another Raft address. A missing or unreadable flag file is left to
// dragonboat.
func checkDataDir(fs diskio.FS, nhDir, raftAddr string) error {
	if dir, ok := findTanDir(fs, nhDir); ok {
		return oldLayoutError(nhDir, dir)
	}
	st, ok := readFlagFile(fs, nhDir)
	if !ok {
		return nil
	}
	if st.LogdbType != wal.Name {
		return oldLayoutError(nhDir, fmt.Sprintf("%s (LogDB type %q)", path.Join(nhDir, dragonboatFlagFile), st.LogdbType))
	}
	if !strings.EqualFold(strings.TrimSpace(st.Address), strings.TrimSpace(raftAddr)) {
		return fmt.Errorf("%w: the data dir %s belongs to the node with --raft-addr %s, and this node was started with --raft-addr %s; "+
			"dragonboat binds a node's Raft data to its address: restart it with --raft-addr %s, or start it on an empty --data-dir "+
			"(it then joins as a new replica and catches up from the others)",
			ErrRaftAddrChanged, path.Dir(nhDir), st.Address, raftAddr, st.Address)
	}
	return nil
}

func oldLayoutError(nhDir, found string) error {
	return fmt.Errorf("%w: data dir %s holds a Raft log in the tan layout written by an earlier Chronik (found %s); "+
		"this version cannot read it: start the node on an empty --data-dir and let it catch up from its replicas, "+
		"or run the previous release", ErrOldRaftLogLayout, path.Dir(nhDir), found)
}

// findTanDir looks for nhDir/*/*/tandb.
func findTanDir(fs diskio.FS, nhDir string) (string, bool) {
	for _, host := range listDirs(fs, nhDir) {
		for _, dep := range listDirs(fs, path.Join(nhDir, host)) {
			p := path.Join(nhDir, host, dep, tanDirName)
			if st, err := fs.Stat(p); err == nil && st.IsDir {
				return p, true
			}
		}
	}
	return "", false
}

func listDirs(fs diskio.FS, dir string) []string {
	names, err := fs.List(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		if st, err := fs.Stat(path.Join(dir, n)); err == nil && st.IsDir {
			out = append(out, n)
		}
	}
	return out
}

func readFlagFile(fs diskio.FS, nhDir string) (pb.RaftDataStatus, bool) {
	f, err := fs.Open(path.Join(nhDir, dragonboatFlagFile))
	if err != nil {
		return pb.RaftDataStatus{}, false
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil || size <= flagFileHashBytes || size > 1<<20 {
		return pb.RaftDataStatus{}, false
	}
	data := make([]byte, size)
	if n, err := f.ReadAt(data, 0); err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		return pb.RaftDataStatus{}, false
	}
	var st pb.RaftDataStatus
	if err := st.Unmarshal(data[flagFileHashBytes:]); err != nil {
		return pb.RaftDataStatus{}, false
	}
	return st, true
}
