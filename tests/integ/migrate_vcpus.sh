#!/usr/bin/env bash
# Multi-vCPU migrations: --vcpus=2 for every policy (and 4 with zipf),
# per-vCPU blocktime and guest entries, faults attributed to vCPU threads.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

for p in $(migrating_policies); do
	for spec in 2:random 2:seq 4:zipf; do
		v=${spec%%:*} w=${spec#*:}
		name=$p-$w-v$v
		json=$T/$name.json
		pcb "$name" 120 $FAST --policy="$p" --workload="$w" --vcpus="$v" --mem=64M --duration=300ms --json="$json"
		expect_rc "$name" 0 || continue
		$PCBJSON migration "$json" || { fail "$name: result checks failed"; continue; }
		nv=$($PCBJSON get "$json" config.vcpus)
		[ "$nv" = "$v" ] || fail "$name: config.vcpus is $nv"
		$CHECK migrate.vcpus "$json" "$v" || fail "$name: per-vCPU checks failed"
		log "$name: ok"
	done
done

finish
