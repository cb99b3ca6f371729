#!/usr/bin/env bash
# Multi-vCPU migrations: --vcpus=2 for every policy (and 4 with zipf),
# per-vCPU blocktime and guest entries, faults attributed to vCPU threads.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

for p in $(migrating_policies); do
	for spec in 2:random 2:seq 4:zipf; do
		v=${spec%%:*} w=${spec#*:}
		name=$p-$w-v$v
		json=$T/$name.json
		pcb "$name" 120 $FAST --policy="$p" --workload="$w" --vcpus="$v" --mem=64M --duration=300ms --json="$json"
		expect_rc "$name" 0 || continue
		$PCBJSON migration "$json" || { fail "$name: result checks failed"; continue; }
		nv=$($PCBJSON get "$json" config.vcpus)
		[ "$nv" = "$v" ] || fail "$name: config.vcpus is $nv"
		python3 - "$json" "$v" <<'PY' || fail "$name: per-vCPU checks failed"
import json, sys
d = json.load(open(sys.argv[1])); n = int(sys.argv[2]); r = d["results"]; bad = []
vc = r["guest"]["vcpus"]
if len(vc) != n: bad.append("%d guest.vcpus entries" % len(vc))
if len(set(x["tid"] for x in vc)) != n: bad.append("vCPU thread ids not distinct")
if any(x["ops"] <= 0 for x in vc): bad.append("a vCPU did no work: %s" % [x["ops"] for x in vc])
# every uffd fault message came from a registered vCPU thread (nothing else touches the region)
if r["faults"]["unattributed"] != 0: bad.append("%d unattributed faults" % r["faults"]["unattributed"])
# each message is counted by at most one access of its vCPU; one read after the vCPU
# was already woken (page installed by another path) can fall between two accesses: <=
if sum(x["faults"] for x in vc) > r["faults"]["uffd_messages"]:
    bad.append("per-vCPU faults %d > uffd messages %d" % (sum(x["faults"] for x in vc), r["faults"]["uffd_messages"]))
if r["faults"]["uffd_messages"] == 0: bad.append("no faults at all in a post-copy run")
for b in bad: print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
		log "$name: ok"
	done
done

finish
