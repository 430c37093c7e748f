// Package wal is Chronik's Raft log: one node-wide write-ahead log holding
// the entries, hard state, bootstrap and snapshot metadata of every Raft
// replica of a NodeHost (a raftio.ILogDB, replacing dragonboat's tan).
//
// # Group commit
//
// Every write (SaveRaftState from any of dragonboat's step workers, and the
// rarer SaveBootstrapInfo, SaveSnapshots, RemoveEntriesTo, RemoveNodeData,
// ImportSnapshot) is encoded by its caller into records and queued on a
// bounded channel. One committer goroutine takes whatever is queued (up to
// Options.GroupBytesMax), frames it as one batch, writes it with one
// WriteAt and, if any request needs it, one fsync; only then does it apply
// the records to the in-memory state and answer every request of the
// group. A caller returns only after the fsync covering its records
// returned nil. A state change that is only a new commit index is written
// without forcing an fsync (Raft recovers the commit index); a later fsync
// covers it.
//
// A failed write or fsync fails every request of its group and the WAL:
// everything later returns ErrFailed, nothing is retried (the node's FS is
// wrapped in diskio.FailStop, which has already stopped the node).
//
// # Concurrency contract
//
// All methods are safe for concurrent use. The committer is the only
// writer of files and of the in-memory state; a sync.RWMutex guards that
// state and is never held across I/O or a wait (a caller waiting for its
// group commit is blocked on a channel, durably blocked under
// testing/synctest). Reads (IterateEntries) copy the index runs under the
// read lock, pin their segments against deletion, and read with ReadAt
// without any lock. Close stops the committer and waits for it.
//
// # Invariants
//
//   - Every segment that holds a batch opens with a checkpoint record: the
//     state (hard state, bootstrap, snapshot metadata, compaction point) of
//     every replica. So no state record pins a segment, and replaying any
//     suffix of the segments that holds every live entry rebuilds the
//     same state.
//   - Segments are deleted oldest first, only when no live entry is in
//     them, and only after an fsync made durable whatever made them dead.
//     Up to Options.RecycleSegments dead segments are renamed NNNN.free
//     instead and reused as the next segments (written over from offset
//     0: overwriting allocated, cached blocks spares the fsync a journal
//     commit for new blocks and the write fresh page-cache memory).
//     The others are renamed NNNN.dead.tmp (durably: no later open
//     replays them) and removed by the unlinker goroutine, cut from their
//     end a few MiB at a time first, so that freeing their blocks does
//     not hold the file system's journal against the group commit's
//     fsync; Open removes any left by a crash with the other .tmp files.
//   - A sealed segment was fsynced when sealed, and a reused one truncated
//     to its batches first: only the newest segment can end in a torn
//     write or in a reused file's old bytes. Batch sequence numbers only
//     grow over the WAL's life, so an old batch is told from a current
//     one: a valid batch with a lower sequence number than the one before
//     it ends the newest segment's content like a torn write (cut at
//     open, and at Close), and never counts as "valid data after a bad
//     batch" (which is corruption).
//   - A relocated record moves live entries without truncating the log; it
//     is written only for entries live at that point of the log. A
//     segment's live entries move in chunks (RelocateChunkBytes) between
//     group commits; only the last chunk, fsynced, lets it be deleted (an
//     entry whose relocated copy a crash lost is read where it was). The
//     entries are copied as stored (table rows and bytes, after the
//     source record verified), not decoded and encoded again.
//   - A request's buffer (room for the batch header, then its records)
//     belongs to the committer from the send until the committer answers
//     it; only then may SaveRaftState put it back in its pool. A group of
//     one request is framed and written from that buffer; a larger group
//     is copied into the committer's own reused batch buffer.
//   - A record read back is verified (CRC-32C, framing, index and term)
//     before anything in it is returned; a mismatch is read again (up to
//     ReadRetries times: a flip between the disk and memory is not the
//     data on the disk), and one that fails every read is ErrCorrupt,
//     never served. At open a batch that does not verify is read again
//     the same way before a torn tail is cut.
//
// The format and recovery rules are drawn in format.go and recover.go.
package wal
