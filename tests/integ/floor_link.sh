#!/usr/bin/env bash
# `pcbench floor`'s pull over an emulated link, for real: a loopback pull (no
# emulation), the delay line alone and two configured rates, each a whole
# pcbench migration with every page verified.  Asserted: the JSON rows exist
# in order with every page verified; the frame bytes counted are exactly the
# pages plus a 24-byte header per frame (the convention the link rate counts
# in); the frame size per rate is pcb_link_run_pages'; each rate's ratio to
# the configured link is > 0 and <= 1.1 (the token bucket never lets more
# through than configured -- a real check of the emulation, not a speed
# target); the ratios are consistent with the rates.  Bad --link-rates and
# --link-rtt values exit 64 naming the value; --no-link leaves the section out.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
[ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd access"

"$P" floor --no-demand --no-bulk --bulk=16M --bulk-reps=1 --link-rates=500mbit,1gbit --link-rtt=200us \
	--json "$T/fl.json" >"$T/fl.out" 2>"$T/fl.err"
rc=$?
[ $rc -eq 0 ] || fail "floor exit $rc: $(tail -3 "$T/fl.err")"
cat "$T/fl.out"
grep -q "^link target (median pull >= 0.9 x configured link" "$T/fl.out" || fail "no link verdict line"
grep -q "counts frame bytes" "$T/fl.out" || fail "the table does not state what the link rate counts"
python3 - "$T/fl.json" <<'PY' || fail "floor link JSON"
import json, sys
d = json.load(open(sys.argv[1])); r = d["results"]; errs = []
if d["kind"] != "floor" or not d["config"].get("link_bulk"): errs.append("config.link_bulk")
if d["config"].get("link_rates") != ["500mbit", "1gbit"] or d["config"].get("link_rtt_ns") != 200000: errs.append("config link echo")
if "bulk" in r or "demand" in r: errs.append("--no-bulk/--no-demand sections present")
rows = r.get("link_bulk", [])
names = [x["link"] for x in rows]
if names != ["loopback", "unlimited", "500mbit", "1gbit"]: errs.append("rows %s" % names)
cfg = r.get("link_bulk_config", {})
if cfg.get("rtt_ns") != 200000 or "frame bytes" not in cfg.get("rate_counts", ""): errs.append("config %s" % cfg)
want_frame = {"loopback": 128, "unlimited": 128, "500mbit": 16, "1gbit": 16}
for x in rows:
    n = x["link"]
    if not x["verified"] or x["pages"] != 4096: errs.append("%s: verified %s, %d pages" % (n, x["verified"], x["pages"]))
    # every frame received after switch-over is a RUN (data) or BATCH_END frame: pages + 24 bytes per frame
    if x["frame_bytes"] != x["pages"] * 4096 + 24 * x["frames"]: errs.append("%s: %d frame bytes for %d pages in %d frames" % (n, x["frame_bytes"], x["pages"], x["frames"]))
    if x["frame_pages"] != want_frame[n]: errs.append("%s: frame of %d pages" % (n, x["frame_pages"]))
    if x["frames"] < x["pages"] // x["frame_pages"]: errs.append("%s: %d frames, larger than %d pages each" % (n, x["frames"], x["frame_pages"]))
    if not (0 < x["gb_per_s_min"] <= x["gb_per_s"] <= x["gb_per_s_max"]): errs.append("%s: GB/s order" % n)
    if len(x["per_rep"]) != 1: errs.append("%s: %d repetitions" % (n, len(x["per_rep"])))
    if x["link_bps"]:
        q = x["ratio_to_link"]
        if not (0 < q <= 1.1): errs.append("%s: ratio to the link %.3f (the emulation let through more than configured?)" % (n, q))
        if abs(q - x["wire_bps"] / x["link_bps"]) > 1e-6 * q: errs.append("%s: ratio inconsistent with wire_bps" % n)
        if x["host_limited"] != (rows[0]["wire_bps"] < x["link_bps"]): errs.append("%s: host_limited" % n)
        if x["target_met"] != (not x["host_limited"] and q >= 0.9): errs.append("%s: target_met" % n)
        if abs(x["paired_ratio_to_loopback"] - x["wire_bps"] / rows[0]["wire_bps"]) > 1e-6: errs.append("%s: ratio to loopback" % n)
    if n != "loopback" and not (0.5 * 200000 < x["rtt_ns_achieved_median"] < 20 * 200000): errs.append("%s: achieved RTT %d ns" % (n, x["rtt_ns_achieved_median"]))
judged = [x for x in rows if x["link_bps"] and not x["host_limited"]]
if r.get("link_target_met") != (bool(judged) and all(x["ratio_to_link"] >= 0.9 for x in judged)): errs.append("link_target_met")
if errs: print("; ".join(errs)); sys.exit(1)
print("floor link: " + ", ".join("%s %.3f Gbit/s%s" % (x["link"], x["wire_bps"] / 1e9, " (%.3f of the link)" % x["ratio_to_link"] if x["link_bps"] else "") for x in rows))
PY

for bad in "--link-rates=3foo" "--link-rates=1gbit,unlimited" "--link-rates=" "--link-rates=1gbit,,2gbit" \
	   "--link-rates=1gbit,2gbit,3gbit,4gbit,5gbit,6gbit,7gbit,8gbit,9gbit" "--link-rates=1mbit" \
	   "--link-rtt=soon" "--link-rtt=2s"; do
	out=$("$P" floor --no-demand --no-bulk $bad 2>&1); rc=$?
	[ $rc -eq 64 ] || fail "floor $bad: exit $rc, want 64"
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "floor $bad: not a one-line error: $out"
	printf '%s' "$out" | grep -qF -- "${bad%%=*}" || fail "floor $bad: message does not name the option: $out"
done
out=$("$P" floor --no-demand --no-bulk --link-rates=1gbit,3foo 2>&1)
printf '%s' "$out" | grep -qF "'3foo'" || fail "--link-rates error does not name the bad rate: $out"
out=$("$P" floor --no-demand --no-bulk --link-rates=1gbit,2gbit,3gbit,4gbit,5gbit,6gbit,7gbit,8gbit,9gbit 2>&1)
printf '%s' "$out" | grep -qF "more than 8 rates" || fail "9 rates: $out"
# 128 MiB at 1mbit would take 18 min per pull: refused, naming the rate; a small --bulk makes it fine
out=$("$P" floor --no-demand --no-bulk --link-rates=1mbit 2>&1)
printf '%s' "$out" | grep -qF "'1mbit'" || fail "1mbit with 128 MiB: $out"
"$P" floor --no-demand --no-bulk --no-link --link-rates=1mbit --json "$T/x.json" >/dev/null 2>&1 || fail "--no-link still checks the link rates' duration"

"$P" floor --faults=100 --rounds=1 --no-bulk --no-link --json "$T/nolink.json" >/dev/null 2>&1 || fail "floor --no-link failed"
python3 -c "
import json, sys; d = json.load(open('$T/nolink.json'))
sys.exit(0 if 'link_bulk' not in d['results'] and d['config']['link_bulk'] is False else 1)" || fail "--no-link: link_bulk present"

finish
