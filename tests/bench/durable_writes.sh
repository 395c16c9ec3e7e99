#!/usr/bin/env bash
# Durable writes on a slow card: the release binary runs under strace, which delays every fsync
# and fdatasync by 300 ms (as a worn SD card does), and the benchmark measures what that costs.
#
#   tests/bench/durable_writes.sh            (BIN=path/to/rampart to measure another build)
#
# Run by hand (not part of tests/run.sh); needs strace (Debian 6.1), python3 and ffmpeg.
# Started on 127.0.0.1 with a temporary configuration directory (LiveApp with
# publishTokenControlEnabled, a server JWT key for the server API). While it runs:
#   - an unrelated REST call (GET /LiveApp/rest/v2/broadcasts/list/0/1) is polled every ~10 ms;
#   - ffmpeg publishes a 30 fps stream "watch" (admitted by its own one-time token) and a minimal
#     RTMP player (durable_helper.py) reads it, noting the arrival of every video message.
# Phases, each ending once the daemon's write_bytes stop changing for 1 s (the "s" column):
#   idle; one settings change (PUT /rest/v2/applications/settings/LiveApp); one datastore write
#   (POST broadcasts/create); 100 publishes admitted by one-time tokens, started 10 ms apart.
# Printed per phase: fsync+fdatasync calls (strace -ttt, counted in the phase's time window),
# /proc/<pid>/io write_bytes (bytes the daemon sent towards storage), the worst latency of the
# unrelated REST call and the worst gap between video messages at the player. Nothing is asserted.
#
# Environment:
#   BIN             the binary (default target/release/rampart, built when older than src/)
#   BENCH_DELAY_US  delay injected into each fsync/fdatasync, microseconds (default 300000)
#   BENCH_KEEP=1    keep the work directory (strace output, logs, samples)

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HELPER="$ROOT/tests/bench/durable_helper.py"
BIN=${BIN:-"$ROOT/target/release/rampart"}
DELAY=${BENCH_DELAY_US:-300000}
WORK=$(mktemp -d /var/tmp/durable_writes.XXXXXX)
PIDS=()
STRACE_PID=""

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
helper() { python3 "$HELPER" "$@"; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# Stops one process we started, by its id: SIGTERM, then SIGKILL after 5 s.
stop_pid() {
    local pid=$1 i
    alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    [ -n "${DAEMON_PID:-}" ] && alive "$DAEMON_PID" && kill -TERM "$DAEMON_PID" 2>/dev/null
    [ -n "$STRACE_PID" ] && stop_pid "$STRACE_PID"
    if [ "${BENCH_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in strace python3 ffmpeg; do command -v $tool >/dev/null || die "$tool is needed"; done
if [ "$BIN" = "$ROOT/target/release/rampart" ] && { [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" -newer "$BIN" -print -quit)" ]; }; then
    log "building rampart (cargo build --release)"
    (cd "$ROOT" && cargo build --release) || die "cargo build --release failed"
fi
[ -x "$BIN" ] || die "$BIN missing"

RTMP_PORT=$(helper freeport)
HTTP_PORT=$(helper freeport)
mkdir -p "$WORK/config/apps" "$WORK/data"
cat >"$WORK/config/server.properties" <<EOF
rtmp.host=127.0.0.1
rtmp.port=$RTMP_PORT
http.host=127.0.0.1
http.port=$HTTP_PORT
rtmps.port=0
https.port=0
data.dir=$WORK/data
logLevel=INFO
rtmp.maxConnections=1000
rtmp.maxConnectionsPerAddress=1000
rtmp.admissionTimeout=300
server.handshakeTimeout=120
server.idleTimeout=300
server.jwtServerControlEnabled=true
server.jwtServerSecretKey=bench-server-jwt-key-0123456789abcdef
EOF
printf 'publishTokenControlEnabled=true\ntimeTokenPeriod=60\n' >"$WORK/config/apps/LiveApp.properties"

log "starting $BIN under strace (fsync/fdatasync delayed ${DELAY} us)"
strace -f --seccomp-bpf -ttt -o "$WORK/strace.out" -e trace=fsync,fdatasync \
    -e inject=fsync,fdatasync:delay_enter="$DELAY" -- "$BIN" --config "$WORK/config" >"$WORK/daemon.log" 2>&1 &
STRACE_PID=$!
for i in $(seq 300); do
    DAEMON_PID=$(pgrep -P "$STRACE_PID" | head -n1)
    [ -n "$DAEMON_PID" ] && [ -n "$(ss -Hltn "sport = :$HTTP_PORT")" ] && [ -n "$(ss -Hltn "sport = :$RTMP_PORT")" ] && break
    alive "$STRACE_PID" || { cat "$WORK/daemon.log" >&2; die "the daemon exited"; }
    sleep 0.1
done
[ -n "$(ss -Hltn "sport = :$HTTP_PORT")" ] || { cat "$WORK/daemon.log" >&2; die "the daemon did not listen"; }
log "daemon pid $DAEMON_PID"

python3 "$HELPER" poll "127.0.0.1:$HTTP_PORT" "$WORK/polls.txt" &
PIDS+=($!)
WATCH=$(helper token "127.0.0.1:$HTTP_PORT" watch) || die "no token for the watched stream"
ffmpeg -nostdin -loglevel error -re -f lavfi -i testsrc2=size=640x360:rate=30 \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -b:v 1M \
    -f flv "rtmp://127.0.0.1:$RTMP_PORT/LiveApp/watch?token=$WATCH" >"$WORK/publisher.log" 2>&1 &
PIDS+=($!)
sleep 2
python3 "$HELPER" play "rtmp://127.0.0.1:$RTMP_PORT/LiveApp/watch" "$WORK/frames.txt" 2>"$WORK/player.log" &
PIDS+=($!)
for i in $(seq 100); do [ -s "$WORK/frames.txt" ] && break; sleep 0.1; done
[ -s "$WORK/frames.txt" ] || { cat "$WORK/player.log" "$WORK/publisher.log" >&2; die "the player received no video"; }

echo "durable writes, every fsync/fdatasync delayed $((DELAY / 1000)) ms; $(nproc) cores; $("$BIN" --version 2>/dev/null | head -n1) ($BIN, built $(date -r "$BIN" '+%F %T'))"
helper run "127.0.0.1:$HTTP_PORT" "127.0.0.1:$RTMP_PORT" "$DAEMON_PID" "$WORK" || die "the scenario failed"
# strace writes its output in full only once the daemon has ended.
for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
PIDS=()
kill -TERM "$DAEMON_PID" 2>/dev/null
stop_pid "$STRACE_PID"
STRACE_PID=""
helper report "$WORK"
grep -ciE 'warn|error' "$WORK/daemon.log" | sed 's/^/daemon log lines with WARN or ERROR: /'
