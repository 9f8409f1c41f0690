#!/bin/sh
# run.sh - builds the fuzz targets, replays known crashes, then fuzzes.
#
# Usage: tests/fuzz/run.sh [--smoke] [seconds] [builddir]
#   (default 30 seconds per target; FUZZ_TARGETS limits the targets)
# First every input in tests/fuzz/crashes/<target>/ is replayed, so a
# fixed crash stays fixed.  Then, in the timed mode (CI), each target
# starts from a copy of tests/fuzz/corpus/<target>/ (the seeds in the tree
# are never written to) and runs for N seconds; the run fails on the first
# crash, leak, timeout, sanitizer report or broken invariant, and the
# reproducer is copied to tests/fuzz/crashes/<target>/ for the developer
# (see README).  --smoke only replays the seeds: seconds, not minutes.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
smoke=0
if [ "${1:-}" = "--smoke" ]; then
	smoke=1
	shift
fi
secs=${1:-30}
out=${FUZZ_OUT:-${TMPDIR:-/tmp}/mailroot-fuzz}
export FUZZ_OUT=$out
targets=${FUZZ_TARGETS:-"fuzz_addr fuzz_ipc fuzz_conf fuzz_smtp_cmd \
fuzz_dstream fuzz_bdat fuzz_env fuzz_pickup fuzz_msg_queued fuzz_msg_smtpd \
fuzz_msg_deliverd fuzz_msg_master fuzz_proxy fuzz_table_text \
fuzz_table_regex fuzz_submit fuzz_hdr_check fuzz_sasl fuzz_ctl \
fuzz_dovecot fuzz_xoauth2 fuzz_masq_hdr fuzz_smtp_reply fuzz_dkim \
fuzz_tlsa fuzz_mta_sts"}

if [ $# -ge 2 ]; then
	"$here/build.sh" "$2"
else
	"$here/build.sh"
fi

# replay target files...: runs each input once, 0 if none fails
replay() {
	target=$1
	shift
	"$out/$target" -timeout=10 -rss_limit_mb=2048 "$@" \
	    > "$out/$target.replay.log" 2>&1
}

# keep: copies this run's reproducers of target into the tree
keep() {
	target=$1
	mkdir -p "$here/crashes/$target"
	for f in "$out/artifacts/$target-"*; do
		[ -f "$f" ] || continue
		name=${f##*/}
		name=${name#"$target"-}
		cp "$f" "$here/crashes/$target/$name"
		echo "fuzz: kept tests/fuzz/crashes/$target/$name"
	done
}

status=0
for target in $targets; do
	# known crashes first: each must now pass
	set -- "$here/crashes/$target/"*
	if [ -f "$1" ]; then
		if replay "$target" "$@"; then
			echo "fuzz: $target replayed $# crash input(s)"
		else
			echo "fuzz: $target FAILED on a known crash input" \
			    "(see $out/$target.replay.log)"
			grep -E '^Running:|^invariant failed|ERROR:|SUMMARY:' \
			    "$out/$target.replay.log" | tail -n 5
			status=1
			continue
		fi
	fi

	if [ $smoke -eq 1 ]; then
		if replay "$target" -runs=0 "$here/corpus/$target"; then
			echo "fuzz: $target replayed" \
			    "$(ls "$here/corpus/$target" | wc -l) seeds"
		else
			echo "fuzz: $target FAILED on a seed" \
			    "(see $out/$target.replay.log)"
			grep -E '^invariant failed|ERROR:|SUMMARY:' \
			    "$out/$target.replay.log" | tail -n 5
			status=1
		fi
		continue
	fi

	corpus=$out/corpus/$target
	rm -rf "$corpus"
	mkdir -p "$corpus" "$out/artifacts"
	rm -f "$out/artifacts/$target-"*
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
		keep "$target"
		status=1
	fi
done
exit $status
