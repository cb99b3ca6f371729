"""Checks of tests/integ/scale_memory.sh: the pager's own memory as the guest grows."""
import json


def memory(small, large):
    """Two verified migrations (SMALL: 256 MiB, LARGE: 1 GiB); the pager's RSS excluding the guest grows by
    less than 0.002 bytes per guest byte between them."""
    a, b = (json.load(open(f))["results"] for f in (small, large))
    for r in (a, b):
        v = r["verify"]
        assert v["done"] and not v["pages_corrupt"] and not v["pages_missing"], "verify %s" % v
        m = r["pager"]["memory"]
        assert m["measured"] and m["pager_rss_excluding_guest"] > 0, "memory not measured: %s" % m
        assert m["guest_region_rss"] <= m["guest_region_bytes"], "guest RSS above the region size"
        # the vCPU stall lists (harness, not pager): whole pages of one vCPU's list, which starts at
        # 4096 entries of 16 bytes and grows by doubling only past them (2000 accesses never do)
        s = m["vcpu_stall_records_rss"]
        assert s % 4096 == 0 and s <= 4096 * 16, "stall records %d bytes" % s
    ma, mb = a["pager"]["memory"], b["pager"]["memory"]
    slope = (mb["pager_rss_excluding_guest"] - ma["pager_rss_excluding_guest"]) / (mb["guest_region_bytes"] - ma["guest_region_bytes"])
    print("pager RSS excluding the guest: %.2f MiB at 256 MiB, %.2f MiB at 1 GiB: %.5f bytes per guest byte (%.2f bytes per page)" % (
        ma["pager_rss_excluding_guest"] / 2**20, mb["pager_rss_excluding_guest"] / 2**20, slope, slope * 4096))
    assert 0 < slope < 0.002, "growth %.5f per guest byte, want below 0.002" % slope
    print("scale memory: ok")
