"""Checks of tests/integ/pager_process.sh: the pager in its own process (--pager=process)."""
import json
import sys


def process_run(path, name, mode):
    """A --pager=process run with --install=MODE: exit 0, 16384 pages verified, no read mismatch,
    every page installed once, the pager in a process of its own (pid > 0, not the loader's),
    MODE used, the pager process's peak RSS measured and pages installed."""
    d = json.load(open(path)); r = d["results"]
    errs = []
    v = r["verify"]; pg = r["pages"]; pa = r["pager"]
    if d["exit_code"] != 0: errs.append("exit_code %s" % d["exit_code"])
    if v["pages_verified"] != 16384 or v["pages_corrupt"] or v["pages_missing"]: errs.append("verify %s" % v)
    if r["guest"]["read_mismatches"]: errs.append("%d read mismatches" % r["guest"]["read_mismatches"])
    if pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] != pg["total"]: errs.append("page accounting %s" % pg)
    if d["config"]["pager"] != "process" or pa["mode"] != "process": errs.append("pager mode %s" % pa["mode"])
    if pa["pid"] == pa["loader_pid"] or pa["pid"] <= 0: errs.append("pager pid %s, loader %s" % (pa["pid"], pa["loader_pid"]))
    if pa["install"]["mode"] != mode: errs.append("install mode %s" % pa["install"]["mode"])
    if pa["memory"]["pager_process_vm_hwm"] <= 0: errs.append("no pager process peak RSS")
    if pg["demand"] + pg["background"] + pg["drain"] == 0: errs.append("nothing installed")
    if errs:
        print("%s: %s" % (name, "; ".join(errs))); sys.exit(1)
    print("%s: ok: demand %d, background %d, drain %d, zero %d; pager pid %d (loader %d)" % (
        name, pg["demand"], pg["background"], pg["drain"], pg["zero"], pa["pid"], pa["loader_pid"]))


def guest_areas_missing(pcbench_pid, pager_pid):
    """Print how many of pcbench's 256 MiB mappings (PCBENCH_PID) the pager process (PAGER_PID)
    lacks, and how many pcbench has: the caller wants exactly one missing (the guest region)."""
    def areas(pid):
        out = set()
        for l in open("/proc/%s/maps" % pid):
            a, b = l.split()[0].split("-")
            if int(b, 16) - int(a, 16) == 268435456: out.add(a)
        return out
    mine, pagers = areas(pcbench_pid), areas(pager_pid)
    print(len(mine - pagers), len(mine))
