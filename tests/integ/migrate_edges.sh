#!/usr/bin/env bash
# Migrations at the edges of the configuration space: one page, a region
# that ends inside a bitmap word, all/no zero pages, all writes/all reads,
# an exact operation count, extreme batch/window settings, the largest seed.
# Each must verify every page.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

n=0
# run NAME ARGS...: a migration that must succeed and verify; sets J to its JSON
run() {
	local name=$1
	shift
	J=$T/$name.json
	pcb "$name" 120 $FAST --json="$J" "$@"
	expect_rc "$name" 0 || return 1
	$PCBJSON migration "$J" || { fail "$name ($*): result checks failed"; return 1; }
	log "$name: ok"
}
field() { $PCBJSON get "$J" "$1"; }

for p in $(migrating_policies); do
	# a single page, touched by the guest or not
	run one-page-$p --policy="$p" --mem=4K --workload=seq --duration=50ms &&
		[ "$(field results.pages.total)" = 1 ] || fail "one-page-$p: total != 1"
	run one-page-random-$p --policy="$p" --mem=4K --workload=random --zero-pages=0 --duration=50ms
	# 65 pages: the last word of the page bitmaps has one valid bit
	run partial-word-$p --policy="$p" --mem=260K --workload=random --duration=100ms
	run partial-word-zipf-$p --policy="$p" --mem=252K --workload=zipf --vcpus=3 --duration=100ms
done

# no zero pages: everything arrives as data
if run no-zero --mem=16M --zero-pages=0 --workload=random --duration=200ms; then
	[ "$(field results.pages.zero)" = 0 ] || fail "no-zero: $(field results.pages.zero) zero pages with --zero-pages=0"
fi
# all zero pages: nothing arrives as data, every page is a UFFDIO_ZEROPAGE
if run all-zero --mem=16M --zero-pages=1 --workload=random --duration=200ms; then
	{ read -r z; read -r d; read -r b; read -r dr; } < <($PCBJSON get "$J" results.pages.zero \
		results.pages.demand results.pages.background results.pages.drain)
	[ "$z" = 4096 ] && [ "$d" = 0 ] && [ "$b" = 0 ] && [ "$dr" = 0 ] ||
		fail "all-zero: zero=$z demand=$d background=$b drain=$dr, want 4096/0/0/0"
fi
# every access a write (stamps checked at verify), every access a read (checked by the guest)
if run all-writes --mem=16M --write-ratio=1 --workload=random --duration=200ms; then
	{ read -r o; read -r w; } < <($PCBJSON get "$J" results.guest.ops results.guest.writes)
	[ "$o" = "$w" ] || fail "all-writes: $w writes of $o ops"
fi
if run all-reads --mem=16M --write-ratio=0 --workload=random --duration=200ms; then
	{ read -r o; read -r r; } < <($PCBJSON get "$J" results.guest.ops results.guest.reads)
	[ "$o" = "$r" ] || fail "all-reads: $r reads of $o ops"
fi
# --ops bounds the run exactly: each vCPU does exactly that many accesses
for p in $(migrating_policies); do
	if run exact-ops-$p --policy="$p" --mem=16M --duration=0 --ops=3000 --vcpus=2 --workload=random; then
		{ read -r o; read -r a; read -r b; } < <($PCBJSON get "$J" results.guest.ops \
			results.guest.vcpus.0.ops results.guest.vcpus.1.ops)
		[ "$o" = 6000 ] && [ "$a" = 3000 ] && [ "$b" = 3000 ] || fail "exact-ops-$p: ops $o ($a + $b), want 6000 (3000 + 3000)"
	fi
done
# demand replies still in flight when the last page arrives by the background channel
# (a slow source: 2 ms per demand reply) must not confuse the final verification
for p in $(migrating_policies); do
	n=3
	[ "$p" = demand ] && n=1   # every access waits 2 ms: slow, and no background race before the drain
	for i in $(seq $n); do
		run late-replies-$p-$i --policy="$p" --mem=16M --source-delay=2ms --vcpus=2 --workload=random \
			--duration=0 --ops=2000 || break
	done
done
# background pull in single pages, one batch in flight; and in the largest batches
run tiny-batches --policy=sequential --mem=16M --batch=1 --window=1 --workload=random --duration=200ms
run huge-batches --policy=sequential --mem=64M --batch=4096 --window=64 --workload=zipf --duration=200ms
# the largest seed, and a seed echoed back exactly
if run max-seed --mem=8M --seed=18446744073709551615 --duration=100ms; then
	[ "$(field config.seed)" = 18446744073709551615 ] || fail "max-seed: config.seed is $(field config.seed)"
fi
# the default size (256 MiB) once
run default-size --policy=sequential --workload=random --duration=300ms
# without --json: the human summary alone, and it says OK
pcb no-json 120 $FAST --mem=8M --duration=100ms
expect_rc no-json 0 && { grep -q ': OK$' "$T/no-json.out" || fail "no-json: summary does not end in OK"; }

finish
