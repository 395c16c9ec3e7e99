#!/usr/bin/env bash
# Side-by-side RTMP fan-out benchmark: rampart against nginx with Debian's libnginx-mod-rtmp.
#
#   tests/bench/rtmp_fanout.sh [N ...]        (default: 50 200)
#
# Run by hand (not part of tests/run.sh); needs root for apt-get when something is missing.
# For each server and each N: start the server on a free port of 127.0.0.1, publish one
# 720p30 H.264/AAC stream with ffmpeg, attach N ffmpeg readers (-c copy to null), measure the
# server process over a window of BENCH_SECONDS, then stop everything. Printed per run: CPU
# seconds per reader-minute, peak RSS (VmHWM), and how many readers kept up (received at least
# 90% of the frames the publisher should have produced in the window: 30 fps x seconds).
#
# Environment:
#   BENCH_SECONDS   measured window in seconds (default 60; 20 for a quick run)
#   BENCH_SERVERS   servers to run, in order (default "rampart nginx")
#   BENCH_KEEP=1    keep the work directory (logs, configs, progress files) afterwards
#   BENCH_QUIET_WAIT  seconds to wait before each run for the host to be at most 25% busy
#                   (default 180; other work on the machine skews the numbers)
#   BENCH_ALLOW_STALE=1  if cargo build --release fails, benchmark the existing binary (noted)
#
# Frames are counted inside the window: each reader's last frame= progress value at the end of
# the window minus the one at its start, so the GOP burst a reader gets on joining is left out.
# The window opens once every reader shows a frame and the run has settled: starting many
# ffmpeg processes on a small machine starves the publisher (it falls below 1x and catches up
# later) and leaves readers with a backlog; both would inflate the frames counted in the window.
# Extra columns: the server's CPU seconds and share of one core, the frames the publisher
# produced, reader frames min/median/max, readers that exited early, established connections on
# the server port at the end, and how busy the host was (and the share of it that was this
# benchmark's own processes: the server, the publisher and the readers).

set -uo pipefail

BENCH_SECONDS=${BENCH_SECONDS:-60}
BENCH_SERVERS=${BENCH_SERVERS:-"rampart nginx"}
FPS=30
STAGGER=0.03          # seconds between reader starts
READY_TIMEOUT=60      # seconds the readers have to show their first frame
SETTLE_TIMEOUT=60     # seconds to wait for a steady state (publisher at 1x, no reader backlog)
if [ $# -gt 0 ]; then NS=("$@"); else NS=(50 200); fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HELPER="$ROOT/tests/bench/fanout_helper.py"
BIN="$ROOT/target/release/rampart"
WORK=$(mktemp -d /tmp/rtmp_fanout.XXXXXX)
RESULTS="$WORK/results.jsonl"
NOTES="$WORK/notes.txt"
CLK_TCK=$(getconf CLK_TCK)

STALE_NOTE=""
SERVER_PID=""
PUB_PID=""
READER_PIDS=()

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
note() { printf '%s\n' "$*" >>"$NOTES"; log "$*"; }
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

stop_readers() {
    local pid i left
    [ ${#READER_PIDS[@]} -eq 0 ] && return 0
    for pid in "${READER_PIDS[@]}"; do alive "$pid" && kill -TERM "$pid" 2>/dev/null; done
    for i in $(seq 50); do
        left=0
        for pid in "${READER_PIDS[@]}"; do alive "$pid" && { left=1; break; }; done
        [ $left -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${READER_PIDS[@]}"; do alive "$pid" && kill -KILL "$pid" 2>/dev/null; done
    for pid in "${READER_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    READER_PIDS=()
}

stop_all() {
    stop_readers
    [ -n "$PUB_PID" ] && stop_pid "$PUB_PID"
    PUB_PID=""
    [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"
    SERVER_PID=""
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    if [ $rc -ne 0 ] && [ -s "$RESULTS" ]; then
        echo "partial results (the run failed):"
        helper table "$RESULTS"
    fi
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

# ---------------------------------------------------------------- setup

rtmp_module() {
    local conf so
    for conf in /usr/share/nginx/modules-available/mod-rtmp.conf /etc/nginx/modules-enabled/*rtmp*.conf; do
        [ -f "$conf" ] || continue
        so=$(sed -n 's/^[[:space:]]*load_module[[:space:]]\+\([^;]*\);.*/\1/p' "$conf" | head -n1)
        [ -n "$so" ] || continue
        case $so in /*) ;; *) so="/usr/share/nginx/$so" ;; esac
        [ -f "$so" ] && { readlink -f "$so"; return 0; }
    done
    for so in /usr/lib/nginx/modules/ngx_rtmp_module.so /usr/share/nginx/modules/ngx_rtmp_module.so; do
        [ -f "$so" ] && { readlink -f "$so"; return 0; }
    done
    return 1
}

setup_packages() {
    local pkgs=() nginx_pkg="" p before after pid
    command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || pkgs+=(ffmpeg)
    if ! command -v nginx >/dev/null; then
        for p in nginx-light nginx-core nginx; do
            apt-cache show "$p" >/dev/null 2>&1 && { nginx_pkg=$p; break; }
        done
        if [ -z "$nginx_pkg" ]; then
            apt-get update -qq || die "apt-get update failed"
            for p in nginx-light nginx-core nginx; do
                apt-cache show "$p" >/dev/null 2>&1 && { nginx_pkg=$p; break; }
            done
        fi
        [ -n "$nginx_pkg" ] || die "no nginx package found (nginx-light, nginx-core, nginx)"
        pkgs+=("$nginx_pkg")
    fi
    rtmp_module >/dev/null || pkgs+=(libnginx-mod-rtmp)
    [ ${#pkgs[@]} -eq 0 ] && return 0
    log "installing ${pkgs[*]}"
    before=$(pgrep -x nginx | sort)
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}"; then
        apt-get update -qq || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" \
            || die "apt-get install ${pkgs[*]} failed"
    fi
    # A package's postinst may have started the system nginx (port 80): stop what it started.
    after=$(pgrep -x nginx | sort)
    if [ "$before" != "$after" ] && [ -f /run/nginx.pid ]; then
        pid=$(cat /run/nginx.pid)
        if ! grep -qx "$pid" <<<"$before"; then
            log "the package install started the system nginx (pid $pid); stopping it"
            nginx -s quit 2>/dev/null || kill -TERM "$pid"
        fi
    fi
    command -v ffmpeg >/dev/null && command -v nginx >/dev/null && rtmp_module >/dev/null \
        || die "setup incomplete after apt-get install"
}

setup_rampart() {
    if [ ! -x "$BIN" ] || [ -n "$(find "$ROOT/src" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -newer "$BIN" -print -quit 2>/dev/null)" ]; then
        log "building rampart (cargo build --release)"
        if ! (cd "$ROOT" && cargo build --release); then
            [ "${BENCH_ALLOW_STALE:-0}" = 1 ] && [ -x "$BIN" ] \
                || die "cargo build --release failed (BENCH_ALLOW_STALE=1 benchmarks the existing binary)"
            STALE_NOTE="cargo build --release failed; benchmarked the existing binary built $(date -r "$BIN" '+%F %T')"
            log "$STALE_NOTE"
        fi
    fi
    [ -x "$BIN" ] || die "$BIN missing after the build"
}

# ---------------------------------------------------------------- servers

wait_listening() {
    local port=$1 pid=$2 i
    for i in $(seq 100); do
        alive "$pid" || return 1
        [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    return 1
}

start_rampart() {
    local port=$1 dir=$2
    mkdir -p "$dir/config" "$dir/data"
    cat >"$dir/config/server.properties" <<EOF
rtmp.host=127.0.0.1
rtmp.port=$port
http.host=127.0.0.1
http.port=0
data.dir=$dir/data
logLevel=WARN
rtmp.maxConnections=1000
rtmp.maxConnectionsPerAddress=1000
EOF
    "$BIN" --config "$dir/config" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
}

start_nginx() {
    local port=$1 dir=$2 module
    module=$(rtmp_module) || die "nginx rtmp module not found"
    mkdir -p "$dir/nginx/logs"
    cat >"$dir/nginx/nginx.conf" <<EOF
load_module $module;
daemon off;
master_process off;
worker_processes 1;
error_log $dir/server.log warn;
pid $dir/nginx/nginx.pid;
events { worker_connections 4096; }
rtmp {
    server {
        listen 127.0.0.1:$port;
        chunk_size 4096;
        application LiveApp { live on; }
    }
}
EOF
    nginx -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -e "$dir/server.log" >"$dir/nginx.out" 2>&1 &
    SERVER_PID=$!
}

# ---------------------------------------------------------------- one run

# True when ffprobe reads both a video and an audio stream from the URL within 10 s.
probe() {
    local types
    types=$(timeout 10 ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "$1" 2>>"$2")
    grep -qx video <<<"$types" && grep -qx audio <<<"$types" && echo "$types" >"$2.streams"
}

run_one() {
    local server=$1 n=$2 dir port url i ready last_ready deadline
    local t0 t1 ticks0 ticks1 pub0 pub1 hwm conns dead host0 host1 idle0 idle1 bticks0 bticks1 line pub_start lag0
    dir="$WORK/$server-$n"
    mkdir -p "$dir/readers"
    port=$(helper freeport)
    url="rtmp://127.0.0.1:$port/LiveApp/bench"
    log "== $server, N=$n, port $port, window ${BENCH_SECONDS}s"
    helper quiet 25 "${BENCH_QUIET_WAIT:-180}" \
        || note "$server N=$n: the host was still busy with other work when the run started"

    case $server in
        rampart) start_rampart "$port" "$dir" ;;
        nginx) start_nginx "$port" "$dir" ;;
        *) die "unknown server $server" ;;
    esac
    wait_listening "$port" "$SERVER_PID" || { cat "$dir"/*.log "$dir"/*.out 2>/dev/null >&2; die "$server did not listen on $port"; }
    log "$server pid $SERVER_PID listening"

    pub_start=$(date +%s.%N)
    ffmpeg -nostdin -loglevel warning -progress "$dir/publisher.progress" \
        -re -f lavfi -i testsrc2=size=1280x720:rate=$FPS -f lavfi -i sine=frequency=1000 \
        -c:v libx264 -preset ultrafast -tune zerolatency -g 30 -b:v 2M -c:a aac \
        -f flv "$url" >"$dir/publisher.log" 2>&1 &
    PUB_PID=$!

    deadline=$((SECONDS + 30))
    until probe "$url" "$dir/probe.log"; do
        alive "$PUB_PID" || { cat "$dir/publisher.log" >&2; die "publisher exited"; }
        [ $SECONDS -ge $deadline ] && die "the stream could not be probed within 30 s (see $dir/probe.log)"
        sleep 1
    done
    sleep 1
    lag0=$(helper lag "$dir/publisher.progress" "$pub_start" "$FPS")
    log "stream is readable (publisher $lag0 frames behind the wall clock); starting $n readers"

    for ((i = 0; i < n; i++)); do
        ffmpeg -nostdin -loglevel error -progress "$dir/readers/reader-$i.progress" \
            -i "$url" -c copy -f null - >"$dir/readers/reader-$i.log" 2>&1 &
        READER_PIDS+=($!)
        sleep "$STAGGER"
    done

    deadline=$((SECONDS + READY_TIMEOUT))
    last_ready=-1
    while :; do
        ready=$(helper ready "$dir/readers")
        [ "$ready" -ge "$n" ] && break
        if [ $SECONDS -ge $deadline ]; then
            note "$server N=$n: only $ready/$n readers showed a frame within ${READY_TIMEOUT}s; measuring anyway"
            break
        fi
        [ "$ready" != "$last_ready" ] && log "$ready/$n readers receiving"
        last_ready=$ready
        sleep 1
    done
    if ! helper settle "$dir/readers" "$dir/publisher.progress" "$pub_start" "$FPS" "$SETTLE_TIMEOUT" "$lag0"; then
        note "$server N=$n: no steady state within ${SETTLE_TIMEOUT}s (publisher behind or readers draining a backlog); measuring anyway"
    fi
    alive "$SERVER_PID" || die "$server exited before the window"

    read -r host0 idle0 < <(helper hostcpu)
    t0=$(date +%s.%N)
    ticks0=$(helper cputicks "$SERVER_PID")
    bticks0=$(helper cputicks "$SERVER_PID" "$PUB_PID" "${READER_PIDS[@]}")
    helper snapshot "$dir/readers" "$dir/snap0.json"
    pub0=$(helper frames "$dir/publisher.progress")
    log "window start ($(cut -d' ' -f1-3 /proc/loadavg) load)"

    sleep "$BENCH_SECONDS"

    alive "$SERVER_PID" || { tail -n 20 "$dir/server.log" >&2; die "$server died during the window"; }
    t1=$(date +%s.%N)
    ticks1=$(helper cputicks "$SERVER_PID")
    bticks1=$(helper cputicks "$SERVER_PID" "$PUB_PID" "${READER_PIDS[@]}")
    helper snapshot "$dir/readers" "$dir/snap1.json"
    pub1=$(helper frames "$dir/publisher.progress")
    read -r host1 idle1 < <(helper hostcpu)
    hwm=$(helper hwm "$SERVER_PID")
    conns=$(ss -Htn state established "( sport = :$port )" | wc -l)
    dead=0
    for i in "${READER_PIDS[@]}"; do alive "$i" || dead=$((dead + 1)); done
    log "window end ($(cut -d' ' -f1-3 /proc/loadavg) load), $conns connections open, $dead readers gone"

    helper row "$RESULTS" server="$server" n="$n" t0="$t0" t1="$t1" clk="$CLK_TCK" fps="$FPS" \
        ticks0="$ticks0" ticks1="$ticks1" hwm_kib="$hwm" snap0="$dir/snap0.json" snap1="$dir/snap1.json" \
        pub0="$pub0" pub1="$pub1" dead="$dead" conns="$conns" \
        total0="$host0" idle0="$idle0" total1="$host1" idle1="$idle1" bticks0="$bticks0" bticks1="$bticks1" || die "could not compute the row"

    stop_readers
    stop_pid "$PUB_PID"
    PUB_PID=""
    sleep 0.5

    # What the server and the readers complained about.
    if [ -s "$dir/server.log" ]; then
        note "$server N=$n: server log has $(wc -l <"$dir/server.log") lines; most frequent (addresses/ports masked):"
        sed -E 's/[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(:[0-9]+)?/ADDR/g; s/^[0-9\/: ]+//; s/\*[0-9]+ /*N /; s/client: ADDR.*$//; s/[0-9]+(\.[0-9]+)? ?(ms|s)\b/T/g' \
            "$dir/server.log" | sort | uniq -c | sort -rn | head -n 8 | while read -r line; do note "    $line"; done
    else
        note "$server N=$n: server log empty"
    fi
    if cat "$dir"/readers/reader-*.log 2>/dev/null | grep -q .; then
        note "$server N=$n: reader errors (count, message):"
        cat "$dir"/readers/reader-*.log | sed -E 's/0x[0-9a-f]+/0x../g' | sort | uniq -c | sort -rn | head -n 6 \
            | while read -r line; do note "    $line"; done
    fi
    # flv over a network cannot seek back to fix its header: that warning is expected.
    if grep -v -e '^[[:space:]]*$' -e 'Failed to update header' "$dir/publisher.log" >"$dir/publisher.warnings"; then
        note "$server N=$n: publisher log (last lines):"
        tail -n 3 "$dir/publisher.warnings" | while read -r line; do note "    $line"; done
    fi

    stop_pid "$SERVER_PID"
    SERVER_PID=""
    sleep 0.5
    [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && note "$server N=$n: port $port still listening after stop!"
    return 0
}

# ---------------------------------------------------------------- main

for n in "${NS[@]}"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "N must be a positive whole number, not '$n'"
done
[[ $BENCH_SECONDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive whole number"
[ "$(ulimit -n)" -ge 4096 ] 2>/dev/null || ulimit -n 4096 2>/dev/null || true

started=$SECONDS
setup_packages
setup_rampart
: >"$RESULTS"
: >"$NOTES"
[ -n "$STALE_NOTE" ] && note "$STALE_NOTE"

for server in $BENCH_SERVERS; do
    for n in "${NS[@]}"; do
        run_one "$server" "$n"
    done
done

echo
echo "RTMP fan-out, one 720p30 H.264 2 Mbit/s + AAC stream, readers ffmpeg -c copy; window ${BENCH_SECONDS}s;"
echo "kept up = received >= 90% of ${FPS} fps x window; $(nproc) cores; $("$BIN" --version 2>/dev/null | head -n1) (binary of $(date -r "$BIN" '+%F %T')), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///')"
echo
helper table "$RESULTS"
echo
echo "Notes:"
sed 's/^/  /' "$NOTES"
echo
echo "total time: $((SECONDS - started)) s"
