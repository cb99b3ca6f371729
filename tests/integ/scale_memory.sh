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
$CHECK scale.memory "$T/256M.json" "$T/1G.json"
