"""Checks of tests/integ/channels.sh: --channels=1|2."""
import json


def connections(f, ch, tag):
    """A run with CHANNELS connections (tagged TAG in messages): status ok, config and transport
    name CHANNELS, every page verified and installed exactly once; with 1 channel only a shared
    connection whose demand replies match the demand requests (but at most one per vCPU still outstanding
    when the last page arrived) and whose bytes cover every data
    page, with 2 the demand and background connections carry at least their pages' bytes."""
    ch = int(ch)
    d = json.load(open(f)); r = d["results"]
    assert d["status"] == "ok", (tag, d.get("error"))
    assert d["config"]["channels"] == ch, (tag, d["config"]["channels"])
    v, pg, tr, pa = r["verify"], r["pages"], r["transport"], r["pager"]
    assert v["done"] and v["pages_corrupt"] == 0 and v["pages_missing"] == 0 and v["pages_verified"] == pg["total"], (tag, v)
    n = pg["demand"] + pg["background"] + pg["drain"] + pg["zero"]
    assert n == pg["total"], (tag, n, pg)
    assert tr["channels"] == ch, (tag, tr)
    if ch == 1:
        assert "demand" not in tr and "background" not in tr, (tag, tr)
        sh = tr["shared"]
        # every demand request was answered on the shared connection, flagged urgent, but those still
        # outstanding when the last page arrived: a fault whose page the background stream brought
        # first (the background won), at most one per blocked vCPU, whose reply the pager, done,
        # no longer reads (seen: 56 replies to 57 requests, 2 vCPUs, pivot, ASan build)
        unanswered = pa["demand_requests"] - sh["demand_replies_received"]
        assert 0 <= unanswered <= d["config"]["vcpus"], (tag, sh, pa["demand_requests"])
        assert sh["bytes_received"] >= 4096 * (pg["demand"] + pg["background"] + pg["drain"]), (tag, sh, pg)
    else:
        assert "shared" not in tr, (tag, tr)
        # demand pages arrived on the demand connection, background ones on the other
        assert tr["demand"]["bytes_received"] >= 4096 * pg["demand"], (tag, tr, pg)
        assert tr["background"]["bytes_received"] >= 4096 * pg["background"], (tag, tr, pg)
    print("OK %-28s %d channel(s): %6d pages verified, %5d faults, fault p50 %8.1f us" %
          (tag, ch, v["pages_verified"], r["faults"]["count"], r["faults"]["latency"]["p50_ns"] / 1e3))


def shared_restart(path, tag):
    """The source was killed and restarted under --channels=1: the shared connection (no demand
    one) lost and reconnected at least once, paused at least 0.3 s (the source was down ~0.8 s),
    and at least one page was re-requested."""
    r = json.load(open(path))["results"]; rec = r["recovery"]
    assert "demand" not in rec and rec["shared"]["losses"] >= 1 and rec["shared"]["reconnects"] >= 1, rec
    assert rec["shared"]["pause_ns"] >= 300e6, rec      # the source was down ~0.8 s
    assert rec["pages_rerequested"] >= 1, rec
    print("OK %s: shared channel paused %.3f s, %d pages re-requested (%d demand)" %
          (tag, rec["shared"]["pause_ns"] / 1e9, rec["pages_rerequested"], rec["demand_pages_rerequested"]))
