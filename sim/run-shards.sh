#!/bin/sh
# run-shards.sh PROCS START_NS TESTBIN [test flags...]
#
# Runs the compiled simulator test binary TESTBIN in PROCS processes at
# once, sharing one -seeds range through -seed-claims (each seed runs in the
# first process to claim it, so the shards balance themselves; process i
# also gets -seed-shard=i -seed-shards=PROCS, which tests with fixed seeds
# use to run in shard 0 only), each under the caller's environment (make sim sets
# GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 GOGC=400: replay needs one P per
# process, so parallelism comes from processes). Every line a shard prints
# is shown prefixed with "[i/PROCS]" and kept in bin/sim-shards/shard-i.log.
# At the end it sums the shards' "simstats:" lines into one figure over the
# wall time since START_NS (date +%s%N when the make target began, build
# included), and their CPU time per schedule (cpu_s: getrusage, build not
# included), and exits non-zero if any shard failed.
set -u
procs=$1 start=$2 bin=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
logs=$(cd "$here/.." && pwd)/bin/sim-shards
rm -rf "$logs"
mkdir -p "$logs/claims"
i=0
while [ "$i" -lt "$procs" ]; do
	(
		(cd "$here" && "$bin" -test.count=1 "$@" -seed-shard="$i" -seed-shards="$procs" -seed-claims="$logs/claims" 2>&1
		echo $? >"$logs/shard-$i.rc") |
			awk -v p="[$i/$procs] " -v out="$logs/shard-$i.log" '{ print p $0; print $0 > out; fflush() }'
	) &
	i=$((i + 1))
done
wait
end=$(date +%s%N)

rc=0
i=0
while [ "$i" -lt "$procs" ]; do
	r=$(cat "$logs/shard-$i.rc" 2>/dev/null || echo missing)
	if [ "$r" != 0 ]; then
		echo "sim: shard $i/$procs failed (exit $r): $logs/shard-$i.log"
		grep -h 'reproduce:' "$logs/shard-$i.log" | sed 's/^ *//' | sort -u
		rc=1
	elif ! grep -q '^simstats:' "$logs/shard-$i.log"; then
		echo "sim: shard $i/$procs printed no simstats line: $logs/shard-$i.log"
		rc=1
	fi
	i=$((i + 1))
done
cat "$logs"/shard-*.log | awk -v procs="$procs" -v start="$start" -v end="$end" '
/^simstats:/ {
	for (f = 2; f <= NF; f++) { split($f, kv, "="); sum[kv[1]] += kv[2] }
}
END {
	wall = (end - start) / 1e9
	if (wall <= 0) wall = 1e-9
	printf "sim: %d schedules in %d processes, %.1fs wall (whole target, build included): %.1f schedules/minute, simulated/wall time %.1fx (%.0fs virtual)\n",
		sum["schedules"], procs, wall, sum["schedules"] / (wall / 60), sum["virtual_s"] / wall, sum["virtual_s"]
	if (sum["schedules"] > 0)
		printf "sim: %.1f CPU s in the test processes, %.2f CPU s per schedule (the figure a shared machine does not skew much)\n",
			sum["cpu_s"], sum["cpu_s"] / sum["schedules"]
	if (sum["collected"] > 0)
		printf "sim: the collector ran inside %d schedules (heap past the limit: they may not replay)\n", sum["collected"]
	if (sum["replays"] > 0)
		printf "sim: determinism: %d/%d seeds reproduced their canonical trace hash (%.1f%%)\n",
			sum["reproduced"], sum["replays"], 100 * sum["reproduced"] / sum["replays"]
}'
exit $rc
