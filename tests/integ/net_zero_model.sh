#!/usr/bin/env bash
# The zero-page model crosses the handshake (docs/metrics.md, "Guest memory
# image"): a `pcbench dest` given no --zero-model builds the image the source
# announced in CONFIG and verifies every page; a --zero-model or
# --zero-run-max that contradicts the source is refused (exit 64, naming both).
# Before the model was in CONFIG, a runs source with a uniform destination
# ended with corrupt pages at verification.
. "$(dirname "$0")/../lib/integ.sh"
. tests/lib/net.sh
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT

check() {   # check NAME MODEL RUN_MAX: the dest's JSON says the model and every page verified
	$CHECK net.zero_model "$T/$1.json" "$2" "$3" || fail "$1: $(cat "$T/$1.out")"
}

for model in "runs --zero-run-max=64" "uniform"; do
	set -- $model
	start_source src-$1 "$P" source --listen=127.0.0.1:0 --mem=32M --seed=9 --zero-model=$1 ${2:-} --sessions=0
	"$P" dest --source=127.0.0.1:$SRC_PORT --policy=sequential --workload=random --duration=200ms \
		--json "$T/$1.json" >"$T/$1.out" 2>&1 || fail "$1 source, dest without --zero-model: exit $? $(cat "$T/$1.out")"
	check $1 $1 64
	if [ $1 = runs ]; then
		"$P" dest --source=127.0.0.1:$SRC_PORT --zero-model=uniform --duration=100ms >"$T/mm1.out" 2>&1
		rc=$?
		[ $rc -eq 64 ] && grep -q -- "--zero-model uniform but the source serves runs" "$T/mm1.out" ||
			fail "dest --zero-model=uniform against a runs source: exit $rc, $(cat "$T/mm1.out")"
		"$P" dest --source=127.0.0.1:$SRC_PORT --zero-run-max=1024 --duration=100ms >"$T/mm2.out" 2>&1
		rc=$?
		[ $rc -eq 64 ] && grep -q -- "--zero-run-max 1024 but the source serves 64" "$T/mm2.out" ||
			fail "dest --zero-run-max=1024 against a 64 source: exit $rc, $(cat "$T/mm2.out")"
	else
		"$P" dest --source=127.0.0.1:$SRC_PORT --zero-model=runs --duration=100ms >"$T/mm3.out" 2>&1
		rc=$?
		[ $rc -eq 64 ] && grep -q -- "--zero-model runs but the source serves uniform" "$T/mm3.out" ||
			fail "dest --zero-model=runs against a uniform source: exit $rc, $(cat "$T/mm3.out")"
	fi
	kill $SRC_PID; wait $SRC_PID 2>/dev/null
done
echo PASS
