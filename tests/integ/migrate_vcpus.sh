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
# faults are the accesses that blocked: those during which the pager read a message
# of that vCPU, plus those a background install woke before it read one (undelivered)
delivered = sum(x["faults"] - x["faults_undelivered"] for x in vc)
if delivered > r["faults"]["uffd_messages"]:
    bad.append("per-vCPU delivered faults %d > uffd messages %d" % (delivered, r["faults"]["uffd_messages"]))
if r["faults"]["uffd_messages"] == 0: bad.append("no faults at all in a post-copy run")
for b in bad: print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
		log "$name: ok"
	done
done

finish
