#!/bin/sh
# build.sh - compiles mailroot's libFuzzer targets with clang.
#
# Usage: tests/fuzz/build.sh [builddir]
#   builddir: a configured build tree whose config.h to use; without it
#   a minimal config.h (_GNU_SOURCE) is generated.
# Binaries go to $FUZZ_OUT (default ${TMPDIR:-/tmp}/mailroot-fuzz), never
# into the source tree.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${FUZZ_OUT:-${TMPDIR:-/tmp}/mailroot-fuzz}
CC=${CC:-clang}
mkdir -p "$out"

if [ $# -ge 1 ] && [ -f "$1/config.h" ]; then
	confdir=$(cd "$1" && pwd)
else
	confdir=$out/include
	mkdir -p "$confdir"
	printf '#define _GNU_SOURCE 1\n' > "$confdir/config.h"
fi

CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
-fno-sanitize-recover=undefined -Wall -Wextra -I$here -I$top/common -I$confdir"

ev_cflags=$(pkg-config --cflags libevent_core 2>/dev/null || true)
ev_libs=$(pkg-config --libs libevent_core 2>/dev/null || echo -levent_core)

# target: the sources it needs, then extra link flags
build() {
	name=$1
	shift
	echo "fuzz: building $name"
	# shellcheck disable=SC2086
	$CC $CFLAGS $ev_cflags -o "$out/$name" "$here/$name.c" "$@"
}

c=$top/common

build fuzz_addr "$c/addr.c"
build fuzz_ipc "$c/ipc.c" "$c/ipc_msg.c" "$c/dsn_param.c" "$c/addr.c" \
    "$c/buf.c" "$c/log.c" $ev_libs
build fuzz_conf "$c/conf_lex.c" "$c/conf_parse.c" "$c/conf_print.c" \
    "$c/conf_lookup.c" "$c/conf_inert.c" "$c/buf.c" "$c/log.c" "$c/addr.c"
build fuzz_smtp_cmd "$c/smtp_cmd.c" "$c/bdat_frame.c" "$c/dsn_param.c" \
    "$c/addr.c"
build fuzz_dstream "$c/dstream.c"
build fuzz_bdat "$c/bdat_frame.c" "$c/dstream.c"
build fuzz_proxy "$c/proxy_hdr.c"
build fuzz_sasl "$c/sasl.c"
build fuzz_dovecot "$c/dovecot_auth.c" "$c/sasl.c"
build fuzz_xoauth2 "$c/xoauth2.c" "$c/sasl.c"
build fuzz_smtp_reply "$c/smtp_reply.c" "$c/buf.c" "$c/log.c" $ev_libs
build fuzz_env -I"$top/queued" "$top/queued/queue_env.c" "$top/queued/qstr.c" "$c/dsn_param.c" \
    "$c/buf.c" "$c/log.c" "$c/util.c" $ev_libs
build fuzz_table_text "$c/table_inline.c" "$c/buf.c" "$c/log.c" "$c/util.c" \
    $ev_libs
build fuzz_table_regex "$c/table_regex.c" "$c/buf.c" "$c/log.c" \
    "$c/util.c" $ev_libs -lpcre2-8

build fuzz_pickup -I"$top/queued" "$top/queued/pickup_parse.c" \
    "$c/dstream.c" "$c/addr.c" "$c/buf.c" "$c/log.c"

build fuzz_submit -I"$top/queued" "$c/submit.c" \
    "$top/queued/pickup_parse.c" "$c/dstream.c" "$c/addr.c" "$c/buf.c" \
    "$c/log.c"

build fuzz_hdr_check "$c/hdr_check.c" "$c/table_regex.c" \
    "$c/table_inline.c" "$c/buf.c" \
    "$c/log.c" "$c/util.c" $ev_libs -lpcre2-8

build fuzz_ctl "$c/ctl_proto.c"
build fuzz_masq_hdr "$c/masq_hdr.c" "$c/buf.c" "$c/log.c" $ev_libs

build fuzz_dkim "$c/dkim_canon.c" "$c/buf.c" "$c/log.c"
build fuzz_tlsa -I"$top/deliverd" "$top/deliverd/dane_tlsa.c" "$c/buf.c" \
    "$c/log.c"
build fuzz_mta_sts "$c/mta_sts_parse.c"

# the IPC payload decoders, one target per receiving process
for r in queued smtpd deliverd master; do
	echo "fuzz: building fuzz_msg_$r"
	R=$(echo "$r" | tr a-z A-Z)
	# shellcheck disable=SC2086
	$CC $CFLAGS -DFUZZ_$R -o "$out/fuzz_msg_$r" "$here/fuzz_msg.c" \
	    "$c/ipc_msg.c" "$c/dsn_param.c" "$c/buf.c" "$c/addr.c" "$c/log.c"
done

echo "fuzz: targets in $out"
