"""Checks of tests/integ/db_workload.sh: the SQLite database workload."""
import json
import sys


def run(path, name):
    """A db workload run NAME: exit 0, 16384 pages verified by a bytes image, the database's
    integrity_check ok with at least 1000 rows and none bad, one version per update done (at
    least one), no row read mismatched, ops done, faults seen (not required of the pre-copy runs
    v5/v6), and the prefetch section not claiming to be measured."""
    d = json.load(open(path)); r = d["results"]
    v = r["verify"]; a = r["application"]; g = r["guest"]
    errs = []
    if d["exit_code"] != 0: errs.append("exit_code %s: %s" % (d["exit_code"], d.get("error")))
    if not v["done"] or v["pages_corrupt"] or v["pages_missing"] or v["pages_verified"] != 16384: errs.append("verify %s" % v)
    if not v["method"].startswith("bytes image"): errs.append("method %s" % v["method"])
    if a["integrity_check"] != "ok" or not a["checked"]: errs.append("integrity_check %r" % a["integrity_check"])
    if a["rows_bad"] or a["rows"] < 1000: errs.append("rows %d, bad %d" % (a["rows"], a["rows_bad"]))
    if a["versions"] != a["updates_done"] or a["updates_done"] == 0: errs.append("versions %d, updates %d" % (a["versions"], a["updates_done"]))
    if g["read_mismatches"]: errs.append("%d rows read did not match" % g["read_mismatches"])
    if g["ops"] <= 0: errs.append("no ops")
    if name not in ("v5", "v6") and r["faults"]["count"] <= 0: errs.append("no faults")   # pre-copy may leave nothing the guest touches missing
    if r["prefetch"].get("measured") is not False: errs.append("prefetch claims to be measured")
    if errs:
        print("%s: %s" % (name, "; ".join(errs))); sys.exit(1)
    print("%s: ok, %d ops (%d updates), %d faults, blocktime %.1f ms, %d rows, integrity %s" % (
        name, g["ops"], a["updates_done"], r["faults"]["count"], r["blocktime"]["total_ns"] / 1e6, a["rows"], a["integrity_check"]))
