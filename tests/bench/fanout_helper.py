#!/usr/bin/env python3
"""Helper for tests/bench/rtmp_fanout.sh (standard library only).

Subcommands:
  freeport                      print a free TCP port on 127.0.0.1
  cputicks PID...               print utime+stime of the PIDs in clock ticks (/proc/PID/stat),
                                summed; a PID that is gone counts 0
  hwm PID                       print VmHWM of PID in KiB (/proc/PID/status)
  hostcpu                       print the host's total and idle jiffies (/proc/stat)
  quiet PCT TIMEOUT             wait until the host is at most PCT% busy over 3 s; exit 1 on timeout
  frames FILE                   print the last frame= value of an ffmpeg -progress file (0 if none)
  ready DIR                     print how many reader-*.progress files in DIR show frame > 0
  snapshot DIR OUT              write {reader: last frame} of DIR/reader-*.progress to OUT (JSON)
  lag PUBFILE PUBSTART FPS      print how many frames the publisher is behind the wall clock
  settle DIR PUBFILE PUBSTART FPS TIMEOUT BASELINE
                                wait until the publisher has caught up with the wall clock and no
                                reader is draining a backlog; exit 1 on timeout
  row OUT key=value ...         compute one result row and append it to OUT (JSON lines)
  table OUT                     print the result table of OUT
"""

import json
import os
import socket
import statistics
import sys
import time


def freeport():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def ticks_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    # The command name may hold spaces and parentheses: the fields follow the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12])


def cputicks(pids):
    print(sum(ticks_of(p) for p in pids))


def hwm(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                print(int(line.split()[1]))
                return
    print(0)


def hostcpu():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is counted in user already)
    print(sum(fields[:8]), fields[3] + fields[4])


def host_jiffies():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]


def quiet(pct, timeout):
    started = time.time()
    while True:
        t0, i0 = host_jiffies()
        time.sleep(3)
        t1, i1 = host_jiffies()
        busy = 100 * (1 - (i1 - i0) / max(1, t1 - t0))
        if busy <= pct:
            return 0
        if time.time() - started >= timeout:
            print(f"host still {busy:.0f}% busy", file=sys.stderr)
            return 1
        print(f"[{time.strftime('%H:%M:%S')}] host {busy:.0f}% busy; waiting for it to calm down", file=sys.stderr)


def last_frame(path):
    """The last complete frame= value of an ffmpeg -progress file, or None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    frame = None
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("frame="):
            try:
                frame = int(line[6:].strip())
            except ValueError:
                pass  # a line cut in the middle of being written
    return frame


def reader_files(directory):
    names = [n for n in os.listdir(directory) if n.startswith("reader-") and n.endswith(".progress")]
    return sorted(names, key=lambda n: int(n[len("reader-") : -len(".progress")]))


def snapshot(directory, out):
    snap = {name: last_frame(os.path.join(directory, name)) for name in reader_files(directory)}
    with open(out, "w") as f:
        json.dump(snap, f)


def publisher_lag(pubfile, pubstart, fps):
    return fps * (time.time() - pubstart) - (last_frame(pubfile) or 0)


def settle(directory, pubfile, pubstart, fps, timeout, baseline):
    """Waits for a steady state before the window opens.

    Starting N ffmpeg readers can starve the publisher (it then runs below 1x and catches up
    later) and leave readers with a backlog they drain faster than real time; either would
    inflate the frames counted in the window. Settled means, over two intervals in a row: the
    publisher's lag behind the wall clock is back within 0.75 s (the progress granularity is
    0.5 s) of `baseline`, the lag it had when the stream was first probed, and neither the
    publisher nor any reader received more than 5% above the frame rate (plus the granularity).
    """
    interval = 4.0
    started = time.time()

    def counts():
        return {n: last_frame(os.path.join(directory, n)) or 0 for n in reader_files(directory)}

    prev, prev_pub, prev_t = counts(), last_frame(pubfile) or 0, time.time()
    good = 0
    while True:
        time.sleep(interval)
        cur, cur_pub, now = counts(), last_frame(pubfile) or 0, time.time()
        dt = now - prev_t
        limit = fps * 1.05 + 15 / dt
        rates = sorted((cur[n] - prev.get(n, 0)) / dt for n in cur) or [0.0]
        pub_rate = (cur_pub - prev_pub) / dt
        lag = publisher_lag(pubfile, pubstart, fps)
        ok = lag <= baseline + fps * 0.75 and pub_rate <= limit and rates[-1] <= limit
        good = good + 1 if ok else 0
        print(
            f"[{time.strftime('%H:%M:%S')}] settling: publisher {pub_rate:.0f} fps, lag {lag / fps:.2f}s "
            f"(at probe {baseline / fps:.2f}s); readers fps min/median/max "
            f"{rates[0]:.0f}/{rates[len(rates) // 2]:.0f}/{rates[-1]:.0f} (limit {limit:.0f})",
            file=sys.stderr,
        )
        if good >= 2:
            return 0
        if now - started >= timeout:
            return 1
        prev, prev_pub, prev_t = cur, cur_pub, now


def ready(directory):
    print(sum(1 for n in reader_files(directory) if (last_frame(os.path.join(directory, n)) or 0) > 0))


def row(out, pairs):
    a = dict(p.split("=", 1) for p in pairs)
    n = int(a["n"])
    elapsed = float(a["t1"]) - float(a["t0"])
    clk = int(a["clk"])
    fps = float(a["fps"])
    cpu_s = (int(a["ticks1"]) - int(a["ticks0"])) / clk
    expected = fps * elapsed
    with open(a["snap0"]) as f:
        s0 = json.load(f)
    with open(a["snap1"]) as f:
        s1 = json.load(f)
    deltas = []
    for i in range(n):
        name = f"reader-{i}.progress"
        end = s1.get(name)
        start = s0.get(name) or 0
        deltas.append(max(0, end - start) if end is not None else 0)
    kept = sum(1 for d in deltas if d >= 0.9 * expected)
    result = {
        "server": a["server"],
        "n": n,
        "window_s": round(elapsed, 2),
        "cpu_s": round(cpu_s, 2),
        "cpu_core_pct": round(100 * cpu_s / elapsed, 1),
        "cpu_s_per_reader_min": cpu_s / (n * elapsed / 60),
        "peak_rss_mib": round(int(a["hwm_kib"]) / 1024, 1),
        "kept_up": kept,
        "expected_frames": round(expected),
        "publisher_frames": int(a["pub1"]) - int(a["pub0"]),
        "reader_frames_min": min(deltas),
        "reader_frames_median": round(statistics.median(deltas)),
        "reader_frames_max": max(deltas),
        "readers_exited_early": int(a["dead"]),
        "connections_open": int(a["conns"]),
        "bench_procs_pct": round(100 * (int(a["bticks1"]) - int(a["bticks0"])) / clk / elapsed / (os.cpu_count() or 1), 1),
        "host_busy_pct": round(100 * (1 - (int(a["idle1"]) - int(a["idle0"])) / max(1, int(a["total1"]) - int(a["total0"]))), 1),
    }
    with open(out, "a") as f:
        f.write(json.dumps(result) + "\n")


def table(out):
    rows = []
    with open(out) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    head = [
        "server",
        "N",
        "CPU s/reader-min",
        "peak RSS MiB",
        "kept up/N",
        "server CPU s (% core)",
        "publisher frames/expected",
        "reader frames min/med/max",
        "exited early",
        "conns open",
        "host busy % (bench procs %)",
    ]
    body = []
    for r in rows:
        body.append(
            [
                r["server"],
                str(r["n"]),
                f"{r['cpu_s_per_reader_min']:.4f}",
                f"{r['peak_rss_mib']:.1f}",
                f"{r['kept_up']}/{r['n']}",
                f"{r['cpu_s']:.1f} ({r['cpu_core_pct']:.0f}%)",
                f"{r['publisher_frames']}/{r['expected_frames']}",
                f"{r['reader_frames_min']}/{r['reader_frames_median']}/{r['reader_frames_max']}",
                str(r["readers_exited_early"]),
                str(r["connections_open"]),
                f"{r['host_busy_pct']:.0f} ({r['bench_procs_pct']:.0f})",
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    def fmt(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    print(fmt(head))
    print("  ".join("-" * w for w in widths))
    for b in body:
        print(fmt(b))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        freeport()
    elif cmd == "cputicks":
        cputicks(args)
    elif cmd == "hwm":
        hwm(args[0])
    elif cmd == "hostcpu":
        hostcpu()
    elif cmd == "quiet":
        sys.exit(quiet(float(args[0]), float(args[1])))
    elif cmd == "frames":
        print(last_frame(args[0]) or 0)
    elif cmd == "settle":
        sys.exit(settle(args[0], args[1], float(args[2]), float(args[3]), float(args[4]), float(args[5])))
    elif cmd == "lag":
        print(round(publisher_lag(args[0], float(args[1]), float(args[2]))))
    elif cmd == "ready":
        ready(args[0])
    elif cmd == "snapshot":
        snapshot(args[0], args[1])
    elif cmd == "row":
        row(args[0], args[1:])
    elif cmd == "table":
        table(args[0])
    else:
        sys.exit(f"unknown subcommand {cmd}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
