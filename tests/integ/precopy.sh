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
$CHECK precopy.runs "$T" || fail "JSON checks"

# --precopy-final=resend: stop-and-copy of the dirty set, nothing left missing but what was never sent
"$P" $common --precopy=1s --precopy-final=resend --json "$T/pr.json" >"$T/pr.out" 2>&1 || fail "final resend: $(tail -2 "$T/pr.out")"
$CHECK precopy.final_resend "$T/pr.json" || fail "final resend JSON"

# the memory-to-memory transport
"$P" $common --precopy=500ms --precopy-transport=memory --json "$T/pm.json" >"$T/pm.out" 2>&1 || fail "memory transport: $(tail -2 "$T/pm.out")"
$CHECK precopy.memory_transport "$T/pm.json" || fail "memory transport JSON"

# fault injection: keep the stale copies of pages written at the source -> the check must fail the run
PCB_TEST_PRECOPY_STALE=1 "$P" --mem=64M --policy=sequential --workload=random --precopy=300ms --duration=30ms \
	--trace=off --json "$T/bad.json" >"$T/bad.out" 2>&1
rc=$?
[ $rc -eq 1 ] || fail "stale pre-copy pages not caught: exit $rc"
$CHECK precopy.stale_caught "$T/bad.json" || fail "stale pages not reported"

for bad in "--precopy=soon" "--precopy=1s --install=move" "--precopy=1s --policy=local" "--precopy=1s --guest=kvm"; do
	"$P" --mem=64M --trace=off $bad >/dev/null 2>"$T/e.err"; rc=$?
	[ $rc -eq 64 ] || fail "$bad: exit $rc, want 64 ($(cat "$T/e.err"))"
done
finish
