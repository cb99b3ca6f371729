"""Checks of tests/integ/migrate_*.sh beyond pcbjson.py's `migration`."""
import json
import sys


def vcpus(path, n):
    """A run with N vCPUs: N guest.vcpus entries with distinct thread ids, each did work; no
    unattributed fault (only vCPU threads touch the region); per-vCPU delivered faults (faults
    minus undelivered) not above the uffd messages, and some messages at all."""
    d = json.load(open(path)); n = int(n); r = d["results"]; bad = []
    vc = r["guest"]["vcpus"]
    if len(vc) != n: bad.append("%d guest.vcpus entries" % len(vc))
    if len(set(x["tid"] for x in vc)) != n: bad.append("vCPU thread ids not distinct")
    if any(x["ops"] <= 0 for x in vc): bad.append("a vCPU did no work: %s" % [x["ops"] for x in vc])
    # every uffd fault message came from a registered vCPU thread (nothing else touches the region)
    if r["faults"]["unattributed"] != 0: bad.append("%d unattributed faults" % r["faults"]["unattributed"])
    # faults are the accesses that blocked: those during which the pager read a message
    # of that vCPU, plus those a background install woke before it read one (undelivered)
    delivered = sum(x["faults"] - x["faults_undelivered"] for x in vc)
    if delivered > r["faults"]["uffd_messages"]:
        bad.append("per-vCPU delivered faults %d > uffd messages %d" % (delivered, r["faults"]["uffd_messages"]))
    if r["faults"]["uffd_messages"] == 0: bad.append("no faults at all in a post-copy run")
    for b in bad: print("FAIL:", b)
    sys.exit(1 if bad else 0)
