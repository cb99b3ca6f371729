"""Checks of tests/integ/push.sh: --policy-end=source (the source pushes) against the destination's pull."""
import json


def run(f, name, end, ch):
    """A run with --policy-end=END over CH channels: config and results echo END and CH, every page
    verified; at the source end the push ended, carried between 1 page and the whole image, no
    background batch was asked for, and demand requests answered in the stream are at most the
    requests."""
    ch = int(ch)
    d = json.load(open(f)); c = d["config"]; r = d["results"]
    assert c["policy-end"] == end and r["policy"]["end"] == end, (name, c["policy-end"], r["policy"])
    assert c["channels"] == ch and r["transport"]["channels"] == ch, (name, c["channels"])
    v = r["verify"]
    assert v["pages_corrupt"] == 0 and v["pages_missing"] == 0 and v["pages_verified"] == r["pages"]["total"], (name, v)
    if end == "source":
        p = r["policy"]
        assert p["push_ended"], (name, p)
        # the stream carried every page the demand replies did not
        assert 0 < p["pushed_pages"] <= r["pages"]["total"], (name, p)
        assert r["pager"]["background_batches"] == 0, (name, "a pushed run asked for batches", r["pager"])
        # a request for a page the stream had already sent was answered SENT, not sent again
        assert r["pager"]["demand_answered_in_stream"] <= r["pager"]["demand_requests"], (name, r["pager"])
    print("OK %-14s at the %s, %d channel(s): %d pages verified, %d pushed; %d of %d requests answered in the stream" %
          (name, end, ch, v["pages_verified"], r["policy"].get("pushed_pages", 0), r["pager"]["demand_answered_in_stream"],
           r["pager"]["demand_requests"]))
