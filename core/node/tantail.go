package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/chronik-go/chronik/diskio"
)

// Torn tails in dragonboat's Raft log (tan).
//
// A power cut during a write can leave the end of the newest tan log file
// torn: a chunk whose header made it to disk but whose payload did not (or
// only partly), so its checksum fails. Nothing in that chunk was ever
// acknowledged (tan fsyncs before it reports a write), so it is safe to
// drop. tan itself drops a torn tail that reads as zeros or as a short
// chunk, but it refuses to open a log whose last chunk fails its checksum
// (tan.ErrCRCMismatch is not among its recoverable errors), and the node
// could never restart without an operator. repairRaftLogTails runs before
// the NodeHost opens and truncates such a tail at the torn chunk, when no
// valid chunk follows it; a checksum failure followed by valid data is
// corruption, not a torn write, and is left for tan to refuse.
//
// The format (tan's record.go, from pebble's WAL): 32 KiB blocks of chunks;
// a chunk is checksum(4) length(2) type(1) [log number(4) for the
// recyclable types 5-8] payload; the checksum is the low 32 bits of xxhash64
// over the bytes from the type on; unused bytes in a block are zero.
const (
	tanBlockSize        = 32 << 10
	tanHeaderSize       = 7
	tanRecyclableHeader = 11
	tanLogSuffix        = ".log"
)

// tanChunk is what scanning found at one chunk position.
type tanChunk int

const (
	chunkValid  tanChunk = iota
	chunkEnd             // zeroed header, short or overlong chunk: tan's own torn-tail handling applies
	chunkBadCRC          // a complete chunk whose checksum fails
	chunkTooFew          // fewer than a header's bytes left in the block: padding
)

// checkChunk classifies the chunk at block[pos:] and returns its end.
func checkChunk(block []byte, pos int) (tanChunk, int) {
	if pos+tanHeaderSize > len(block) {
		return chunkTooFew, len(block)
	}
	sum := binary.LittleEndian.Uint32(block[pos:])
	length := int(binary.LittleEndian.Uint16(block[pos+4:]))
	typ := block[pos+6]
	if sum == 0 && length == 0 && typ == 0 {
		return chunkEnd, pos
	}
	hs := tanHeaderSize
	if typ >= 5 && typ <= 8 {
		hs = tanRecyclableHeader
	}
	end := pos + hs + length
	if end > len(block) {
		return chunkEnd, pos // tan: ErrInvalidChunk, a tail it drops itself
	}
	if uint32(xxhash.Sum64(block[pos+6:end])) != sum {
		return chunkBadCRC, end
	}
	return chunkValid, end
}

// tornTailOffset scans data (one tan log file) and returns the offset of
// its torn last chunk, or -1 if the file ends cleanly (or in a way tan
// handles itself). errCorruptRaftLog: a checksum failure with valid data
// after it.
func tornTailOffset(data []byte) (int64, error) {
	for start := 0; start < len(data); start += tanBlockSize {
		block := data[start:min(start+tanBlockSize, len(data))]
		for pos := 0; pos < len(block); {
			kind, end := checkChunk(block, pos)
			switch kind {
			case chunkValid:
				pos = end
				continue
			case chunkTooFew:
			case chunkEnd:
				return -1, nil
			case chunkBadCRC:
				bad := int64(start + pos)
				if later := validBlockAfter(data, start+tanBlockSize); later >= 0 {
					return -1, fmt.Errorf("%w: checksum failure at offset %d, valid data at offset %d", errCorruptRaftLog, bad, later)
				}
				return bad, nil
			}
			break
		}
	}
	return -1, nil
}

// validBlockAfter returns the offset of the first block at or after from
// whose first chunk is valid, or -1.
func validBlockAfter(data []byte, from int) int {
	for start := from; start < len(data); start += tanBlockSize {
		if kind, _ := checkChunk(data[start:min(start+tanBlockSize, len(data))], 0); kind == chunkValid {
			return start
		}
	}
	return -1
}

var errCorruptRaftLog = errors.New("node: corrupt Raft log")

// repairRaftLogTails truncates a torn tail of the newest log file of every
// tan database under dir (see above). It returns the first error that is
// not a missing directory; corruption is logged and left for tan.
func repairRaftLogTails(fs diskio.FS, dir string, log *slog.Logger) error {
	names, err := fs.List(dir)
	if errors.Is(err, diskio.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var newest string
	newestNum := int64(-1)
	for _, name := range names {
		p := path.Join(dir, name)
		if st, err := fs.Stat(p); err == nil && st.IsDir {
			if err := repairRaftLogTails(fs, p, log); err != nil {
				return err
			}
			continue
		}
		stem, ok := strings.CutSuffix(name, tanLogSuffix)
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(stem, 10, 64); err == nil && n > newestNum {
			newest, newestNum = p, n
		}
	}
	if newest == "" {
		return nil
	}
	return repairTornTail(fs, newest, log)
}

func repairTornTail(fs diskio.FS, name string, log *slog.Logger) error {
	f, err := fs.OpenRW(name)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return err
	}
	data := make([]byte, size)
	if n, err := f.ReadAt(data, 0); err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
		return fmt.Errorf("node: read Raft log %s: %w", name, err)
	}
	off, err := tornTailOffset(data)
	if err != nil {
		log.Error("Raft log is corrupt (not a torn tail); dragonboat will refuse to open it", "file", name, "err", err)
		return nil
	}
	if off < 0 {
		return nil
	}
	log.Warn("Raft log: truncating a torn tail (a write cut by a crash; never acknowledged)",
		"file", name, "offset", off, "dropped_bytes", size-off)
	if err := f.Truncate(off); err != nil {
		return err
	}
	return f.Sync()
}
