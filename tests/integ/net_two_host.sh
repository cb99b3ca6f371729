#!/usr/bin/env bash
# Two hosts: source and destination in two network namespaces joined by a veth
# pair (private test addresses 10.200.N.0/24 that exist only inside those
# namespaces; created and removed here).  Checks: an authenticated migration
# with an emulated link completes with every page verified; a wrong key is
# refused (exit 77) and the source keeps serving; the link is cut with
# `ip link set down` in the middle of a migration and restored: the
# destination pauses, reconnects and completes with zero corrupt/missing.
. "$(dirname "$0")/../lib/integ.sh"
N=$(( ($$ % 200) + 20 ))
NS_S=pcbt-src-$$ NS_D=pcbt-dst-$$ VS=pcbs$$ VD=pcbd$$
A_S=10.200.$N.1 A_D=10.200.$N.2
cleanup() {
	kill $(jobs -p) 2>/dev/null
	ip netns del $NS_S 2>/dev/null
	ip netns del $NS_D 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
. tests/lib/net.sh
P=$(readlink -f "$P")

if ! ip netns add $NS_S 2>"$T/err"; then
	skip "cannot create a network namespace: $(cat "$T/err")"
fi
ip netns add $NS_D || fail "ip netns add $NS_D"
ip link add $VS type veth peer name $VD || fail "cannot create a veth pair"
ip link set $VS netns $NS_S && ip link set $VD netns $NS_D || fail "cannot move veth ends"
ip -n $NS_S addr add $A_S/24 dev $VS && ip -n $NS_D addr add $A_D/24 dev $VD || fail "ip addr"
for ns in $NS_S $NS_D; do ip -n $ns link set lo up; done
ip -n $NS_S link set $VS up && ip -n $NS_D link set $VD up || fail "link up"

head -c 32 /dev/urandom >"$T/key"; head -c 32 /dev/urandom >"$T/wrong"; chmod 600 "$T/key" "$T/wrong"
SX="ip netns exec $NS_S" DX="ip netns exec $NS_D"

# --- authenticated migration over the veth with an emulated link ---------------------------
start_source src1 $SX "$P" source --listen=$A_S:7600 --mem=64M --seed=3 --auth-key-file="$T/key" --sessions=0
$DX "$P" dest --source=$A_S:7600 --auth-key-file="$T/wrong" --duration=200ms >"$T/wrong.out" 2>&1
rc=$?
cat "$T/wrong.out"
[ $rc -eq 77 ] || fail "wrong key: exit $rc (want 77)"
grep -q "authentication failed" "$T/wrong.out" || fail "wrong key: no clear error"
$DX "$P" dest --source=$A_S:7600 --duration=200ms >"$T/nokey.out" 2>&1
rc=$?
[ $rc -eq 77 ] || fail "no key: exit $rc (want 77)"
grep -q -- "--auth-key-file" "$T/nokey.out" || fail "no key: no clear error: $(cat "$T/nokey.out")"
$DX "$P" dest --source=$A_S:7600 --auth-key-file="$T/key" --policy=sequential --workload=random \
	--duration=1s --link=1gbit,200us --json "$T/ok.json" >"$T/ok.out" 2>&1
rc=$?
cat "$T/ok.out"
[ $rc -eq 0 ] || fail "authenticated two-namespace migration: exit $rc"
kill $SRC_PID; wait $SRC_PID 2>/dev/null
grep -q "handshake refused: authentication failed" "$T/src1.out" || fail "the source did not log the refused key"
$CHECK net.two_host "$T/ok.json" "$A_S" || exit 1
if [ -e "$T/ok.json.slow" ]; then
	grep -qE "exceeds the --link RTT|more than 5% off the --link" "$T/ok.out" ||
		{ echo "FAIL: the host round trip exceeded the link RTT but pcbench did not warn"; exit 1; }
fi

# --- cut the link mid-run ---------------------------------------------------------------------
start_source src2 $SX "$P" source --listen=$A_S:7601 --mem=128M --seed=4 --auth-key-file="$T/key"
$DX "$P" dest --source=$A_S:7601 --auth-key-file="$T/key" --policy=sequential --workload=random \
	--duration=2s --link=300mbit,100us --reconnect-timeout=30s --io-timeout=500ms --json "$T/cut.json" >"$T/cut.out" 2>&1 &
D=$!
sleep 1.0
kill -0 $D 2>/dev/null || fail "destination ended before the link was cut: $(tail -3 "$T/cut.out")"
ip -n $NS_D link set $VD down || fail "ip link set down"
sleep 1.5
ip -n $NS_D link set $VD up || fail "ip link set up"
wait $D; rc=$?
cat "$T/cut.out"
[ $rc -eq 0 ] || fail "link cut and restored: exit $rc"
wait $SRC_PID
$CHECK net.link_cut "$T/cut.json" || exit 1
# --- a real bottleneck: tbf on the source's veth; the achieved figure must see it -------------
# (pcbench's own bucket is set far above it, so only the kernel's shaper limits the rate)
ip netns exec $NS_S tc qdisc add dev $VS root tbf rate 200mbit burst 64kb latency 50ms ||
	fail "tc qdisc add tbf"
start_source src3 $SX "$P" source --listen=$A_S:7602 --mem=32M --seed=5 --auth-key-file="$T/key"
$DX "$P" dest --source=$A_S:7602 --auth-key-file="$T/key" --duration=200ms --link=5gbit,100us \
	--json "$T/tbf.json" >"$T/tbf.out" 2>&1 || fail "migration through tbf: $(tail -3 "$T/tbf.out")"
wait $SRC_PID
$CHECK net.tbf_rate "$T/tbf.json" || exit 1
echo PASS
