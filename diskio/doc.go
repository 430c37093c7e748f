// Package diskio is Chronik's disk seam: the small FS and File interfaces that
// every byte Chronik stores goes through, with two implementations.
//
//   - OS (os.go): the operating system's files, with real fsync (File.Sync
//     is fsync), and an fsync of the parent directory after every Create,
//     CreateExclusive, Remove and RemoveAll, of both parents after Rename,
//     and of the parent of each level MkdirAll created. ReadAt and WriteAt
//     are pread/pwrite; Append writes at the size fstat reports (no
//     O_APPEND, so WriteAt stays usable on the same handle). List is sorted.
//   - Sim (sim.go, sim_crash.go, sim_fault.go): an in-memory file system for
//     the simulator. Per file it keeps what has been made durable by Sync and
//     the writes since; it can freeze at a crash instant and build the image
//     a restarted node would find (the synced state plus, if asked, a prefix
//     of later writes ending in a torn tail), and it injects faults (errors
//     by operation and path, ENOSPC at a capacity, bit flips on read,
//     latency) from a seeded source.
//
// VFS (vfs.go) adapts an FS to the lni/vfs interface that dragonboat takes in
// config.NodeHostConfig.Expert.FS, so Raft's own log lives on the same
// (possibly simulated) disk. See NewVFS for where it differs from vfs.Default
// (Link copies, Lock is in-process only).
//
// # Errors
//
// Every error is a *PathError naming the operation ("create", "open", "read",
// "write", "append", "sync", "truncate", "remove", "removeall", "rename",
// "mkdir", "list", "stat", "syncdir", "size", "close") and the path as the
// caller passed it ("old -> new" for rename). Its Err matches, with
// errors.Is, one of this package's sentinels and the standard library's
// equivalent (ErrNotExist and fs.ErrNotExist, ErrExist and fs.ErrExist,
// ErrNoSpace and syscall.ENOSPC, ErrClosed and fs.ErrClosed, ErrReadOnly and
// fs.ErrPermission), so cockroachdb's oserror.IsNotExist and
// vfs.IsNoSpaceError work on them; for OS it unwraps to the errno. Other OS
// errors are wrapped as they are. The one exception is io.EOF from ReadAt,
// returned bare as io.ReaderAt callers expect. Nothing here panics on bad
// bytes or failed I/O.
//
// # Concurrency
//
// FS methods are safe for concurrent use. File follows the FS interface's
// contract. Sim guards all its state with one mutex and never sleeps or
// blocks while holding it: injected latency is slept before the lock is
// taken, so Sim works inside testing/synctest bubbles (virtual time).
//
// # Sim data structure and invariants
//
// The namespace is two maps under Sim.mu: files (clean path -> *inode) and
// dirs (a set of clean paths, always holding the root "."); "/a" and "a"
// name the same file. Invariant: the parent of every file and directory is
// in dirs. Handles point at the inode, not the path, so they keep working
// after Rename, and after Remove (POSIX-like: the unlinked inode stays
// readable and writable through open handles, and counts for nothing).
//
// Metadata (Create, CreateExclusive, Rename, Remove, RemoveAll, MkdirAll)
// is durable as soon as it returns, matching OS which fsyncs the directory.
// Create of an existing file empties it durably at once (same inode, so
// other handles see the truncation) and drops its journal.
//
// Per inode: data is the current content, and journal the writes and
// truncates since the last successful Sync, oldest first. Each journal entry
// records the size before it and the bytes it overwrote (write) or cut
// (truncate) below that size; an append beyond the end records no bytes.
// Invariant: undoing the journal in reverse order from data yields the
// durable content (DurableFile), and undoing only entries k.. yields the
// content right after entry k-1. Hence Sync is O(1) in the file's size: it
// drops the journal; reconstruction is paid only by DurableFile and
// CrashImage. A failed Sync keeps the journal (nothing became durable).
// Memory is bounded by the file sizes plus the unsynced ops and the bytes
// they overwrote; callers bound the latter by syncing.
//
// usedBytes is the sum of the linked files' sizes. Invariant: with
// Faults.CapacityBytes > 0, a write or growing truncate that would take it
// past the capacity fails with ErrNoSpace and changes nothing.
//
// Freeze is the crash instant: it copies every linked inode's content and
// journal (the journal's undo bytes are immutable, so they are shared) and
// the directory set. Operations afterwards keep working for the dying
// process, but CrashImage builds from the frozen copy only. CrashImage
// returns a new Sim whose every file is durable: per file (in sorted path
// order, so the seeded draws are deterministic) the frozen journal is cut at
// a prefix k (0 for CrashSyncedOnly, uniform in [0, n] otherwise), and in
// CrashTornPrefix a write at the cut keeps a random prefix of its bytes,
// then a random number of garbage bytes, the rest of its range reverting to
// what was there before it.
//
// Randomness: two math/rand/v2 PCG sources derived from the seed, one for
// faults (rules, bit flips) and one for crash images (cuts, torn tails, and
// the derived seed of each image). The global rand is never used. The same
// seed and the same sequence of calls give the same faults and images.
package diskio
