#!/bin/sh
# gen.sh OUTDIR
#
# Builds the simulator's seeded runtime as a `go build -overlay`: copies
# runtime/rand.go, synctest.go, select.go, time.go, proc.go,
# internal/sync/mutex.go and hashtriemap.go, unique/canonmap.go, os/exec.go
# and os/sys.go of the installed Go ($(go env GOROOT), never
# modified) to OUTDIR/_src/ (the "_" keeps the copies out of ./...
# patterns: bin/ is inside the module), applies runtime.patch (beside
# this script) with no fuzz, and writes OUTDIR/overlay.json, which maps
# the GOROOT files to the patched copies. make sim, sim-long,
# sim-diverge and the simulator part of make test pass it with -overlay;
# the production binary (make build) never does.
#
# The patch: one process-wide random stream for the runtime's rand()
# from a constant startup seed, instead of per-thread state seeded by the
# OS, and inside a synctest bubble one stream per bubble, starting afresh
# in each (synctest.go gets the field). Inside a bubble only the draws
# that decide what the bubble does take from its stream: select's choice
# among ready cases and the order of timers due at one instant
# (select.go, time.go), math/rand's and maphash's seeds; maps draw nothing
# there (seed 0, iteration from the table's start), nor do sync.Map and
# unique's maps (hashtriemap.go, canonmap.go: runtime.simLayoutRand; a
# package-level one, made lazily by the first run of a process, shifted
# that run's stream and no later run's), and the runtime's
# incidental cheaprand() draws (heap profiling samples, cache eviction,
# lock spinning) keep per-thread state. No starvation mode in
# sync.Mutex for a waiter that waited 1 ms of wall time (it changes who
# gets the lock next). And the scheduler (proc.go) never reorders a
# bubble on wall time: sysmon does not preempt a bubble's goroutine after
# 10 ms, nor take the P of one in a system call (for up to 1 s); a
# goroutine from outside any bubble never kicks a bubble's goroutine out
# of runnext; and a bubble's runnext chain counts scheduler ticks, so the
# global run queue (a watchdog back from select(2)) still gets its turn
# every 61st (TestSimBudget). os.Getpid and os.Hostname return constants:
# dragonboat hashes them into the seeds of its proposal keys and session
# client ids, i.e. into the bytes of Raft messages, so a seed would not
# replay in another process (TestDepsSeedsProcessFree). See sim/doc.go,
# "Determinism".
#
# A Go upgrade that changes those files makes the patch fail to apply:
# this script then fails loudly, and the patch must be redone for the new
# runtime (regenerate runtime.patch with diff -u against the new files).
set -eu
out=${1:?usage: gen.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
mkdir -p "$out"
out=$(cd "$out" && pwd)
files="runtime/rand.go runtime/synctest.go runtime/select.go runtime/time.go runtime/proc.go internal/sync/mutex.go internal/sync/hashtriemap.go unique/canonmap.go os/exec.go os/sys.go"
rm -rf "$out/src" "$out/_src" # src: the layout before _src
for f in $files; do
	mkdir -p "$(dirname "$out/_src/$f")"
	cp "$goroot/src/$f" "$out/_src/$f"
	chmod u+w "$out/_src/$f"
done
if ! patch --quiet --forward --fuzz=0 --no-backup-if-mismatch -r - -p1 -d "$out/_src" <"$here/runtime.patch" >"$out/patch.log" 2>&1; then
	cat "$out/patch.log" >&2
	echo "sim/overlay/gen.sh: FAILED: sim/overlay/runtime.patch no longer applies to the runtime of $gover ($goroot/src/runtime)." >&2
	echo "The simulator's seeded runtime must be redone for this Go version: apply the same changes by hand to copies of the files named in this script and regenerate runtime.patch with diff -u." >&2
	exit 1
fi
n=$(cd "$out/_src" && grep -c "chronik sim overlay" $files | awk -F: '{s += $2} END {print s}')
if [ "$n" -lt 4 ]; then
	echo "sim/overlay/gen.sh: FAILED: the patched runtime lacks its markers ($n found)" >&2
	exit 1
fi
{
	printf '{"Replace": {'
	sep=
	for f in $files; do
		printf '%s\n  "%s": "%s"' "$sep" "$goroot/src/$f" "$out/_src/$f"
		sep=,
	done
	printf '\n}}\n'
} >"$out/overlay.json"
echo "$gover" >"$out/goversion"
