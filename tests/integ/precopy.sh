#!/usr/bin/env bash
# --precopy: the guest runs at the source first while pages are pre-copied,
# its writes tracked with userfaultfd WP_ASYNC + PAGEMAP_SCAN and re-sent;
# pages written since their last copy are dropped at switch-over and fetched
# by post-copy.  Checks: on the same seed pre-copy cuts demand faults; every
# page the guest wrote (at the source or the destination) arrives correct;
# the page accounting adds up; a pre-copy that keeps stale copies (fault
# injection) is caught by the integrity check; bad combinations exit 64.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH

common="--mem=64M --policy=demand --workload=random --write-ratio=0.05 --seed=7 --duration=500ms --trace=off"
"$P" $common --precopy=0 --json "$T/p0.json" >"$T/p0.out" 2>&1 || fail "precopy=0: $(tail -2 "$T/p0.out")"
"$P" $common --precopy=1s --json "$T/p1.json" >"$T/p1.out" 2>&1 || fail "precopy=1s: $(tail -2 "$T/p1.out")"
if grep -q "WP_ASYNC\|PAGEMAP_SCAN" "$T/p1.out"; then
	skip "$(grep -m1 'WP_ASYNC\|PAGEMAP_SCAN' "$T/p1.out")"
fi
cat "$T/p1.out"
# the first full round must fit in the pre-copy; ASan+UBSan (make test SANITIZE=1) run it several times slower
PC2=500ms; [ "${BUILD:-build}" = build-san ] && PC2=2s
"$P" --mem=64M --policy=sequential --workload=zipf --vcpus=2 --write-ratio=0.5 --precopy=$PC2 --duration=500ms \
	--trace=off --json "$T/p2.json" >"$T/p2.out" 2>&1 || fail "zipf 2 vCPUs write-heavy: $(tail -2 "$T/p2.out")"
python3 - "$T" <<'PY' || fail "JSON checks"
import json, sys
T = sys.argv[1]
def load(n): return json.load(open("%s/%s.json" % (T, n)))
p0, p1, p2 = load("p0"), load("p1"), load("p2")
for name, d in (("p0", p0), ("p1", p1), ("p2", p2)):
    r = d["results"]; v = r["verify"]
    assert d["exit_code"] == 0 and v["done"] and v["pages_verified"] == 16384, (name, v)
    assert not v["pages_corrupt"] and not v["pages_missing"] and not v["bad_write_stamps"], (name, v)
    assert r["guest"]["read_mismatches"] == 0, name
assert "precopy" not in p0["results"]
for name, d in (("p1", p1), ("p2", p2)):
    r = d["results"]; pc = r["precopy"]; pg = r["pages"]
    # a loaded machine may not finish the first pass: what was not sent is missing
    assert pc["pages_sent"] + pc["never_sent"] == 16384, (name, pc)
    assert pc["guest_writes_at_source"] > 500, (name, pc)      # the guest wrote while at the source
    assert pc["rounds"] >= 1 and (pc["never_sent"] > 0 or pc["rounds"] > 1), (name, pc)
    assert pc["stale_pages"] == 0 and r["verify"]["precopy_stale_pages"] == 0
    assert pc["missing_at_switchover"] == pc["dirty_at_switchover"] + pc["never_sent"]
    # over TCP: at least the data pages (a quarter of the image is zero pages, sent as 24-byte frames)
    assert pc["transfer"].startswith("tcp") and pc["bytes_received"] >= 0.5 * 4096 * pc["pages_sent"], (name, pc)
    assert pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] == pc["missing_at_switchover"], (name, pg, pc)
    assert pg["precopy"] + pc["missing_at_switchover"] == pg["total"]
f0 = p0["results"]["faults"]["count"]; f1 = p1["results"]["faults"]["count"]
print("same seed: %d demand faults without pre-copy, %d with 1 s of pre-copy (%d pages dirty at switch-over)" % (
    f0, f1, p1["results"]["precopy"]["dirty_at_switchover"]))
assert f1 < f0, (f0, f1)
PY

# --precopy-final=resend: stop-and-copy of the dirty set, nothing left missing but what was never sent
"$P" $common --precopy=1s --precopy-final=resend --json "$T/pr.json" >"$T/pr.out" 2>&1 || fail "final resend: $(tail -2 "$T/pr.out")"
python3 -c "
import json; r=json.load(open('$T/pr.json'))['results']; pc=r['precopy']; v=r['verify']; pg=r['pages']
assert pc['final'] == 'resend' and pc['missing_at_switchover'] == pc['never_sent'], pc
assert pg['demand'] + pg['background'] + pg['drain'] + pg['zero'] == pc['never_sent'], (pg, pc)
assert pc['never_sent'] > 0 or r['faults']['count'] == 0, r['faults']
assert v['pages_verified'] == 16384 and not v['pages_corrupt'] and not v['pages_missing'] and pc['stale_pages'] == 0, v
print('final resend: %d dirty pages re-sent with the vCPUs stopped in %.2f ms; %d faults' % (pc['dirty_at_switchover'], pc['final_ns'] / 1e6, r['faults']['count']))" || fail "final resend JSON"

# the memory-to-memory transport
"$P" $common --precopy=500ms --precopy-transport=memory --json "$T/pm.json" >"$T/pm.out" 2>&1 || fail "memory transport: $(tail -2 "$T/pm.out")"
python3 -c "
import json; r=json.load(open('$T/pm.json'))['results']; pc=r['precopy']; v=r['verify']
assert pc['transfer'].startswith('memory') and pc['bytes_received'] == 0, pc
assert v['pages_verified'] == 16384 and not v['pages_corrupt'] and not v['pages_missing'], v" || fail "memory transport JSON"

# fault injection: keep the stale copies of pages written at the source -> the check must fail the run
PCB_TEST_PRECOPY_STALE=1 "$P" --mem=64M --policy=sequential --workload=random --precopy=300ms --duration=30ms \
	--trace=off --json "$T/bad.json" >"$T/bad.out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "stale pre-copy pages not caught: exit $rc"
python3 -c "
import json,sys; d=json.load(open('$T/bad.json'))
s=d['results']['precopy']['stale_pages']; assert s > 0 and d['results']['verify']['pages_corrupt'] >= s, d['results']['verify']
print('fault injection: %d stale pages caught' % s)" || fail "stale pages not reported"

for bad in "--precopy=soon" "--precopy=1s --install=move" "--precopy=1s --policy=local" "--precopy=1s --guest=kvm"; do
	"$P" --mem=64M --trace=off $bad >/dev/null 2>"$T/e.err"; rc=$?
	[ $rc -eq 64 ] || fail "$bad: exit $rc, want 64 ($(cat "$T/e.err"))"
done
finish
