#!/usr/bin/env bash
# pcbench --trace=on: the kernel-side (BPF) count of blocking guest faults
# must match the pager's own count of userfaultfd messages, the USDT probe
# counts must match the pager exactly, and the medians of the two views of
# fault latency must agree (the guest thread sees ~2 us more: exception
# entry/exit and the clock reads are outside the kernel's fault -> running).
set -u
BUILD=${BUILD:-build}
skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; exit 1; }
[ -x ./pcbench ] || die "./pcbench not built"
./pcbench --help 2>&1 | grep -q -- '--trace' || skip "this pcbench has no --trace option"
command -v python3 >/dev/null || skip "python3 is needed to read the JSON"
[ "$(id -u)" = 0 ] || skip "--trace=on needs root (BPF)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

for wl in random; do
	./pcbench --trace=on --trace-usdt=on --mem=64M --workload=$wl --vcpus=2 --duration=1s --trace-events="$tmp/$wl.csv" \
		--json "$tmp/$wl.json" >"$tmp/$wl.out" 2>&1
	rc=$?
	case $rc in
	0) ;;
	77|69) skip "BPF unavailable: $(tail -1 "$tmp/$wl.out")" ;;
	*) cat "$tmp/$wl.out"; die "pcbench --workload=$wl exited $rc" ;;
	esac
	python3 - "$tmp/$wl.json" "$tmp/$wl.csv" "$wl" <<'PY' || exit 1
import csv, json, sys
d = json.load(open(sys.argv[1]))["results"]
b, f = d["bpf"], d["faults"]
ok = True
def req(c, what):
    global ok
    print(("ok   " if c else "FAIL ") + sys.argv[3] + ": " + what); ok &= bool(c)
req(b["enabled"], f"bpf enabled, attach {b['attach']}")
n, m = b["faults"], f["uffd_messages"]
anom = b["anomalies"]
print(f"     bpf blocking faults {n}, non-blocking {b['faults_nonblocking']}, pager uffd messages {m}, anomalies {anom}")
# Every uffd message is a fault that blocked.  Without fentry on
# handle_userfault the kernel side cannot tell a userfaultfd sleep from any
# other sleep inside a fault (a copy-on-write fault on a zero page waiting for
# memory or the mmap lock also blocks), so a few extra blocking faults are
# legitimate; fewer are only possible with an anomaly counted.
slack = anom["lost"] + anom["late_sleep"] + anom["wake_before_block"]
extra = max(3, m // 100)
req(m - slack <= n <= m + slack + extra,
    f"bpf faults {n} vs pager uffd messages {m}: {n - m:+d} (allowed -{slack}..+{slack + extra})")
p = b["pager"]
req(p["enabled"], "USDT probes attached (--trace-usdt=on)")
if p["enabled"]:
    req(p["probes"]["fault"] == m, f"USDT fault probes {p['probes']['fault']} == uffd messages {m}")
rows = sum(1 for _ in csv.DictReader(open(sys.argv[2])))
req(rows == n, f"event CSV rows {rows} == bpf faults {n}")
if n >= 50:
    kb, ku = b["fault_to_running"]["p50_ns"], f["latency"]["p50_ns"]
    req(kb <= ku * 1.02 and ku - kb <= max(0.15 * ku, 5000),
        f"median fault->running {kb} ns vs guest-seen {ku} ns ({100.0*(ku-kb)/ku:.1f}% lower)")
sys.exit(0 if ok else 1)
PY
done
echo PASS
