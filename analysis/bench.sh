#!/usr/bin/env bash
# `make bench` (interim main job): compare the policies on a few workloads and
# print one table.  Each run's JSON goes to results/bench-<date>-<rev>/.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
out=results/bench-$(date -u +%Y%m%dT%H%M%SZ)-$rev
mkdir -p "$out"
MEM=${MEM:-256M}; DUR=${DUR:-2s}; VCPUS=${VCPUS:-1}
printf '%-11s %-8s %10s %10s %10s %10s %9s %9s %9s %s\n' policy workload migr_ms block_ms faults p50_us p99_us demand backgr verify
for wl in seq random zipf; do
	for pol in demand sequential; do
		f="$out/$pol-$wl.json"
		./pcbench --policy=$pol --workload=$wl --mem=$MEM --duration=$DUR --vcpus=$VCPUS --json "$f" >"$out/$pol-$wl.txt"
		python3 - "$f" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); r = d["results"]; c = d["config"]
lat = r["faults"]["latency"]
v = r["verify"]
print("%-11s %-8s %10.1f %10.1f %10d %10.1f %9.1f %9d %9d %s" % (
    c["policy"], c["workload"], r["time"]["total_migration_ns"] / 1e6, r["blocktime"]["total_ns"] / 1e6,
    r["faults"]["count"], lat["p50_ns"] / 1e3, lat["p99_ns"] / 1e3, r["pages"]["demand"], r["pages"]["background"],
    "ok" if v["pages_corrupt"] == 0 and v["pages_missing"] == 0 else "FAILED"))
PY
	done
done
echo "results: $out"
