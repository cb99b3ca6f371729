#!/usr/bin/env bash
# The pager's own memory grows by well under 0.2% of the guest per page: two
# migrations (256 MiB and 1 GiB, verified) and the growth of the pager's RSS
# excluding the guest region between them, per guest byte, must stay below
# 0.002 — so a 16 GiB guest stays under the 0.2% budget (the fixed part, a few
# MiB of buffers and code, is amortised there; `make bench-scale` runs the
# 16 GiB migration itself).  Also checks the memory block of the JSON.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
[ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd access"
for m in 256M 1G; do
	"$P" --mem=$m --policy=sequential --workload=seq --ops=2000 --duration=0 --trace=off --json "$T/$m.json" >/dev/null 2>"$T/$m.err" ||
		{ echo "FAIL: --mem=$m: $(tail -2 "$T/$m.err")"; exit 1; }
done
python3 - "$T/256M.json" "$T/1G.json" <<'PY'
import json, sys
a, b = (json.load(open(f))["results"] for f in sys.argv[1:3])
errs = []
for r in (a, b):
    v = r["verify"]
    if v["pages_corrupt"] or v["pages_missing"] or not v["done"]: errs.append("verify %s" % v)
    m = r["pager"]["memory"]
    if not m["measured"] or m["pager_rss_excluding_guest"] <= 0: errs.append("memory not measured: %s" % m)
    if m["guest_region_rss"] > m["guest_region_bytes"]: errs.append("guest RSS above the region size")
ma, mb = a["pager"]["memory"], b["pager"]["memory"]
slope = (mb["pager_rss_excluding_guest"] - ma["pager_rss_excluding_guest"]) / (mb["guest_region_bytes"] - ma["guest_region_bytes"])
print("pager RSS excluding the guest: %.2f MiB at 256 MiB, %.2f MiB at 1 GiB: %.5f bytes per guest byte (%.2f bytes per page)" % (
    ma["pager_rss_excluding_guest"] / 2**20, mb["pager_rss_excluding_guest"] / 2**20, slope, slope * 4096))
if not 0 < slope < 0.002: errs.append("growth %.5f per guest byte, want below 0.002" % slope)
if errs: print("FAIL:", "; ".join(errs)); sys.exit(1)
print("scale memory: ok")
PY
