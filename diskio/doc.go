// Package diskio is Chronik's disk seam: the small FS and File interfaces that
// every byte Chronik stores goes through, with two implementations.
//
//   - OS: the operating system's files, with real fsync, and an fsync of the
//     parent directory after every create, rename and remove.
//   - Sim: an in-memory file system for the simulator. Per file it keeps
//     what has been made durable by Sync and the writes since; it can freeze
//     at a crash instant and build the image a restarted node would find
//     (the synced state plus, if asked, a prefix of later writes ending in a
//     torn tail), and it injects faults (errors by operation and path,
//     ENOSPC at a capacity, bit flips on read, latency) from a seeded source.
//
// VFS adapts an FS to the lni/vfs interface that dragonboat takes in
// config.NodeHostConfig.Expert.FS, so Raft's own log lives on the same
// (possibly simulated) disk.
//
// Errors: every error is a *PathError naming the operation and the path and
// wrapping one of this package's sentinels or the OS error; nothing here
// panics on bad bytes or failed I/O.
package diskio
