#!/usr/bin/env python3
"""One table row per run.py output directory: QEMU's counters next to
pctrace's (when the run had --pctrace).  Usage: summarize.py DIR..."""
import json, os, sys

print("| run | preempt | postcopy-requests | postcopy-blocktime ms | vcpu-blocktime ms "
      "| blocktime/request ms | pctrace faults (CPU 0/TCG) | pctrace fault->running sum ms "
      "| sum/fault ms | p50 ms | postcopy->complete s |")
print("|---" * 11 + "|")
for d in sys.argv[1:]:
    q = json.load(open(os.path.join(d, "qemu.json")))
    req = q["source"]["ram"]["postcopy-requests"]
    bt = q["destination"].get("postcopy-blocktime")
    vbt = q["destination"].get("postcopy-vcpu-blocktime")
    row = [os.path.basename(d), "on" if q["preempt"] else "off", req, bt, vbt,
           f"{bt / req:.2f}" if req and bt is not None else "-"]
    p = os.path.join(d, "pctrace.json")
    if os.path.exists(p):
        b = json.load(open(p))["bpf"]
        cpu = [t for t in b["threads"] if t["comm"].startswith("CPU ")]
        other = [t for t in b["threads"] if not t["comm"].startswith("CPU ")]
        f = b["fault_to_running"]
        row += [f"{b['faults']} ({sum(t['faults'] for t in cpu)}"
                + (f"; others {sum(t['faults'] for t in other)})" if other else ")"),
                f"{f['sum_ns'] / 1e6:.0f}", f"{f['mean_ns'] / 1e6:.2f}", f"{f['p50_ns'] / 1e6:.2f}"]
    else:
        row += ["-"] * 4
    row.append(f"{q['postcopy_to_complete_s']:.2f}")
    print("| " + " | ".join(str(x) for x in row) + " |")
