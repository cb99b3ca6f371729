"""Checks (and test peers) of tests/integ/net_*.sh: the network transport, link emulation, recovery, hostile frames."""
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time


def link_row(path, bw, rtt):
    """Print one table row for a --link=BW,RTT run: configured and achieved bandwidth and RTT, and
    the verdict: ok when both are within 5 %, HOST TOO SLOW when the bandwidth is but the host's
    own round trip (calibrated base, or achieved minus injected delay) already exceeds the
    configured RTT, else OUT OF RANGE (judged by the caller)."""
    l = json.load(open(path))["results"]["link"]; c, a = l["configured"], l["achieved"]
    bw_ok = abs(a["bandwidth_error"]) <= 0.05
    ok = bw_ok and abs(a["rtt_error"]) <= 0.05
    # A delay line can only add latency: when this host's own round trip is already
    # above the configured RTT (an idle nested VM wakes its vCPUs in 100-400 us), the
    # setting cannot be emulated here; pcbench must say so (checked by the caller).
    # Judged by what the host itself took during the measurement: achieved minus the
    # delay the emulator injected.
    host_rtt = a["rtt_median_ns"] - l["calibration"]["injected_delay_ns"]
    too_slow = bw_ok and not ok and (l["calibration"]["base_rtt_ns"] > c["rtt_ns"] or host_rtt > c["rtt_ns"])
    print("%-10s %-7s %12.1f %12.1f %+7.2f%% %12.1f %12.1f %+7.2f%% base %.1f us %s" % (bw, rtt,
          c["bandwidth_bps"] / 1e6, a["bulk_bps"] / 1e6, 100 * a["bandwidth_error"],
          c["rtt_ns"] / 1e3, a["rtt_median_ns"] / 1e3, 100 * a["rtt_error"], l["calibration"]["base_rtt_ns"] / 1e3,
          "ok" if ok else "HOST TOO SLOW" if too_slow else "OUT OF RANGE"))


def malformed_frames(port, key_file, open_port):
    """Hostile frames against a keyed source (PORT, key in KEY_FILE) and an open one (OPEN_PORT): a
    correct HMAC gets CONFIG; a wrong key, an untagged request on the keyed source, an oversized
    length, an out-of-range page, a wrong version or magic, a range or digest request off the
    end are each answered with an ERROR naming the problem and the connection closed; a
    truncated header is closed without a reply."""
    port, key, open_port = int(port), open(key_file, "rb").read(), int(open_port)
    if key.endswith(b"\n"):   # the documented rule: one trailing newline is not part of the key
        key = key[:-1]        # (a random key ends in 0x0a once in 256 files)
    MAGIC, VER = 0x31424350, 3
    HELLO, CONFIG, REQ, RANGES, DIGEST_REQ, ERROR, CHALLENGE, AUTH = 1, 2, 3, 4, 8, 11, 13, 14
    def fr(t, p=b"", arg=0, ln=None, ver=VER, magic=MAGIC):
        return struct.pack("<IHHIIQ", magic, ver, t, len(p) if ln is None else ln, 0, arg) + p
    def recv_frame(s):
        h = b""
        while len(h) < 24:
            c = s.recv(24 - len(h))
            if not c: return None, None
            h += c
        magic, ver, t, ln, fl, arg = struct.unpack("<IHHIIQ", h)
        p = b""
        while len(p) < ln:
            c = s.recv(ln - len(p))
            if not c: break
            p += c
        return t, p
    def session(good_key=True, keyed=True):
        s = socket.create_connection(("127.0.0.1", port if keyed else open_port), timeout=5)
        nd = os.urandom(16)
        s.sendall(fr(HELLO, struct.pack("<II", 0, 0) + nd))
        t, p = recv_frame(s)
        assert t == CHALLENGE, t
        if not keyed:
            assert struct.unpack("<I", p[:4])[0] == 0, "the open source asks for a key"
            return (s,) + recv_frame(s)
        ns = p[8:24]
        k = key if good_key else b"x" * 32
        s.sendall(fr(AUTH, hmac.new(k, b"pcbench-dest\0" + ns + nd + struct.pack("<I", 0), hashlib.sha256).digest()))
        t, p = recv_frame(s)
        return s, t, p
    # the source's own MAC check of a correct key (also validates the test's HMAC framing)
    s, t, p = session()
    assert t == CONFIG, (t, p)
    s.close()
    cases = {
        "wrong key": (None, "authentication failed"),
        "untagged (keyed)": ("keyed", "without an authentication tag"),
        "truncated": (fr(REQ, ln=0, arg=1)[:10], None),   # then EOF mid-header: no reply expected
        "oversized length": (fr(RANGES, ln=0x7fffffff), "length 2147483647"),
        "out-of-range page": (fr(REQ, arg=4096), "outside the image"),
        "wrong version": (fr(REQ, arg=1, ver=1), "version 1"),
        "wrong magic": (fr(REQ, arg=1, magic=0xdeadbeef), "magic"),
        "range off the end": (fr(RANGES, struct.pack("<QQ", 4090, 10)), "outside the image"),
        "digests off the end": (fr(DIGEST_REQ, struct.pack("<Q", 2), 4095), "DIGEST_REQ"),
    }
    for name, (data, want) in cases.items():
        if data is None:
            s, t, p = session(good_key=False)
        elif data == "keyed":
            s, t, p = session()
            assert t == CONFIG, (name, t)
            s.sendall(fr(REQ, arg=1))
            t, p = recv_frame(s)
        else:
            s, t, p = session(keyed=False)
            assert t == CONFIG, (name, t)
            s.sendall(data)
            if want is None:
                s.shutdown(socket.SHUT_WR)
                t, p = recv_frame(s)
                assert t is None, (name, t, p)       # closed without a reply, nothing else
                s.close(); print("OK  %-20s closed" % name); continue
            t, p = recv_frame(s)
        assert t == ERROR, (name, t, p)
        text = p.decode()
        assert want in text, (name, text)
        assert recv_frame(s)[0] is None, name    # and the connection is closed
        s.close()
        print("OK  %-20s refused: %s" % (name, text))


def hostile_source(port_file):
    """Not a check: a fake source (port written to PORT_FILE) that answers three connections with a
    4096-page CONFIG and sends, on the background one, a PAGE outside the image; then waits 5 s."""
    MAGIC, VER = 0x31424350, 3
    HELLO, CONFIG, RANGES, PAGE, CHALLENGE = 1, 2, 4, 5, 13
    def fr(t, p=b"", arg=0): return struct.pack("<IHHIIQ", MAGIC, VER, t, len(p), 0, arg) + p
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", 0)); l.listen(8)
    open(port_file, "w").write(str(l.getsockname()[1]))
    NP = 4096
    conns = []
    for i in range(3):                       # query + demand + background
        c, _ = l.accept(); conns.append(c)
        h = c.recv(48)
        ch = struct.unpack("<I", h[24:28])[0]
        c.sendall(fr(CHALLENGE, struct.pack("<II", 0, 0) + bytes(16)))
        c.sendall(fr(CONFIG, struct.pack("<QQQQII", NP * 4096, NP, 9, 0, 4096, 0) + bytes(32)))
        if ch == 1:
            c.recv(4096)                         # the first background request
            c.sendall(fr(PAGE, b"\xAA" * 4096, NP + 17))   # a page outside the image
    time.sleep(5)


def recovered(path, tag):
    """The source was killed and restarted mid-migration: status ok, every page verified and
    installed exactly once, both channels lost and reconnected at least once, the demand channel
    paused at least 0.3 s (the source was down ~0.8 s), at least one page re-requested."""
    d = json.load(open(path)); r = d["results"]
    v, rec, pg = r["verify"], r["recovery"], r["pages"]
    assert d["status"] == "ok", d.get("error")
    assert v["done"] and v["pages_corrupt"] == 0 and v["pages_missing"] == 0 and v["pages_verified"] == pg["total"], v
    assert rec["demand"]["losses"] >= 1 and rec["demand"]["reconnects"] >= 1, rec
    assert rec["background"]["losses"] >= 1 and rec["background"]["reconnects"] >= 1, rec
    assert rec["demand"]["pause_ns"] >= 300e6, rec          # the source was down ~0.8 s (loss seen when the channel is next used)
    assert rec["pages_rerequested"] >= 1, rec
    # demand only with 2 vCPUs (--demand-replies=thread): a reply thread received; its loss was
    # handed back to the demand thread, which recovered and carried on inline; with lanes, the
    # lanes received (and each recovered its own connection)
    want = "lanes" if tag.endswith("-lanes") else "thread"
    assert not tag.startswith("demand-2") or r["pager"]["demand_replies"] == want, (r["pager"]["demand_replies"], want)
    # nothing installed twice: the install counts add up to exactly the image
    n = pg["demand"] + pg["background"] + pg["drain"] + pg["zero"]
    assert n == pg["total"], (n, pg)
    print("OK %s: source killed and restarted: paused %.3f s, %d pages re-requested, %d pages verified" %
          (tag, rec["demand"]["pause_ns"] / 1e9, rec["pages_rerequested"], v["pages_verified"]))


def gave_up(path):
    """The source never came back: status failed with exit code 74 and results.pages_never_arrived
    saying so."""
    d = json.load(open(path))
    assert d["status"] == "failed" and d["exit_code"] == 74, d["status"]
    assert "never arrived" in d["results"]["pages_never_arrived"]
    print("OK: gave up with exit 74:", d["results"]["pages_never_arrived"][:80])


def two_host(path, address):
    """`pcbench dest` in one network namespace against `pcbench source` in another over an emulated
    1gbit,200us link: status ok, 16384 pages verified, the transport names ADDRESS, not forked,
    authenticated; bandwidth error within -25 %..+5 % and, unless the host's own round trip
    exceeds the link RTT (then PATH.slow is created for the caller), RTT error within 30 %."""
    d = json.load(open(path)); r = d["results"]; v = r["verify"]
    assert d["status"] == "ok"
    assert v["done"] and v["pages_corrupt"] == 0 and v["pages_missing"] == 0 and v["pages_verified"] == 16384, v
    t = r["transport"]
    assert t["address"] == address and t["source_forked"] is False and t["authenticated"] is True, t
    a = r["link"]["achieved"]
    # accuracy is net_link.sh's business (with retries); here: the link was emulated across the
    # namespaces (bounds wide enough for a loaded machine and the ASan build)
    # A delay line only adds latency: when the host's own round trip is above the link RTT
    # (an idle nested VM wakes its vCPUs in 100-400 us), the RTT cannot be emulated and the
    # achieved RTT is the host's; pcbench warns about it (checked below from its stderr).
    cal = r["link"]["calibration"]
    host_slow = cal["base_rtt_ns"] > r["link"]["configured"]["rtt_ns"] or \
        a["rtt_median_ns"] - cal["injected_delay_ns"] > r["link"]["configured"]["rtt_ns"]
    assert -0.25 <= a["bandwidth_error"] <= 0.05 and (host_slow or abs(a["rtt_error"]) <= 0.30), r["link"]
    if host_slow:
        print("note: this host's own round trip exceeded the 200 us link RTT; not emulatable in this run")
        open(path + ".slow", "w").close()
    print("OK: two namespaces, authenticated, link 1gbit,200us achieved %.3f Gbit/s %.1f us" % (a["bulk_bps"] / 1e9, a["rtt_median_ns"] / 1e3))


def link_cut(path):
    """The link was cut for 1.5 s mid-migration: every page verified and installed exactly once, at
    least one connection loss and one reconnect."""
    d = json.load(open(path)); r = d["results"]; v, rec, pg = r["verify"], r["recovery"], r["pages"]
    assert v["done"] and v["pages_corrupt"] == 0 and v["pages_missing"] == 0 and v["pages_verified"] == pg["total"], v
    assert rec["demand"]["losses"] + rec["background"]["losses"] >= 1, rec
    assert rec["demand"]["reconnects"] + rec["background"]["reconnects"] >= 1, rec
    assert pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] == pg["total"], pg
    print("OK: link cut for 1.5 s: losses %d+%d, paused %.3f/%.3f s, %d pages re-requested, all %d pages verified" %
          (rec["demand"]["losses"], rec["background"]["losses"], rec["demand"]["pause_ns"] / 1e9,
           rec["background"]["pause_ns"] / 1e9, rec["pages_rerequested"], v["pages_verified"]))


def tbf_rate(path):
    """A tbf qdisc of 200mbit on the veth: nothing corrupt or missing, and pcbench's measured bulk
    rate (frame bytes; tbf counts IP headers too) within 150-205 Mbit/s."""
    r = json.load(open(path))["results"]; a = r["link"]["achieved"]
    assert r["verify"]["pages_corrupt"] == 0 and r["verify"]["pages_missing"] == 0, r["verify"]
    # frame bytes at the destination; tbf counts IP packets (headers included), so a little under 200 Mbit/s
    assert 150e6 <= a["bulk_bps"] <= 205e6, a
    print("OK: tbf 200mbit on the veth: pcbench measured %.1f Mbit/s (its own bucket at 5 Gbit/s)" % (a["bulk_bps"] / 1e6))


def zero_model(path, model, run_max):
    """`pcbench dest` against a source with --zero-model=MODEL: status ok, 8192 pages verified, the
    config and the image's zero model are MODEL, and with runs the config's zero-run-max is
    RUN_MAX."""
    d = json.load(open(path)); r = d["results"]; v = r["verify"]
    assert d["status"] == "ok", d["status"]
    assert v["done"] and v["pages_corrupt"] == 0 and v["pages_missing"] == 0 and v["pages_verified"] == 8192, v
    assert d["config"]["zero-model"] == model and r["pages"]["image_zero_model"] == model, (d["config"], r["pages"])
    if model == "runs":
        assert d["config"]["zero-run-max"] == int(run_max), d["config"]


def hostile_ok(path, name):
    """A migration through a hostile relay or peer NAME: status ok and every page verified."""
    d = json.load(open(path)); r = d["results"]; v = r["verify"]
    assert d["status"] == "ok", d.get("error")
    assert v["done"] and v["pages_corrupt"] == 0 and v["pages_missing"] == 0 and v["pages_verified"] == r["pages"]["total"], v
    print("OK  %-10s verified %d pages; recovery %s" % (name, v["pages_verified"],
          {k: r["recovery"][k] for k in ("frames_refused", "batches_incomplete", "pages_rerequested")}))


def recovery_counted(path, key):
    """results.recovery.KEY is at least 1: the hostile relay's frame was noticed and counted."""
    r = json.load(open(path))["results"]["recovery"]; assert r[key] >= 1, (key, r)


def handshake_retries(path):
    """Print results.recovery.handshake_retries (the handshakes a destination tried again after a
    "busy" refusal or an ending before CONFIG); fails if the key is missing."""
    print(json.load(open(path))["results"]["recovery"]["handshake_retries"])


def batches_incomplete(path):
    """A relay dropped a RUN frame of a batch: results.recovery counts at least one incomplete batch."""
    r=json.load(open(path))['results']['recovery']; assert r['batches_incomplete']>=1, r


def frames_refused(path):
    """A relay altered a keyed frame: results.recovery counts at least one refused frame."""
    r=json.load(open(path))['results']['recovery']; assert r['frames_refused']>=1, r


def background_reconnected(path):
    """A relay cut the background connection: it reconnected at least once."""
    r=json.load(open(path))['results']['recovery']; assert r['background']['reconnects']>=1, r


def per_run_secret(path):
    """A forked source without a key file: the transport says per_run_secret, not authenticated."""
    n=json.load(open(path))['results']['transport']; assert n['per_run_secret'] and not n['authenticated'], n


def slowloris_window(seconds):
    """The source dropped a slow-loris handshake after SECONDS, within 0.8-4 s of a 1 s deadline."""
    sys.exit(0 if 0.8 <= float(seconds) <= 4 else 1)


def free_port():
    """Not a check: print a TCP port on 127.0.0.1 that was free a moment ago."""
    s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])
