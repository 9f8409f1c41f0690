# shellcheck shell=bash disable=SC2154
# contrib/bench/lib.sh - shared by contrib/bench/run and contrib/bench/idle
# (sourced, not run).  Callers set srcdir, builddir and out first.

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $(date -u +%H:%M:%S) $*" >&2; }

# bench_enter_ns SCRIPT ARGS...: outside the namespace, check what the
# benchmark needs, create a network namespace with only loopback and a
# temporary directory, run SCRIPT again inside it (in a private mount
# namespace, see setup_devlog) and exit with its status; on exit, whatever
# still runs in the namespace is stopped and both are removed.  Inside the
# namespace (MRBENCH_INNER set) it returns at once.
bench_enter_ns() {
	local script=$1 rc=0 p u c
	shift
	[ -n "${MRBENCH_INNER:-}" ] && return 0
	[ "$(id -u)" -eq 0 ] ||
	    die "must run as root (it creates a network namespace)"
	builddir=$(cd "$builddir" 2>/dev/null && pwd) ||
	    die "MAILROOT_BUILDDIR $builddir: no such directory"
	for p in master/mailrootd smtpd/smtpd queued/queued deliverd/deliverd; do
		[ -x "$builddir/$p" ] ||
		    die "$builddir/$p is missing: build first (./configure && make) or set MAILROOT_BUILDDIR"
	done
	# the project's shared/ sits beside the repository
	RELAY_BENCH=${RELAY_BENCH:-$(command -v relay-bench || true)}
	if [ -z "$RELAY_BENCH" ] && [ -x "$srcdir/../shared/bench/relay-bench" ]; then
		RELAY_BENCH=$(cd "$srcdir/../shared/bench" && pwd)/relay-bench
	fi
	[ -n "$RELAY_BENCH" ] && [ -x "$RELAY_BENCH" ] ||
	    die "relay-bench not found: put it in PATH or set RELAY_BENCH"
	for c in ip unshare python3 postfix postconf timeout; do
		command -v "$c" >/dev/null ||
		    die "$c not found (Debian packages: postfix iproute2 python3)"
	done
	for u in mailroot mailroot-smtpd mailroot-deliver postfix; do
		getent passwd "$u" >/dev/null ||
		    die "user $u is missing (contrib/setup creates mailroot's users, the postfix package its own)"
	done

	bench_ns=mrbench-$$
	bench_tmp=$(mktemp -d /tmp/mrbench.XXXXXX)
	chmod 755 "$bench_tmp"
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	mkdir -p "$out"
	ip netns add "$bench_ns"
	ip netns exec "$bench_ns" ip link set lo up
	log "namespace $bench_ns, temporary directory $bench_tmp"
	# In the background, so that a signal reaches the trap at once.
	timeout --kill-after=30 "${BENCH_TIMEOUT:-7200}" \
	    ip netns exec "$bench_ns" unshare --mount --propagation private \
	    env MRBENCH_INNER=1 MRBENCH_TMP="$bench_tmp" \
	    MAILROOT_BUILDDIR="$builddir" RELAY_BENCH="$RELAY_BENCH" \
	    BENCH_OUT="$out" bash "$script" "$@" &
	bench_inner=$!
	wait "$bench_inner" || rc=$?
	bench_inner=
	[ "$rc" -eq 124 ] && log "stopped: the run took longer than BENCH_TIMEOUT (${BENCH_TIMEOUT:-7200} s)"
	exit "$rc"
}

bench_cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	[ -n "${bench_inner:-}" ] && kill -TERM "$bench_inner" 2>/dev/null
	if ip netns list 2>/dev/null | grep -qw "$bench_ns"; then
		# Whatever still runs in the namespace was started here (a
		# Postfix or a mailrootd left behind by a failure).
		for p in $(ip netns pids "$bench_ns" 2>/dev/null); do
			kill -TERM "$p" 2>/dev/null || true
		done
		for _ in $(seq 1 50); do
			[ -z "$(ip netns pids "$bench_ns" 2>/dev/null)" ] && break
			sleep 0.2
		done
		for p in $(ip netns pids "$bench_ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null || true
		done
		ip netns del "$bench_ns" 2>/dev/null || true
	fi
	rm -rf "$bench_tmp"
	exit "$rc"
}

# mailrootd without -d logs to syslog (/dev/log), which a bench host may
# not have.  In the private mount namespace a small /dev replaces the real
# one and a syslog receiver appends to $MRBENCH_TMP/syslog.log.  Sets
# syslog_pid.
setup_devlog() {
	local t=$MRBENCH_TMP n
	# Already done by the caller (run calls idle)?
	[ -n "${MRBENCH_DEVLOG:-}" ] && [ -S /dev/log ] && return 0
	mkdir -p "$t/dev.orig"
	mount --bind /dev "$t/dev.orig"
	mount -t tmpfs -o mode=755,size=1m tmpfs /dev
	for n in null zero full random urandom tty; do
		[ -e "$t/dev.orig/$n" ] || continue
		touch "/dev/$n"
		mount --bind "$t/dev.orig/$n" "/dev/$n"
	done
	ln -s /proc/self/fd /dev/fd
	ln -s fd/0 /dev/stdin
	ln -s fd/1 /dev/stdout
	ln -s fd/2 /dev/stderr
	mkdir /dev/shm /dev/pts
	mount -t tmpfs -o mode=1777 tmpfs /dev/shm
	umount "$t/dev.orig"
	rmdir "$t/dev.orig"
	rm -f /dev/log
	python3 - "$t/syslog.log" <<'EOF' &
import os, signal, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
out = open(sys.argv[1], "ab", buffering=1 << 16)
def stop(*a):
    out.flush()
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    d = s.recv(65536)
    out.write(d.rstrip(b"\0\n") + b"\n")
EOF
	syslog_pid=$!
	for n in $(seq 1 50); do [ -S /dev/log ] && break; sleep 0.1; done
	[ -S /dev/log ] || die "the syslog receiver did not start"
	export MRBENCH_DEVLOG=1
}

stop_devlog() {
	[ -n "${syslog_pid:-}" ] || return 0
	kill "$syslog_pid" 2>/dev/null || true
	wait "$syslog_pid" 2>/dev/null || true
	syslog_pid=
}

wait_port() {	# until something accepts on 127.0.0.1:$1 (30 s)
	local _
	for _ in $(seq 1 150); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# mailroot's port: 2525, or 2527 when run measures it beside Postfix.
mr_port=${MR_PORT:-2525}

# write_mailroot_conf DIR [EXTRA-LIMITS [SERVER-LINES [GLOBAL-LINES
# [DELIVERY-LINES]]]]: the benchmark's mailroot.conf in DIR/mailroot.conf,
# mailroot in DIR/mailroot, smtpd's chroot DIR/empty.  SERVER-LINES go at
# the end of the server block (dkim, tls, domain routes), GLOBAL-LINES
# before it (pki), DELIVERY-LINES into its delivery block (outbound).
write_mailroot_conf() {
	local d=$1 extra=${2:-} srv=${3:-} glob=${4:-} dl=${5:-}
	mkdir -p "$d/empty" "$d/mailroot"
	chmod 755 "$d" "$d/empty"
	cat >"$d/mailroot.conf" <<EOF
hostname "bench-mailroot.invalid"
chroot "$d/empty"
$glob
server "bench" {
	listen 127.0.0.1:$mr_port
	mailroot "$d/mailroot"
	relay allow 127.0.0.0/8
	limits { ${extra}message-size 20M; session-size 200M; messages-per-connection 1000 }
	delivery { smart-host "[127.0.0.1]:2526"
$dl }
$srv
}
EOF
	"$MAILROOT_BUILDDIR/master/mailrootd" -n -f "$d/mailroot.conf" ||
	    die "mailrootd rejects $d/mailroot.conf"
}

# start_mailroot DIR: mailrootd -f DIR/mailroot.conf -p DIR/mailrootd.pid
# in the background; sets mr_master.  Not -d: it logs to syslog.
start_mailroot() {
	local d=$1 _
	rm -f "$d/mailrootd.pid"
	"$MAILROOT_BUILDDIR/master/mailrootd" -f "$d/mailroot.conf" \
	    -p "$d/mailrootd.pid" </dev/null >>"$d/stderr.log" 2>&1 &
	mr_master=$!
	if ! wait_port "$mr_port"; then
		cat "$d/stderr.log" >&2
		die "mailrootd does not listen on 127.0.0.1:$mr_port"
	fi
	for _ in $(seq 1 50); do [ -s "$d/mailrootd.pid" ] && break; sleep 0.1; done
	[ -s "$d/mailrootd.pid" ] || die "mailrootd wrote no pid file"
}

# stop_mailroot: SIGTERM, 30 s, then SIGKILL.
stop_mailroot() {
	local _
	[ -n "${mr_master:-}" ] || return 0
	kill -TERM "$mr_master" 2>/dev/null || true
	for _ in $(seq 1 150); do
		kill -0 "$mr_master" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$mr_master" 2>/dev/null; then
		log "mailrootd did not stop within 30 s of SIGTERM; killing it"
		kill -KILL "$mr_master" 2>/dev/null || true
	fi
	wait "$mr_master" 2>/dev/null || true
	mr_master=
	for _ in $(seq 1 100); do port_free "$mr_port" && break; sleep 0.2; done
}
