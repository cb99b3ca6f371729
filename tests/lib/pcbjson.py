#!/usr/bin/env python3
"""JSON checks for the integration tests (tests/integ/*.sh).

  pcbjson.py get FILE PATH...       print fields (a.b.c; list index as a number), one per line
  pcbjson.py schema FILE            every documented field is present with its type
  pcbjson.py migration FILE         schema + a successful, fully verified migration
  pcbjson.py local FILE             schema + a verified run of the no-migration baseline (--policy=local)
  pcbjson.py failed FILE CODE       a valid report of a failed run with exit code CODE
  pcbjson.py host_line FILE OUT     the summary OUT says "freed memory reported to the host (order N)"
                                    exactly when FILE's system.host.free_page_reporting_order N >= 0

Exit 0 if every check holds, else 1 after printing each failed check.  One test's own checks
are named functions in tests/lib/checks/ (run by tests/lib/check).
"""
import json
import sys

errors = []



def free_page_reporting_order():
    """What sysfs says independently of pcbench: the page_reporting_order when a bound virtio
    balloon offers VIRTIO_BALLOON_F_REPORTING (feature bit 5), else -1."""
    import glob
    on = False
    for f in glob.glob("/sys/bus/virtio/drivers/virtio_balloon/virtio*/features"):
        bits = open(f).read().strip()
        on = on or (len(bits) > 5 and bits[5] == "1")
    try:
        order = int(open("/sys/module/page_reporting/parameters/page_reporting_order").read())
    except (OSError, ValueError):
        return -1
    return order if on else -1


def conns(d):
    """The connections a run's transport object lists: one shared, or demand and background."""
    return ["shared"] if d.get("results", {}).get("transport", {}).get("channels") == 1 else ["demand", "background"]

def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def get(d, path):
    for k in path.split("."):
        if isinstance(d, list):
            d = d[int(k)]
        else:
            d = d[k]
    return d


def has(d, path, types):
    try:
        v = get(d, path)
    except (KeyError, IndexError, TypeError, ValueError):
        errors.append("missing field %s" % path)
        return None
    if isinstance(types, type):
        types = (types,)
    # bool is an int in python: keep them apart
    if isinstance(v, bool) and bool not in types:
        errors.append("%s is a boolean, want %s" % (path, "/".join(t.__name__ for t in types)))
    elif not isinstance(v, types):
        errors.append("%s is %r, want %s" % (path, v, "/".join(t.__name__ for t in types)))
    return v


NUM = (int, float)
HIST = ["count", "min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns", "sum_ns"]
CONFIG = {"mem": int, "policy": str, "workload": str, "vcpus": int, "seed": int, "zero-pages": NUM,
          "write-ratio": NUM, "zipf-theta": NUM, "duration_ns": int, "ops": int, "json": str,
          "host": str, "port": int, "io-timeout_ns": int, "batch": int, "window": int,
          "source-delay_ns": int, "verbose": int}


def hist(d, path, bins=False):
    for k in HIST:
        has(d, path + "." + k, NUM)
    if bins:
        b = has(d, path + ".bins", list)
        if b is not None:
            check(all(isinstance(x, list) and len(x) == 2 for x in b), path + ".bins: want [lower_ns, count] pairs")
            check(sum(x[1] for x in b) == get(d, path + ".count"), path + ".bins do not add up to count")
            lows = [x[0] for x in b]
            check(lows == sorted(set(lows)), path + ".bins not in ascending order")
    try:
        h = get(d, path)
        if h["count"]:
            check(h["min_ns"] <= h["p50_ns"] <= h["p90_ns"] <= h["p99_ns"] <= h["p999_ns"] <= h["max_ns"],
                  "%s: percentiles not ordered: %s" % (path, {k: h[k] for k in HIST}))
    except (KeyError, TypeError):
        pass


def schema(d, uffd=True):
    check(d.get("schema_version") == 1, "schema_version is %r, want 1" % d.get("schema_version"))
    check(d.get("tool") == "pcbench", "tool is not pcbench")
    v = has(d, "version", str)
    check(bool(v), "version empty")
    g = has(d, "git_revision", str)
    check(bool(g), "git_revision empty")
    has(d, "status", str)
    has(d, "exit_code", int)
    for k, t in CONFIG.items():
        has(d, "config." + k, t)
    for k in ["kernel", "machine", "cpu_model", "thp_enabled", "clocksource"]:
        check(bool(has(d, "system.host." + k, str)), "system.host.%s empty" % k)
    check(has(d, "system.host.page_size", int) == 4096, "system.host.page_size is not 4096")
    has(d, "system.host.cpus_online", int)
    fpr, sysfs = has(d, "system.host.free_page_reporting_order", int), free_page_reporting_order()
    check(fpr == sysfs, "system.host.free_page_reporting_order %s, sysfs says %s" % (fpr, sysfs))
    if uffd:   # the no-migration baseline opens no userfaultfd
        u = "system.userfaultfd."
        has(d, u + "opened_via", str)
        sup = has(d, u + "features_supported", int)
        en = has(d, u + "features_enabled", int)
        names = has(d, u + "features_supported_names", list)
        has(d, u + "ioctls_range", int)
        if isinstance(sup, int) and isinstance(en, int) and isinstance(names, list):
            check(en & ~sup == 0, "userfaultfd features_enabled 0x%x not a subset of supported 0x%x" % (en, sup))
            check(len(names) == bin(sup).count("1"), "features_supported_names does not match features_supported")
            check(en & (1 << 8), "userfaultfd THREAD_ID (bit 8) not enabled: fault attribution needs it")
            # SIGBUS mode would turn faults into signals; the pager never asks for it
            check(not en & (1 << 7), "userfaultfd features_enabled claims SIGBUS (0x%x): the pager does not enable it" % en)
    r = "results."
    for k in ["total_migration_ns", "run_ns", "guest_ns"]:
        has(d, r + "time." + k, int)
    has(d, r + "time.completed_while_guest_ran", bool)
    for k in ["total", "demand", "background", "drain", "zero", "zero_demand", "zero_background", "zero_drain",
              "eexist_races", "eexist_demand", "eexist_background"]:
        has(d, r + "pages." + k, int)
    for k in ["count", "uffd_messages", "on_present_page", "on_inflight_page", "unattributed"]:
        has(d, r + "faults." + k, int)
    has(d, r + "faults.histogram_relative_error", NUM)
    hist(d, r + "faults.latency", bins=True)
    has(d, r + "blocktime.per_vcpu_ns", list)
    has(d, r + "blocktime.total_ns", int)
    for k in ["demand_requests", "background_batches", "background_pages_requested"]:
        has(d, r + "pager." + k, int)
    hist(d, r + "pager.demand_round_trip")
    hist(d, r + "pager.demand_service")
    # --channels=1 (e.g. qemu without preempt): one "shared" connection
    for ch in conns(d):
        for k in ["bytes_sent", "bytes_received", "frames_sent", "frames_received", "frames_rejected"]:
            has(d, r + "transport." + ch + "." + k, int)
    has(d, r + "transport.kind", str)
    has(d, r + "transport.port", int)
    vc = has(d, r + "guest.vcpus", list)
    for k in ["ops", "reads", "writes", "read_mismatches"]:
        has(d, r + "guest." + k, int)
    has(d, r + "guest.ops_per_sec", NUM)
    hist(d, r + "guest.op_latency")
    if isinstance(vc, list):
        for i in range(len(vc)):
            for k in ["vcpu", "tid", "cpu_start", "cpu_end", "ops", "faults", "blocktime_ns", "read_mismatches"]:
                has(d, "%sguest.vcpus.%d.%s" % (r, i, k), int)
    has(d, r + "verify.done", bool)
    for k in ["pages_verified", "pages_corrupt", "pages_missing", "bad_write_stamps"]:
        has(d, r + "verify." + k, int)
    has(d, r + "verify.first_bad_pages", list)
    has(d, r + "verify.method", str)


def migration(d):
    schema(d)
    if errors:
        return
    c, r = d["config"], d["results"]
    p, v, g = r["pages"], r["verify"], r["guest"]
    total = p["total"]
    check(d["status"] == "ok" and d["exit_code"] == 0, "status %r exit_code %r, want ok/0" % (d["status"], d["exit_code"]))
    check("error" not in d, "error field present: %r" % d.get("error"))
    check(total == c["mem"] // 4096, "pages.total %d != mem/4096 %d" % (total, c["mem"] // 4096))
    check(v["done"] is True, "verify.done is not true")
    check(v["pages_corrupt"] == 0, "verify.pages_corrupt = %d" % v["pages_corrupt"])
    check(v["pages_missing"] == 0, "verify.pages_missing = %d" % v["pages_missing"])
    check(v["bad_write_stamps"] == 0, "verify.bad_write_stamps = %d" % v["bad_write_stamps"])
    check(v["pages_verified"] == total, "verify.pages_verified %d != total %d" % (v["pages_verified"], total))
    check(v["first_bad_pages"] == [], "verify.first_bad_pages not empty")
    # every page installed exactly once; EEXIST races are extra
    s = p["demand"] + p["background"] + p["drain"] + p["zero"]
    check(s == total, "demand %d + background %d + drain %d + zero %d = %d != total %d"
          % (p["demand"], p["background"], p["drain"], p["zero"], s, total))
    check(p["zero"] == p["zero_demand"] + p["zero_background"] + p["zero_drain"], "zero != sum of its parts")
    check(p["eexist_races"] == p["eexist_demand"] + p["eexist_background"], "eexist_races != sum of its parts")
    check(r["time"]["total_migration_ns"] > 0, "time.total_migration_ns is 0 for a completed migration")
    check(g["read_mismatches"] == 0, "guest.read_mismatches = %d" % g["read_mismatches"])
    check(g["ops"] > 0, "guest did no operations")
    check(g["ops"] == sum(x["ops"] for x in g["vcpus"]), "guest.ops != sum over vCPUs")
    # an op is one access or more (kv: index + records): accesses >= ops
    check(g["reads"] + g["writes"] >= g["ops"], "guest reads + writes < ops")
    check(g["ops_per_sec"] > 0, "guest.ops_per_sec is 0")
    check(len(g["vcpus"]) == c["vcpus"], "%d vCPU entries for --vcpus=%d" % (len(g["vcpus"]), c["vcpus"]))
    check([x["vcpu"] for x in g["vcpus"]] == list(range(c["vcpus"])), "vCPU indices out of order")
    bt = r["blocktime"]
    check(len(bt["per_vcpu_ns"]) == c["vcpus"], "blocktime.per_vcpu_ns has %d entries for %d vCPUs"
          % (len(bt["per_vcpu_ns"]), c["vcpus"]))
    check(bt["total_ns"] == sum(bt["per_vcpu_ns"]), "blocktime.total_ns != sum of per_vcpu_ns")
    check(bt["per_vcpu_ns"] == [x["blocktime_ns"] for x in g["vcpus"]], "blocktime per vCPU disagrees with guest.vcpus")
    f = r["faults"]
    check(f["count"] == f["latency"]["count"], "faults.count != faults.latency.count")
    check(f["count"] <= g["reads"] + g["writes"], "more faulting accesses than accesses")
    # every page that arrived came over TCP: a 4 KiB payload per data page
    data_pages = p["demand"] + p["background"] + p["drain"]
    rx = sum(r["transport"][ch]["bytes_received"] for ch in conns(d))
    check(rx >= data_pages * 4096, "received %d bytes for %d data pages" % (rx, data_pages))
    for ch in conns(d):
        check(r["transport"][ch]["frames_rejected"] == 0, "transport.%s.frames_rejected != 0" % ch)
    # a reply can still be in flight when the last page arrives by another path: >=
    # --page-size=2M: one demand request per huge page asks for many 4 KiB pages
    dreq = r["pager"].get("demand_pages_requested", r["pager"]["demand_requests"])
    check(dreq >= p["demand"] + p["zero_demand"] + p["eexist_demand"],
          "pager.demand_requests %d < pages installed on demand %d"
          % (dreq, p["demand"] + p["zero_demand"] + p["eexist_demand"]))


def local(d):
    """--policy=local: all memory local before the guest starts, then verified."""
    schema(d, uffd=False)
    if errors:
        return
    c, r = d["config"], d["results"]
    p, v, g = r["pages"], r["verify"], r["guest"]
    check(d["status"] == "ok" and d["exit_code"] == 0, "status %r exit_code %r" % (d["status"], d["exit_code"]))
    check(v["done"] is True and v["pages_corrupt"] == 0 and v["pages_missing"] == 0 and v["bad_write_stamps"] == 0
          and v["pages_verified"] == p["total"] == c["mem"] // 4096, "verification: %s" % v)
    moved = p["demand"] + p["background"] + p["drain"] + p["zero"]
    check(moved == 0, "the local baseline installed %d pages after the guest started" % moved)
    check(r["faults"]["count"] == 0 and r["faults"]["uffd_messages"] == 0, "the local baseline saw faults: %s"
          % {k: r["faults"][k] for k in ("count", "uffd_messages")})
    check(r["blocktime"]["total_ns"] == 0, "the local baseline has blocktime %d" % r["blocktime"]["total_ns"])
    check(g["ops"] > 0 and g["read_mismatches"] == 0, "guest ops %d, read mismatches %d" % (g["ops"], g["read_mismatches"]))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, fn = sys.argv[1], sys.argv[2]
    try:
        with open(fn) as fp:
            d = json.load(fp)
    except (OSError, ValueError) as e:
        print("FAIL: %s is not valid JSON: %s" % (fn, e))
        sys.exit(1)
    if cmd == "get":
        for path in sys.argv[3:]:
            try:
                v = get(d, path)
            except (KeyError, IndexError, TypeError, ValueError):
                v = "MISSING:" + path
            print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
        return
    if cmd == "schema":
        schema(d)
    elif cmd == "migration":
        migration(d)
    elif cmd == "local":
        local(d)
    elif cmd == "host_line":
        order = get(d, "system.host.free_page_reporting_order")
        said = "freed memory reported to the host (order %d)" % order in open(sys.argv[3]).read()
        check(said == (order >= 0), "summary %s %s the host's free page reporting (order %d)"
              % (sys.argv[3], "names" if said else "does not name", order))
    elif cmd == "failed":
        schema(d)
        code = int(sys.argv[3])
        check(d.get("status") == "failed", "status is %r, want failed" % d.get("status"))
        check(d.get("exit_code") == code, "exit_code is %r, want %d" % (d.get("exit_code"), code))
        check(bool(d.get("error")), "no error message in the report")
    else:
        sys.exit(__doc__)
    for e in errors:
        print("FAIL: %s: %s" % (fn, e))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
