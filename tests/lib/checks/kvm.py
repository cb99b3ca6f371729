"""Checks of tests/integ/kvm_guest.sh: the minimal KVM guest (--guest=kvm)."""
import json


def guest_runs(T):
    """T/kvm.json, kvm-demand.json, kvm-local.json: each a KVM guest run with 16384 pages verified,
    no read mismatch, a known TSC rate, ops on every vCPU with the guest TSC within 5 % + 2 ms
    of the host clock, and the progress series adding up to the ops; the two migrations install
    every page once, every vCPU faulted and blocked in KVM_RUN, faults <= uffd messages, none
    unattributed; the demand run demand-paged and wrote; the local run took no fault."""
    def load(n): return json.load(open("%s/%s.json" % (T, n)))
    for name in ("kvm", "kvm-demand", "kvm-local"):
        d = load(name); r = d["results"]; v = r["verify"]; g = r["guest"]
        assert d["config"]["guest"] == "kvm" and g["kind"] == "kvm", name
        assert v["done"] and v["pages_verified"] == 16384 and not v["pages_corrupt"] and not v["pages_missing"], (name, v)
        assert g["read_mismatches"] == 0, name
        assert g["kvm_tsc_khz"] > 0, name
        for vc in g["vcpus"]:
            assert vc["ops"] > 0, (name, vc)
            w, t = vc["kvm_host_wall_ns"], vc["kvm_guest_tsc_ns"]
            assert abs(t - w) < 0.05 * w + 2e6, ("guest TSC and host clock disagree", name, vc)
        assert sum(r["progress"]["total"]) == g["ops"], name
    for name in ("kvm", "kvm-demand"):
        r = load(name)["results"]; g = r["guest"]; pg = r["pages"]
        assert pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] == pg["total"], pg
        # every vCPU took uffd faults through KVM and blocked in KVM_RUN
        for vc in g["vcpus"]:
            assert vc["faults"] > 0 and vc["blocktime_ns"] > 0, (name, vc)
        assert len(r["blocktime"]["per_vcpu_ns"]) == 2 and all(b > 0 for b in r["blocktime"]["per_vcpu_ns"])
        assert r["faults"]["uffd_messages"] >= r["faults"]["count"] > 0
        assert r["faults"]["unattributed"] == 0, "a fault from a thread that is not a vCPU"
        print("%s: %d ops, %d faults (p50 %.1f us), blocktime %s ms per vCPU, uffd opened via %s" % (
            name, g["ops"], r["faults"]["count"], r["faults"]["latency"]["p50_ns"] / 1e3,
            [round(b / 1e6, 1) for b in r["blocktime"]["per_vcpu_ns"]], load(name)["system"]["userfaultfd"]["opened_via"]))
    d = load("kvm-demand")["results"]
    assert d["pages"]["demand"] > 0 and d["guest"]["writes"] > 0
    loc = load("kvm-local")["results"]
    assert loc["faults"]["count"] == 0
    print("local KVM: %d ops" % loc["guest"]["ops"])


def same_as_process(process_json, kvm_json, workload):
    """The same workload, seed and ops in the process guest and the KVM guest: equal ops, reads,
    writes, touched pages and demand-installed pages, and the KVM run verified without read
    mismatch."""
    a, b = (json.load(open(f))["results"] for f in (process_json, kvm_json))
    ka = (a["guest"]["ops"], a["guest"]["reads"], a["guest"]["writes"], a["prefetch"]["pages_touched"], a["pages"]["demand"] + a["pages"]["zero_demand"])
    kb = (b["guest"]["ops"], b["guest"]["reads"], b["guest"]["writes"], b["prefetch"]["pages_touched"], b["pages"]["demand"] + b["pages"]["zero_demand"])
    assert ka == kb, (workload, ka, kb)
    assert b["verify"]["pages_corrupt"] == 0 and b["verify"]["pages_missing"] == 0 and b["guest"]["read_mismatches"] == 0
    print("%s: process and KVM guest: ops, reads, writes, touched pages, demand pages = %s" % (workload, ka))


def idle_pacing(path):
    """--workload=idle --workload-opt=interval-us=2000 for 500 ms in the KVM guest: 100-260 ops
    (one access per 2 ms, sleeping in between), nothing corrupt or missing."""
    r=json.load(open(path))['results']; ops=r['guest']['ops']
    assert 100 <= ops <= 260, ops   # one access per 2 ms for 500 ms, sleeping in between
    assert r['verify']['pages_corrupt'] == 0 and r['verify']['pages_missing'] == 0
    print('idle KVM guest: %d ops in 500 ms at one per 2 ms' % ops)
