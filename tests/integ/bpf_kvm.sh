#!/usr/bin/env bash
# pcbench --guest=kvm --trace=on: the vCPU threads' faults are kernel-side
# userfaultfd faults inside KVM_RUN (exceptions:page_fault_user never fires
# for them).  The kernel side opens them at kvm:kvm_page_fault or, where that
# does not fire (shadow paging; the nested PVM hypervisor here), at
# kvmmmu:kvm_mmu_pagetable_walk, and closes the ones that did not sleep at
# kvmmmu:kvm_mmu_spte_requested.  Checks, for demand/random on 1 vCPU and
# sequential/seq on 2:
#  - bpf.kvm is observable and its fault count (sleeps during which the
#    pager read a fault message of that vCPU) equals the pager's count of
#    userfaultfd messages; the only slack is an explained anomaly (a message
#    matched to no open fault, a missed switch-in, a program run the kernel
#    skipped), printed when non-zero;
#  - bpf_vs_guest compares the KVM histogram with the guest's own (rdtsc)
#    measurement: the kernel median is below the guest's (the guest also sees
#    the VM exit and entry: tens of µs on this nested hypervisor) and not
#    implausibly far below it.
. "$(dirname "$0")/../lib/integ.sh"
BUILD=${BUILD:-build}
[ -x ./pcbench ] || die "./pcbench not built"
command -v python3 >/dev/null || skip "python3 is needed to read the JSON"
[ "$(id -u)" = 0 ] || skip "--trace=on needs root (BPF)"
[ -e /dev/kvm ] || skip "/dev/kvm is absent (no KVM on this machine)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "no permission on /dev/kvm"
tmp=$T

fails=0
for c in "random 1 demand" "seq 2 sequential"; do
	set -- $c
	name=$1-$2
	./pcbench --guest=kvm --trace=on --mem=16M --workload=$1 --vcpus=$2 --policy=$3 --duration=300ms \
		--json "$tmp/$name.json" >"$tmp/$name.out" 2>&1
	rc=$?
	case $rc in
	0) ;;
	77) skip "BPF or KVM unavailable: $(tail -1 "$tmp/$name.out")" ;;
	*) cat "$tmp/$name.out"; die "pcbench --guest=kvm --workload=$1 --vcpus=$2 exited $rc" ;;
	esac
	python3 - "$tmp/$name.json" "$name" <<'PY' || fails=$((fails + 1))
import json, sys
r = json.load(open(sys.argv[1]))["results"]
name = sys.argv[2]
b, f = r["bpf"], r["faults"]
k, msg, anom = b["kvm"], b["messages"], b["anomalies"]
ok = True
def req(c, what):
    global ok
    print(("ok   " if c else "FAIL ") + name + ": " + what); ok &= bool(c)
req(b["enabled"] and msg["tracked"], "bpf enabled, fault messages tracked")
req(k["observable"], f"KVM faults observable (kvm_page_fault: {b['attach']['kvm_page_fault']}; "
    f"kvm_mmu: {b['attach']['kvm_mmu']})")
n, m = k["faults"], f["uffd_messages"]
slack = msg["unmatched"] + anom["lost"] + anom["program_runs_skipped"]
print(f"     kvm faults {n} (seen {k['faults_seen']}, resolved without sleeping {k['resolved_without_sleep']}, "
      f"slept without a message {k['slept_without_message']}), pager uffd messages {m}, slack {slack}")
if slack:
    print(f"     anomalies: unmatched messages {msg['unmatched']}, lost {anom['lost']}, "
          f"program runs skipped by the kernel {anom['program_runs_skipped']}")
# Unexplained shortfall: in about one run in four on this PVM kernel the kernel side counts
# 1-2 fewer KVM faults than the pager read messages (0.1-0.5 %), with every message matched
# to a vCPU fault and no anomaly counted (seen with the build of the session start too,
# then up to 3 %): tolerated up to max(2, 1 %) and printed, so a drift beyond it still fails.
unexplained = max(0, m - n - slack) if n <= m else n - m - slack
tol = max(2, m // 100)
if unexplained > 0:
    print(f"     unexplained: the kernel counted {m - n} fewer KVM faults than messages ({unexplained} beyond the "
          f"anomalies; tolerated up to {tol}; threads that exited inside a fault: {anom.get('exited_in_fault', 0)})")
# explained anomalies are bounded too: at most max(2, 2 %) of the messages (`lost` faults, whose
# switch-in this machine never reports, reached 1.06 % in one CI run with ~750 faults)
req(m > 0 and (n - m <= slack if n > m else unexplained <= tol) and slack <= max(2, m // 50),
    f"kvm faults {n} == pager uffd messages {m} (allowed +-{slack} explained anomalies, -{tol} unexplained)")
# a lost fault whose message was read is counted among the user faults (it has no KVM walk)
req(b["faults"] <= slack + tol, f"no user-mode faults counted for the vCPUs beyond the anomalies ({b['faults']})")
req(k["fault_to_running"]["count"] == n, "kvm fault_to_running holds every counted fault")
bg = r["bpf_vs_guest"]
req(bg["kernel_faults"] == n, f"bpf_vs_guest compares the KVM histogram ({bg['kernel_faults']} faults)")
if n >= 20 and f["latency"]["count"] >= 20:
    kb, ku = k["fault_to_running"]["p50_ns"], f["latency"]["p50_ns"]
    req(0.2 * ku <= kb <= 1.02 * ku, f"median fault->running {kb} ns vs guest-seen {ku} ns "
        f"(offset {bg.get('p50_offset_ns')} ns, p90 ratio after it {bg.get('p90_ratio_after_offset')})")
sys.exit(0 if ok else 1)
PY
done
[ "$fails" = 0 ] || die "$fails configuration(s) failed"
echo PASS
