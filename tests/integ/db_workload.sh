#!/usr/bin/env bash
# Real application code as the guest: --workload=sqlite runs SQLite over a
# database image and heap in the migrated region.  Checks: the workload is
# listed; a migration over an emulated link completes with every page
# verified by the bytes it arrived with, SQLite's integrity_check "ok", every
# row's value the one its key and version give, and the versions summing to
# the updates the guest made (at the source too, with --precopy); after the
# same ops a migrated run's table equals a local run's (rows digest), another
# seed's differs; --channels=1, the install paths, the pager process, two
# vCPUs, pre-copy and two-host mode (pcbench source --workload=sqlite) verify too; a page served corrupt is caught even though
# the application overwrites pages; --guest=kvm, --record and bad knobs exit 64.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

"$PCBENCH" list | grep -q '^  sqlite ' || fail "pcbench list does not show the sqlite workload"

# check NAME [WANT_PAGES]: exit 0, every page verified as it arrived, the database check passed
check() {
	$CHECK db.run "$T/$1.json" "$1" || fail "$1: JSON checks"
}

common="--workload=sqlite --mem=64M $FAST"
# the check of the issue: sequential pre-paging over a 1 Gbit/s, 200 µs link
pcb link 120 $common --policy=sequential --link=1gbit,200us --duration=1s --json "$T/link.json"
expect_rc link 0 && check link

# the same ops give the same table, migrated or not; another seed another
for run in "local --policy=local" "mig --policy=demand" "mig2 --policy=sequential --channels=1"; do
	set -- $run
	pcb "$1" 120 $common "$2" ${3:-} --ops=3000 --duration=0 --json "$T/$1.json"
	expect_rc "$1" 0
done
pcb seed2 120 $common --policy=local --ops=3000 --duration=0 --seed=2 --json "$T/seed2.json"
expect_rc seed2 0
check mig
check mig2
dig() { $PCBJSON get "$T/$1.json" results.application.rows_digest; }
[ "$(dig local)" = "$(dig mig)" ] || fail "rows digest after 3000 ops: local $(dig local), migrated $(dig mig)"
[ "$(dig local)" = "$(dig mig2)" ] || fail "rows digest after 3000 ops: local $(dig local), one channel $(dig mig2)"
[ "$(dig local)" != "$(dig seed2)" ] || fail "seeds 1 and 2 give the same table"
[ "$($PCBJSON get "$T/local.json" results.application.integrity_check)" = ok ] || fail "local run: integrity_check"

# two-host mode: pcbench source builds the same image; the destination opens the database from the pages it receives
pcb_bg rsrc 120 source --workload=sqlite --mem=64M --listen=127.0.0.1:0 --sessions=1
for i in $(seq 300); do grep -q 'listening on' "$T/rsrc.out" && break; sleep 0.05; done
PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$T/rsrc.out")
if [ -n "$PORT" ]; then
	pcb rdest 120 dest --source=127.0.0.1:$PORT --workload=sqlite $FAST --policy=demand --ops=3000 --duration=0 \
		--json "$T/rdest.json"
	expect_rc rdest 0 && check rdest
	[ "$(dig local)" = "$(dig rdest)" ] || fail "rows digest after 3000 ops: local $(dig local), from a remote source $(dig rdest)"
	pcb_wait rsrc
	expect_rc rsrc 0
else
	fail "source --workload=sqlite did not start: $(cat "$T/rsrc.out" "$T/rsrc.err")"
fi

# install paths, pager process, two vCPUs on one serialized connection, pre-copy
i=0
for extra in "--install=continue --baseline=run" "--install=move" "--pager=process" "--vcpus=2 --workload-opt=scan=0.1" \
	"--precopy=300ms" "--precopy=300ms --precopy-final=resend"; do
	i=$((i + 1))
	pcb "v$i" 120 $common --policy=sequential --duration=500ms $extra --json "$T/v$i.json"
	if [ "$RC" = 69 ]; then log "v$i ($extra): unavailable here: $(head -n 1 "$T/v$i.err")"; continue; fi
	expect_rc "v$i" 0 && check "v$i"
	grep -q '^  database    SQLite' "$T/v$i.out" || fail "v$i: no database line"
done
grep -q '(local ' "$T/v1.out" || fail "--baseline=run: the progress line has no local rate"
pre=$($PCBJSON get "$T/v5.json" results.precopy.guest_writes_at_source 2>/dev/null)
[ "${pre:-0}" -gt 0 ] || fail "--precopy: the guest made no updates at the source ($pre)"

# a page served with a flipped byte (its digest the true one): caught, though SQLite writes pages freely
PCB_TEST_CORRUPT_PAGE=10 pcb corrupt 120 $common --policy=sequential --duration=300ms --json "$T/corrupt.json"
expect_rc corrupt 1
[ "$($PCBJSON get "$T/corrupt.json" results.verify.pages_corrupt)" = 1 ] || fail "corrupt page not counted"
[ "$($PCBJSON get "$T/corrupt.json" results.verify.first_bad_pages.0)" = 10 ] || fail "corrupt page not named"

# refused before anything starts
pcb kvm 30 $common --guest=kvm
expect_rc kvm 64 && { grep -q "guest" "$T/kvm.err" || fail "kvm: $(cat "$T/kvm.err")"; }
pcb rec 30 $common --record "$T/x.trc"
expect_rc rec 64 && { grep -q "record" "$T/rec.err" || fail "record: $(cat "$T/rec.err")"; }
pcb knob 30 $common --workload-opt=records=99999999
expect_rc knob 64 && { grep -q "records" "$T/knob.err" || fail "knob: $(cat "$T/knob.err")"; }
pcb small 30 --workload=sqlite --mem=4M
expect_rc small 64
pcb srcseq 30 source --workload=seq
expect_rc srcseq 64
finish
