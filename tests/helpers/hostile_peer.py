#!/usr/bin/env python3
"""Hostile and unlucky peers for pcbench's wire protocol (tests/integ/net_hostile.sh).

relay   a frame-aware relay between a destination and a source: every frame
        is forwarded unless a rule picks it:
          --rule DIR:TYPE:NTH:ACTION   DIR s2d|d2s, TYPE a frame name (RUN, PAGE,
          ZERO, BATCH_END, REQ, ...) or ANY, NTH the n-th such frame (1-based,
          counted over all connections, handshake frames included), ACTION one of
            drop         the frame is not forwarded
            delay=MS     held MS ms (later frames of the connection wait behind it)
            dup          forwarded twice
            corrupt      one bit flipped in the payload (in the header without one)
            truncate     half of it forwarded, then both connections closed
            reorder      held back and forwarded after the next frame
            close        both connections closed instead
        Each rule fires once; a line "relay: ACTION DIR TYPE #NTH arg=ARG" goes to stdout.
        --port-file F: the relay's port is written there once it listens.
hold    N connections held unauthenticated (a partial HELLO, one more byte every
        --trickle seconds); --reopen opens new ones when the source ends some
        (at most --reopen-rate a second: holding, not a connection flood).
        Prints "hold: opened X ended Y" every second.
bye     handshake on the demand channel (no key), then BYE; prints what came back.
link    handshake on the demand channel (no key), then LINK --bps/--delay-ns.
noread  handshake on the background channel (no key), asks for every page again
        and again and never reads; prints "noread: closed after S s" once the
        source ends the connection.
slowloris  one connection sending a HELLO a byte every --trickle seconds;
        prints "slowloris: closed after S s (B bytes sent)".
flood   new connections as fast as --threads threads can open them, each
        sending a whole well-formed HELLO at once (what a destination sends
        first) and then nothing, the last -n kept open, for --seconds;
        prints "flood: C connections in S s (R/s), E ended or refused by the source".
Frame format: wire/proto.h (24-byte header; PCB_FRAME_MAC adds a 16-byte tag)."""
import argparse
import os
import socket
import struct
import sys
import threading
import time

MAGIC, VER, HDR, TAG = 0x31424350, 3, 24, 16
FLAG_MAC = 2
NAMES = {1: "HELLO", 2: "CONFIG", 3: "REQ", 4: "RANGES", 5: "PAGE", 6: "ZERO", 7: "BATCH_END",
         8: "DIGEST_REQ", 9: "DIGESTS", 10: "BYE", 11: "ERROR", 12: "RUN", 13: "CHALLENGE",
         14: "AUTH", 15: "LINK", 16: "PING", 17: "PONG", 18: "PUSH", 19: "PUSH_END", 20: "SENT"}
TYPES = {v: k for k, v in NAMES.items()}
out_lock = threading.Lock()


def say(msg):
    with out_lock:
        print(msg, flush=True)


def frame(t, payload=b"", arg=0, flags=0):
    return struct.pack("<IHHIIQ", MAGIC, VER, t, len(payload), flags, arg) + payload


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def read_frame(s):
    """(type, flags, arg, raw bytes) or None at EOF / garbage."""
    h = recv_exact(s, HDR)
    if h is None:
        return None
    magic, ver, t, ln, fl, arg = struct.unpack("<IHHIIQ", h)
    if magic != MAGIC or ln > (1 << 20):
        return None
    rest = recv_exact(s, ln + (TAG if fl & FLAG_MAC else 0))
    if rest is None:
        return None
    return t, fl, arg, h + rest


class Rule:
    def __init__(self, spec):
        d, t, n, a = spec.split(":", 3)
        assert d in ("s2d", "d2s"), spec
        self.dir, self.type, self.nth = d, t.upper(), int(n)
        self.action, _, arg = a.partition("=")
        self.arg = float(arg) if arg else 0.0
        assert self.action in ("drop", "delay", "dup", "corrupt", "truncate", "reorder", "close"), spec
        self.seen, self.fired = 0, False


class Relay:
    def __init__(self, rules):
        self.rules, self.lock = rules, threading.Lock()

    def pick(self, d, t):
        with self.lock:
            for r in self.rules:
                if r.fired or r.dir != d or (r.type != "ANY" and TYPES.get(r.type) != t):
                    continue
                r.seen += 1
                if r.seen == r.nth:
                    r.fired = True
                    return r
        return None

    def pump(self, src, dst, d, pair):
        held = None
        try:
            while True:
                f = read_frame(src)
                if f is None:
                    break
                t, fl, arg, raw = f
                r = self.pick(d, t)
                if r:
                    say("relay: %s %s %s #%d arg=%d" % (r.action, d, NAMES.get(t, t), r.nth, arg))
                    if r.action == "drop":
                        continue
                    if r.action == "delay":
                        time.sleep(r.arg / 1000.0)
                    elif r.action == "dup":
                        dst.sendall(raw)
                    elif r.action == "corrupt":
                        b = bytearray(raw)
                        ln = struct.unpack_from("<I", raw, 8)[0]
                        pos = HDR + ln // 2 if ln else 16
                        b[pos] ^= 0x04
                        raw = bytes(b)
                    elif r.action == "truncate":
                        dst.sendall(raw[:len(raw) // 2])
                        break
                    elif r.action == "close":
                        break
                    elif r.action == "reorder":
                        held = raw
                        continue
                dst.sendall(raw)
                if held is not None:
                    dst.sendall(held)
                    held = None
        except OSError:
            pass
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def serve(self, lsock, to):
        while True:
            c, _ = lsock.accept()
            try:
                u = socket.create_connection(to, timeout=10)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            for s in (c, u):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (c, u)
            threading.Thread(target=self.pump, args=(c, u, "d2s", pair), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c, "s2d", pair), daemon=True).start()


def hostport(s):
    h, _, p = s.rpartition(":")
    return h, int(p)


def handshake(to, channel):
    """Unkeyed handshake; returns (socket, CONFIG payload) or (None, reason)."""
    s = socket.create_connection(to, timeout=10)
    s.sendall(frame(1, struct.pack("<II", channel, 0) + os.urandom(16)))
    f = read_frame(s)
    if f is None:
        return None, "closed"
    t, _, _, raw = f
    if t == TYPES["ERROR"]:
        return None, "ERROR " + raw[HDR:].decode(errors="replace")
    if t != TYPES["CHALLENGE"]:
        return None, "unexpected " + NAMES.get(t, str(t))
    if struct.unpack_from("<I", raw, HDR)[0]:
        return None, "authentication required"
    f = read_frame(s)
    if f is None or f[0] != TYPES["CONFIG"]:
        return None, "no CONFIG"
    return s, f[3][HDR:]


def after(s, wait=2.0):
    """What the peer sends next: 'ERROR text', 'closed', 'nothing' or a frame name."""
    s.settimeout(wait)
    try:
        f = read_frame(s)
    except socket.timeout:
        return "nothing"
    except OSError:
        return "closed"
    if f is None:
        return "closed"
    if f[0] == TYPES["ERROR"]:
        return "ERROR " + f[3][HDR:].decode(errors="replace")
    return NAMES.get(f[0], str(f[0]))


def flood(to, threads, keep, seconds):
    hello = frame(1, struct.pack("<II", 0, 0) + os.urandom(16))
    count, ended, lock = [0], [0], threading.Lock()
    t_end = time.time() + seconds

    def one():
        held = []
        while time.time() < t_end:
            try:
                s = socket.create_connection(to, timeout=2)
                s.sendall(hello)
                s.setblocking(False)
            except OSError:
                with lock:
                    ended[0] += 1
                continue
            held.append(s)
            if len(held) > max(1, keep // threads):
                o = held.pop(0)
                try:
                    if o.recv(4096, socket.MSG_PEEK) == b"":
                        with lock:
                            ended[0] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    with lock:
                        ended[0] += 1
                o.close()
            with lock:
                count[0] += 1
        for s in held:
            s.close()

    t0 = time.time()
    ts = [threading.Thread(target=one) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.time() - t0
    say("flood: %d connections in %.1f s (%.0f/s), %d ended or refused by the source" % (count[0], el, count[0] / el, ended[0]))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["relay", "hold", "bye", "link", "noread", "slowloris", "flood"])
    ap.add_argument("--to", required=True, help="HOST:PORT of the source")
    ap.add_argument("--port-file")
    ap.add_argument("--rule", action="append", default=[])
    ap.add_argument("-n", type=int, default=256)
    ap.add_argument("--trickle", type=float, default=2.0)
    ap.add_argument("--reopen", action="store_true")
    ap.add_argument("--reopen-rate", type=float, default=100.0)
    ap.add_argument("--bps", type=int, default=1)
    ap.add_argument("--delay-ns", type=int, default=10 ** 10)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    to = hostport(a.to)
    if a.mode == "relay":
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(64)
        if a.port_file:
            with open(a.port_file + ".tmp", "w") as f:
                f.write("%d\n" % ls.getsockname()[1])
            os.rename(a.port_file + ".tmp", a.port_file)
        Relay([Rule(r) for r in a.rule]).serve(ls, to)
    elif a.mode == "hold":
        hello = frame(1, struct.pack("<II", 0, 0) + os.urandom(16))
        conns, opened, ended, t_end = [], 0, 0, time.time() + a.seconds
        next_print, budget, t_prev = 0, float(a.n), time.time()
        while time.time() < t_end:
            now = time.time()
            budget = min(float(a.n), budget + (now - t_prev) * a.reopen_rate)
            t_prev = now
            while len(conns) < a.n and (opened < a.n or (a.reopen and budget >= 1)):
                if opened >= a.n:
                    budget -= 1
                try:
                    s = socket.create_connection(to, timeout=2)
                    s.setblocking(False)
                    conns.append([s, 0])
                    opened += 1
                except OSError:
                    break
            for c in list(conns):
                s, sent = c
                try:
                    if sent < HDR - 1:
                        s.send(hello[sent:sent + 1])
                        c[1] += 1
                    if s.recv(4096) == b"":
                        raise OSError("closed")
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    conns.remove(c)
                    ended += 1
            if time.time() >= next_print:
                say("hold: opened %d ended %d open %d" % (opened, ended, len(conns)))
                next_print = time.time() + 1
            time.sleep(a.trickle if not a.reopen else min(a.trickle, 0.05))
    elif a.mode in ("bye", "link"):
        s, cfg = handshake(to, 0)
        if s is None:
            say("%s: refused: %s" % (a.mode, cfg))
            return 3
        if a.mode == "bye":
            s.sendall(frame(TYPES["BYE"]))
        else:
            s.sendall(frame(TYPES["LINK"], struct.pack("<QQ", a.bps, a.delay_ns)))
        say("%s: sent; the source answered: %s" % (a.mode, after(s)))
    elif a.mode == "noread":
        s, cfg = handshake(to, 1)
        if s is None:
            say("noread: refused: %s" % cfg)
            return 3
        npages = struct.unpack_from("<Q", cfg, 8)[0]
        s.setblocking(False)
        t0, batch = time.time(), 0
        closed = False
        while time.time() - t0 < a.seconds and not closed:
            try:
                for first in range(0, npages, 4096):
                    s.send(frame(TYPES["RANGES"], struct.pack("<QQ", first, min(4096, npages - first)), batch))
                    batch += 1
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            time.sleep(0.2)
            try:   # the source closing shows as an error on send or a reset; peek without reading data
                s.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                pass
            except OSError:
                closed = True
            # a TCP_INFO state other than ESTABLISHED means the source has closed its end
            info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
            if info[0] != 1:
                closed = True
        say("noread: %s after %.1f s" % ("closed" if closed else "still open", time.time() - t0))
        return 0 if closed else 1
    elif a.mode == "flood":
        return flood(to, a.threads, a.n, a.seconds)
    elif a.mode == "slowloris":
        hello = frame(1, struct.pack("<II", 0, 0) + os.urandom(16))
        s = socket.create_connection(to, timeout=a.seconds)
        t0, sent = time.time(), 0
        while time.time() - t0 < a.seconds:
            try:
                if sent < len(hello) - 1:
                    s.send(hello[sent:sent + 1])
                    sent += 1
                s.settimeout(a.trickle)
                if s.recv(4096) == b"":
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        say("slowloris: closed after %.1f s (%d bytes sent)" % (time.time() - t0, sent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
