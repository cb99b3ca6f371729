#!/usr/bin/env bash
# --channels=1|2: both complete with every page verified for several policies
# and 2 vCPUs (also with --install=continue and --pager=process), on loopback
# and on an emulated link; with 1 channel the source
# really serves everything on one connection (its own count of connections per
# channel, and the destination's per-connection bytes: demand replies arrive
# on the shared connection); a source killed and restarted mid-migration under
# --reconnect-timeout is survived with 1 channel too; --channels=1 with 2 MiB
# pages is refused with exit 64.
. "$(dirname "$0")/../lib/integ.sh"
. tests/lib/net.sh

# check FILE CHANNELS TAG: verified, accounting exact, transport shape per channel count
check() {
$CHECK channels.connections "$@" || exit 1
}

# --- several policies x both channel counts, 2 vCPUs, forked source -----------------------
for pol in demand sequential qemu pivot trend; do
	for ch in 1 2; do
		tag=$pol-$ch
		popt=()   # qemu: one channel is QEMU without postcopy-preempt, two are with it
		[ $pol = qemu ] && [ $ch = 2 ] && popt=(--policy-opt=preempt=on)
		"$P" --policy=$pol "${popt[@]}" --workload=random --vcpus=2 --mem=64M --duration=500ms --channels=$ch --trace=off \
			--json "$T/$tag.json" >"$T/$tag.out" 2>&1 || fail "$tag: exit $?: $(tail -3 "$T/$tag.out")"
		grep -q "transport   $ch channel" "$T/$tag.out" || fail "$tag: the summary does not name $ch channel(s)"
		check "$T/$tag.json" $ch $tag
	done
done
# the continue install path (page-cache claims by the receiver, demand installs by it)
"$P" --policy=sequential --workload=zipf --vcpus=2 --mem=64M --duration=500ms --channels=1 --install=continue --trace=off \
	--json "$T/cont.json" >"$T/cont.out" 2>&1 || fail "continue: exit $?: $(tail -3 "$T/cont.out")"
check "$T/cont.json" 1 continue-1

# the pager in its own process (--pager=process): the shared connection lives there
for ch in 1 2; do
	"$P" --pager=process --policy=pivot --workload=random --vcpus=2 --mem=64M --duration=500ms --channels=$ch --trace=off \
		--json "$T/proc-$ch.json" >"$T/proc-$ch.out" 2>&1 || fail "pager=process, $ch channel(s): exit $?: $(tail -3 "$T/proc-$ch.out")"
	check "$T/proc-$ch.json" $ch pager-process-$ch
done

# --- a saturating background pull: demand replies still arrive (and queue) on the shared connection
"$P" --policy=sequential --workload=random --mem=256M --duration=1s --channels=1 --batch=1024 --window=8 --trace=off \
	--json "$T/sat.json" >"$T/sat.out" 2>&1 || fail "saturating: exit $?: $(tail -3 "$T/sat.out")"
check "$T/sat.json" 1 saturating-1

# --- emulated link, both channel counts, against `pcbench source` (its connection counts) -----
for ch in 1 2; do
	tag=link-$ch
	start_source src-$tag "$P" source --listen=127.0.0.1:0 --mem=64M --seed=5
	"$P" dest --source=127.0.0.1:$SRC_PORT --policy=sequential --workload=random --vcpus=2 --duration=1s --channels=$ch \
		--link=1gbit,200us --trace=off --json "$T/$tag.json" >"$T/$tag.out" 2>&1 || fail "$tag: exit $?: $(tail -3 "$T/$tag.out")"
	wait $SRC_PID || fail "$tag: source exit $?"
	check "$T/$tag.json" $ch $tag
	line=$(grep "connections: demand" "$T/src-$tag.out") || fail "$tag: the source printed no connection counts"
	if [ $ch = 1 ]; then want="connections: demand 0, background 0, shared 1"; else want="connections: demand 1, background 1, shared 0"; fi
	case "$line" in *"$want"*) echo "OK $tag: source: ${line##*; }" ;; *) fail "$tag: source says '$line', want '$want'" ;; esac
done

# --- 1 channel: the source is killed mid-migration and restarted -------------------------
for pv in "sequential 1" "demand 2"; do
	set -- $pv
	tag=restart-$1-$2
	start_source src1-$tag "$P" source --listen=127.0.0.1:0 --mem=128M --seed=11
	PORT=$SRC_PORT
	"$P" dest -v --source=127.0.0.1:$PORT --policy=$1 --vcpus=$2 --workload=random --duration=2s --channels=1 \
		--link=300mbit,200us --reconnect-timeout=20s --io-timeout=1s --json "$T/$tag.json" >"$T/$tag.out" 2>&1 &
	D=$!
	# kill the source mid-migration: after the link is calibrated (no recovery before that;
	# calibration alone took over 1 s in an ASan build at load 9), then 0.5 s into the run
	for _ in $(seq 300); do grep -q 'link calibrated' "$T/$tag.out" && break; kill -0 $D 2>/dev/null || break; sleep 0.1; done
	grep -q 'link calibrated' "$T/$tag.out" || fail "$tag: no 'link calibrated' line within 30 s: $(tail -3 "$T/$tag.out")"
	sleep 0.5
	kill -0 $D 2>/dev/null || fail "$tag: destination ended before the source was killed: $(tail -3 "$T/$tag.out")"
	kill -9 $SRC_PID; wait $SRC_PID 2>/dev/null
	sleep 0.8
	start_source src2-$tag "$P" source --listen=127.0.0.1:$PORT --mem=128M --seed=11
	wait $D; rc=$?
	[ $rc -eq 0 ] || fail "$tag: destination exit $rc after the source was restarted: $(tail -5 "$T/$tag.out")"
	wait $SRC_PID || fail "$tag: restarted source exit $?"
	grep -q "connections: demand 0, background 0, shared 1" "$T/src2-$tag.out" ||
		fail "$tag: the restarted source did not see exactly one shared connection: $(tail -1 "$T/src2-$tag.out")"
	check "$T/$tag.json" 1 $tag
	$CHECK channels.shared_restart "$T/$tag.json" $tag || exit 1
done

# --- refused: 2 MiB pages on one connection ---------------------------------------------
"$P" --channels=1 --page-size=2M --mem=64M --duration=100ms >"$T/huge.out" 2>&1; rc=$?
[ $rc -eq 64 ] || fail "--channels=1 --page-size=2M: exit $rc (want 64): $(cat "$T/huge.out")"
[ "$(wc -l <"$T/huge.out")" -eq 1 ] && grep -q -- "--channels: '1'" "$T/huge.out" || fail "not one line naming --channels: $(cat "$T/huge.out")"
echo "OK refused: $(cat "$T/huge.out")"
echo "PASS"
