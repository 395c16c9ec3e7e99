#!/usr/bin/env python3
"""Helper for tests/bench/durable_writes.sh (standard library only).

Subcommands:
  freeport                       print a free TCP port on 127.0.0.1
  poll HTTP OUT                  GET an unrelated REST call every ~10 ms until killed; append
                                 "<unix start> <latency s>" per answer to OUT
  play RTMP_URL OUT              play an RTMP stream until killed; append the arrival time
                                 (unix seconds) of every video message to OUT
  token HTTP STREAM              print a new one-time publish token for STREAM
  run HTTP RTMP PID DIR          the measured scenario (see durable_writes.sh); phases to DIR
  report DIR                     the results of DIR (after the daemon and strace ended)

The RTMP client is a minimal one (handshake, connect, createStream, publish or play), enough
to be admitted by one-time tokens without starting 100 ffmpeg processes in one second.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse

APP = "LiveApp"
JWT_KEY = "bench-server-jwt-key-0123456789abcdef"
UNRELATED = f"/{APP}/rest/v2/broadcasts/list/0/1"
TIMEOUT = 180.0


# ---------------------------------------------------------------- HTTP


def server_jwt():
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "bench", "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(JWT_KEY.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def http(addr, method, path, body=None, auth=False):
    """One request on its own connection; returns (status, body text)."""
    host, port = addr.rsplit(":", 1)
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n"
    if auth:
        head += f"Authorization: Bearer {server_jwt()}\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as s:
        s.sendall(head.encode() + data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    text = b"".join(chunks).decode("utf-8", "replace")
    status_line, _, rest = text.partition("\r\n")
    parts = status_line.split(" ")
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return status, rest.partition("\r\n\r\n")[2]


def poll(addr, out):
    with open(out, "a", buffering=1) as f:
        while True:
            start = time.time()
            try:
                http(addr, "GET", UNRELATED)
            except OSError:
                pass
            took = time.time() - start
            f.write(f"{start:.6f} {took:.6f}\n")
            time.sleep(max(0.0, 0.010 - took))


# ---------------------------------------------------------------- RTMP


def amf_encode(value):
    if value is None:
        return b"\x05"
    if isinstance(value, bool):
        return b"\x01" + bytes([1 if value else 0])
    if isinstance(value, (int, float)):
        return b"\x00" + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = value.encode()
        return b"\x02" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, dict):
        out = b"\x03"
        for k, v in value.items():
            raw = k.encode()
            out += struct.pack(">H", len(raw)) + raw + amf_encode(v)
        return out + b"\x00\x00\x09"
    raise TypeError(value)


def amf_decode(data, pos=0):
    """Returns (value, next position)."""
    kind = data[pos]
    pos += 1
    if kind == 0:
        return struct.unpack_from(">d", data, pos)[0], pos + 8
    if kind == 1:
        return data[pos] != 0, pos + 1
    if kind == 2:
        n = struct.unpack_from(">H", data, pos)[0]
        return data[pos + 2 : pos + 2 + n].decode("utf-8", "replace"), pos + 2 + n
    if kind == 12:
        n = struct.unpack_from(">I", data, pos)[0]
        return data[pos + 4 : pos + 4 + n].decode("utf-8", "replace"), pos + 4 + n
    if kind in (3, 8):
        if kind == 8:
            pos += 4
        obj = {}
        while True:
            n = struct.unpack_from(">H", data, pos)[0]
            pos += 2
            if n == 0 and data[pos] == 9:
                return obj, pos + 1
            key = data[pos : pos + n].decode("utf-8", "replace")
            obj[key], pos = amf_decode(data, pos + n)
    if kind in (5, 6):
        return None, pos
    if kind == 10:
        n = struct.unpack_from(">I", data, pos)[0]
        pos += 4
        items = []
        for _ in range(n):
            item, pos = amf_decode(data, pos)
            items.append(item)
        return items, pos
    raise ValueError(f"AMF0 type {kind}")


def amf_all(data):
    values, pos = [], 0
    while pos < len(data):
        value, pos = amf_decode(data, pos)
        values.append(value)
    return values


class Rtmp:
    """A blocking RTMP client connection."""

    def __init__(self, host, port, app):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.in_chunk = 128
        self.out_chunk = 128
        self.chunks = {}  # csid -> [ts, length, type, stream, payload, extended]
        self.received = 0
        self.acked = 0
        self.window = 0
        self.tx = 0
        self.handshake()
        self.command(3, 0, "connect", {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0",
                                       "tcUrl": f"rtmp://{host}:{port}/{app}"})
        self.result()
        self.command(3, 0, "createStream", None)
        self.stream = int(self.result()[3])

    def read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self.received += len(chunk)
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def handshake(self):
        c1 = struct.pack(">II", 0, 0) + os.urandom(1528)
        self.sock.sendall(b"\x03" + c1)
        s0s1 = self.read(1537)
        self.read(1536)
        self.sock.sendall(s0s1[1:])

    def send(self, csid, kind, stream, payload):
        head = bytes([csid]) + struct.pack(">I", 0)[1:] + struct.pack(">I", len(payload))[1:]
        head += bytes([kind]) + struct.pack("<I", stream)
        out = head + payload[: self.out_chunk]
        for i in range(self.out_chunk, len(payload), self.out_chunk):
            out += bytes([0xC0 | csid]) + payload[i : i + self.out_chunk]
        self.sock.sendall(out)

    def command(self, csid, stream, name, *args):
        self.tx += 1
        payload = amf_encode(name) + amf_encode(self.tx) + b"".join(amf_encode(a) for a in args)
        self.send(csid, 20, stream, payload)

    def message(self):
        """The next complete message: (type, stream, payload)."""
        while True:
            b0 = self.read(1)[0]
            fmt, csid = b0 >> 6, b0 & 0x3F
            if csid == 0:
                csid = 64 + self.read(1)[0]
            elif csid == 1:
                lo, hi = self.read(2)
                csid = 64 + lo + hi * 256
            state = self.chunks.setdefault(csid, [0, 0, 0, 0, b"", False])
            if fmt <= 2:
                ts = int.from_bytes(self.read(3), "big")
                if fmt <= 1:
                    state[1] = int.from_bytes(self.read(3), "big")
                    state[2] = self.read(1)[0]
                if fmt == 0:
                    state[3] = struct.unpack("<I", self.read(4))[0]
                state[5] = ts == 0xFFFFFF
                if state[5]:
                    self.read(4)
            elif state[5]:
                self.read(4)
            take = min(self.in_chunk, state[1] - len(state[4]))
            state[4] += self.read(take)
            self.ack()
            if len(state[4]) < state[1]:
                continue
            kind, stream, payload = state[2], state[3], state[4]
            state[4] = b""
            if kind == 1 and len(payload) >= 4:
                self.in_chunk = struct.unpack(">I", payload[:4])[0] & 0x7FFFFFFF
            elif kind == 5 and len(payload) >= 4:
                self.window = struct.unpack(">I", payload[:4])[0]
            elif kind == 4 and len(payload) >= 6 and struct.unpack(">H", payload[:2])[0] == 6:
                self.send(2, 4, 0, struct.pack(">H", 7) + payload[2:6])
            return kind, stream, payload

    def ack(self):
        if self.window and self.received - self.acked >= self.window // 2:
            self.acked = self.received
            self.send(2, 3, 0, struct.pack(">I", self.received & 0xFFFFFFFF))

    def result(self):
        """Reads until the answer to the last command; raises on _error."""
        while True:
            kind, _, payload = self.message()
            if kind != 20:
                continue
            values = amf_all(payload)
            if len(values) >= 2 and values[0] in ("_result", "_error") and values[1] == self.tx:
                if values[0] == "_error":
                    raise ConnectionError(f"refused: {values}")
                return values

    def status(self):
        """The code of the next onStatus."""
        while True:
            kind, _, payload = self.message()
            if kind == 20:
                values = amf_all(payload)
                if values and values[0] == "onStatus":
                    info = values[-1] if isinstance(values[-1], dict) else {}
                    return info.get("code", "")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def publish_once(host, port, stream):
    """Publishes `stream` (with its ?token=), returns True when the server started the publish."""
    conn = Rtmp(host, port, APP)
    try:
        conn.command(8, conn.stream, "publish", None, stream, "live")
        return conn.status() == "NetStream.Publish.Start"
    finally:
        conn.close()


def play(url, out):
    parsed = urllib.parse.urlparse(url)
    app, _, stream = parsed.path.lstrip("/").partition("/")
    conn = Rtmp(parsed.hostname, parsed.port, app)
    conn.send(2, 5, 0, struct.pack(">I", 5_000_000))
    conn.command(8, conn.stream, "play", None, stream)
    with open(out, "a", buffering=1) as f:
        while True:
            kind, _, _ = conn.message()
            if kind == 9:
                f.write(f"{time.time():.6f}\n")


# ---------------------------------------------------------------- the scenario


def proc_io(pid):
    values = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            key, _, value = line.partition(":")
            values[key.strip()] = int(value)
    return values


def settle(pid, quiet=1.0, limit=120.0):
    """Waits until the daemon's bytes written to storage stop changing for `quiet` seconds."""
    deadline = time.time() + limit
    last, since = proc_io(pid)["write_bytes"], time.time()
    while time.time() < deadline:
        time.sleep(0.1)
        now = proc_io(pid)["write_bytes"]
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            return


def token(addr, stream, kind="publish"):
    status, body = http(addr, "GET", f"/{APP}/rest/v2/broadcasts/{stream}/token?expireDate={int(time.time()) + 3600}&type={kind}")
    if status != 200:
        raise RuntimeError(f"token for {stream}: {status} {body}")
    return json.loads(body)["tokenId"]


class Phase:
    def __init__(self, name, pid):
        self.name, self.pid = name, pid
        self.io0 = proc_io(pid)
        self.t0 = time.time()
        self.note = ""

    @staticmethod
    def load(d):
        p = Phase.__new__(Phase)
        p.__dict__.update(d)
        return p

    def end(self):
        settle(self.pid)
        self.t1 = time.time()
        self.io1 = proc_io(self.pid)
        return self


def read_lines(path):
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


def fsyncs(strace_out, t0, t1):
    pattern = re.compile(r"^\d+\s+(\d+\.\d+)\s+(fsync|fdatasync)\(")
    n = 0
    with open(strace_out, errors="replace") as f:
        for line in f:
            m = pattern.match(line)
            if m and t0 <= float(m.group(1)) <= t1:
                n += 1
    return n


def report(path, strace_out, polls, frames):
    with open(path) as f:
        phases = [Phase.load(d) for d in json.load(f)]
    print(f"{'phase':<46} {'s':>6} {'fsyncs':>6} {'write_bytes':>12} {'worst REST':>11} {'worst frame gap':>15}")
    for p in phases:
        # A request, or a gap between two video messages, counts in the phase in which it ended.
        lat = [float(l) for s, l in polls if p.t0 <= float(s) + float(l) <= p.t1]
        arrivals = [float(a[0]) for a in frames]
        inside = [a for a in arrivals if p.t0 <= a <= p.t1]
        before = [a for a in arrivals if a < p.t0][-1:]
        seq = before + inside
        gap = max((b - a for a, b in zip(seq, seq[1:])), default=float("nan"))
        wb = p.io1["write_bytes"] - p.io0["write_bytes"]
        worst = f"{max(lat) * 1000:.0f} ms" if lat else "none"
        took = p.t1 - p.t0
        print(f"{p.name:<46} {took:>6.1f} {fsyncs(strace_out, p.t0, p.t1):>6} {wb:>12} {worst:>11} {gap * 1000:>12.0f} ms")
        if p.note:
            print(f"    {p.note}")
    print(f"REST polls answered: {len(polls)}; video messages seen by the player: {len(frames)}")


def run(addr, rtmp, pid, work):
    host, port = rtmp.rsplit(":", 1)
    port = int(port)
    phases = []

    p = Phase("idle 3 s (player and poller running)", pid)
    time.sleep(3)
    phases.append(p.end())

    p = Phase("one settings change (PUT app settings)", pid)
    status, body = http(addr, "PUT", f"/rest/v2/applications/settings/{APP}", {"timeTokenPeriod": 30}, auth=True)
    p.note = f"answer {status} after {time.time() - p.t0:.2f} s"
    if status != 200:
        p.note += f": {body[:200]}"
    phases.append(p.end())

    p = Phase("one datastore write (POST broadcasts/create)", pid)
    status, body = http(addr, "POST", f"/{APP}/rest/v2/broadcasts/create", {"streamId": "bench-created"})
    p.note = f"answer {status} after {time.time() - p.t0:.2f} s"
    phases.append(p.end())

    created = time.time()
    tokens = [token(addr, f"t{i}") for i in range(100)]
    print(f"(100 one-time tokens created through the API in {time.time() - created:.1f} s, not measured)")
    settle(pid)

    p = Phase("100 one-time-token publishes in one second", pid)
    results = [None] * 100

    def one(i):
        try:
            results[i] = publish_once(host, port, f"t{i}?token={tokens[i]}")
        except (OSError, ValueError, ConnectionError) as e:
            results[i] = repr(e)

    threads = []
    for i in range(100):
        t = threading.Thread(target=one, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(0.01)
    for t in threads:
        t.join(TIMEOUT)
    started = sum(1 for r in results if r is True)
    errors = sorted({str(r)[:80] for r in results if r is not True})
    p.note = f"{started}/100 publishes started, all answered after {time.time() - p.t0:.2f} s"
    if errors:
        p.note += f"; others: {errors[:3]}"
    phases.append(p.end())

    with open(os.path.join(work, "phases.json"), "w") as f:
        json.dump([p.__dict__ for p in phases], f)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "freeport":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            print(s.getsockname()[1])
    elif cmd == "poll":
        poll(*args)
    elif cmd == "play":
        play(*args)
    elif cmd == "token":
        print(token(*args))
    elif cmd == "run":
        run(args[0], args[1], int(args[2]), args[3])
    elif cmd == "report":
        work = args[0]
        report(os.path.join(work, "phases.json"), os.path.join(work, "strace.out"),
               read_lines(os.path.join(work, "polls.txt")), read_lines(os.path.join(work, "frames.txt")))
    else:
        sys.exit(f"unknown subcommand {cmd}")


if __name__ == "__main__":
    main()
