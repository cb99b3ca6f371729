"""Checks of tests/integ/precopy.sh: pre-copy before the post-copy switch-over."""
import json


def runs(T):
    """T/p0.json (no pre-copy), p1.json and p2.json (with): all verified with 16384 pages, no bad
    write stamp or read mismatch; p0 has no precopy section; with pre-copy every page was sent
    or counted never sent, the guest wrote more than 500 pages at the source, more than one
    round or pages never sent, no stale page, missing at switch-over = dirty + never sent, at
    least half the data pages' bytes received over TCP, post-copy installed exactly the missing
    pages; and the same seed takes fewer faults with pre-copy."""
    def load(n): return json.load(open("%s/%s.json" % (T, n)))
    p0, p1, p2 = load("p0"), load("p1"), load("p2")
    for name, d in (("p0", p0), ("p1", p1), ("p2", p2)):
        r = d["results"]; v = r["verify"]
        assert d["exit_code"] == 0 and v["done"] and v["pages_verified"] == 16384, (name, v)
        assert not v["pages_corrupt"] and not v["pages_missing"] and not v["bad_write_stamps"], (name, v)
        assert r["guest"]["read_mismatches"] == 0, name
    assert "precopy" not in p0["results"]
    for name, d in (("p1", p1), ("p2", p2)):
        r = d["results"]; pc = r["precopy"]; pg = r["pages"]
        # a loaded machine may not finish the first pass: what was not sent is missing
        assert pc["pages_sent"] + pc["never_sent"] == 16384, (name, pc)
        assert pc["guest_writes_at_source"] > 500, (name, pc)      # the guest wrote while at the source
        assert pc["rounds"] >= 1 and (pc["never_sent"] > 0 or pc["rounds"] > 1), (name, pc)
        assert pc["stale_pages"] == 0 and r["verify"]["precopy_stale_pages"] == 0
        assert pc["missing_at_switchover"] == pc["dirty_at_switchover"] + pc["never_sent"]
        # over TCP: at least the data pages (a quarter of the image is zero pages, sent as 24-byte frames)
        assert pc["transfer"].startswith("tcp") and pc["bytes_received"] >= 0.5 * 4096 * pc["pages_sent"], (name, pc)
        assert pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] == pc["missing_at_switchover"], (name, pg, pc)
        assert pg["precopy"] + pc["missing_at_switchover"] == pg["total"]
    f0 = p0["results"]["faults"]["count"]; f1 = p1["results"]["faults"]["count"]
    print("same seed: %d demand faults without pre-copy, %d with 1 s of pre-copy (%d pages dirty at switch-over)" % (
        f0, f1, p1["results"]["precopy"]["dirty_at_switchover"]))
    assert f1 < f0, (f0, f1)


def final_resend(path):
    """--precopy-final=resend: missing at switch-over is exactly what was never sent, post-copy
    installed only those (no userfault if none: no fault message read, every access that blocked
    undelivered -- a write to a zero-page mapping can sleep on the mmap lock while the pager
    starts, 1 in 7 ASan runs, docs/metrics.md), 16384 pages verified, no stale page."""
    r=json.load(open(path))['results']; pc=r['precopy']; v=r['verify']; pg=r['pages']
    assert pc['final'] == 'resend' and pc['missing_at_switchover'] == pc['never_sent'], pc
    assert pg['demand'] + pg['background'] + pg['drain'] + pg['zero'] == pc['never_sent'], (pg, pc)
    f = r['faults']
    assert pc['never_sent'] > 0 or (f['uffd_messages'] == 0 and f['count'] == f['undelivered']), f
    assert v['pages_verified'] == 16384 and not v['pages_corrupt'] and not v['pages_missing'] and pc['stale_pages'] == 0, v
    print('final resend: %d dirty pages re-sent with the vCPUs stopped in %.2f ms; %d fault messages, %d blocked accesses'
          % (pc['dirty_at_switchover'], pc['final_ns'] / 1e6, f['uffd_messages'], f['count']))


def memory_transport(path):
    """--precopy-transport=memory: the transfer says memory, no byte received over a socket, 16384 pages verified."""
    r=json.load(open(path))['results']; pc=r['precopy']; v=r['verify']
    assert pc['transfer'].startswith('memory') and pc['bytes_received'] == 0, pc
    assert v['pages_verified'] == 16384 and not v['pages_corrupt'] and not v['pages_missing'], v


def stale_caught(path):
    """PCB_TEST_PRECOPY_STALE=1 (stale copies kept on purpose): stale pages counted and at least as many corrupt pages."""
    d=json.load(open(path))
    s=d['results']['precopy']['stale_pages']; assert s > 0 and d['results']['verify']['pages_corrupt'] >= s, d['results']['verify']
    print('fault injection: %d stale pages caught' % s)
