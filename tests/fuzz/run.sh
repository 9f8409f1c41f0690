#!/bin/sh
# run.sh - builds the fuzz targets and runs each for N seconds.
#
# Usage: tests/fuzz/run.sh [seconds] [builddir]   (default 30 seconds)
# Each target starts from a copy of tests/fuzz/corpus/<target>/ (the seeds
# in the tree are never written to) and the run fails on the first crash,
# leak, sanitizer report or broken invariant; the reproducer is left in
# $FUZZ_OUT/artifacts/.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-30}
out=${FUZZ_OUT:-${TMPDIR:-/tmp}/mailroot-fuzz}
export FUZZ_OUT=$out

if [ $# -ge 2 ]; then
	"$here/build.sh" "$2"
else
	"$here/build.sh"
fi

status=0
for target in fuzz_addr fuzz_ipc; do
	corpus=$out/corpus/$target
	rm -rf "$corpus"
	mkdir -p "$corpus" "$out/artifacts"
	cp "$here/corpus/$target/"* "$corpus/"
	dict=
	if [ -f "$here/$target.dict" ]; then
		dict=-dict=$here/$target.dict
	fi
	echo "fuzz: $target for ${secs}s, $(ls "$corpus" | wc -l) seeds"
	# shellcheck disable=SC2086
	if "$out/$target" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$out/artifacts/$target-" $dict \
	    "$corpus" > "$out/$target.log" 2>&1; then
		echo "fuzz: $target passed, corpus now" \
		    "$(ls "$corpus" | wc -l) files"
		grep -E 'stat::number_of_executed_units|stat::peak_rss' \
		    "$out/$target.log" || true
	else
		echo "fuzz: $target FAILED (see $out/$target.log)"
		tail -n 40 "$out/$target.log"
		status=1
	fi
done
exit $status
