#!/usr/bin/env bash
# Policies at the source (--policy-end=source, source/push.c): the source runs
# the policy and pushes its stream, paced by the connection, not by a window
# of requests.  Checked live on loopback, every page verified:
#  - qemu (at the source by default, one channel without preempt) pushes and
#    records its end.  Behind a real bottleneck -- the run in its own network
#    namespace whose loopback is shaped by tbf to 500 Mbit/s, so the wire, not
#    the receiver, is the slowest part whatever the build -- the source's
#    socket holds at least the socket buffer asked for (--socket-buffer, 4 MiB)
#    at some point: more than a pull's window of batches (--window x --batch
#    pages) could ever queue, and a demand reply waits behind it for longer
#    than that window takes to drain.  (On unshaped loopback whether the
#    socket fills depends only on whether the source formats frames faster
#    than the receiver installs them -- 0.99 to 8.3 MB seen -- so it is
#    logged there, not asserted.);
#  - qemu preempt=on uses two channels; sequential pushed; qemu over an
#    emulated link (the source paces the stream); qemu pulled at the
#    destination (--policy-end=destination) records that end;
#  - qemu with --channels=2 but preempt=off, and --policy-end=sideways, are
#    refused with one line and exit 64;
#  - a network source (`pcbench source`) pushes qemu for `pcbench dest`, and
#    refuses to load a policy object its peer names.
. "$(dirname "$0")/../lib/integ.sh"

# check NAME END CHANNELS: verified, and where the policy ran
check() {
	$PCBJSON migration "$T/$1.json" || { fail "$1: result checks failed"; return 1; }
	$CHECK push.run "$T/$1.json" "$1" "$2" "$3" || { fail "$1: push checks failed"; return 1; }
}

# 1. qemu: pushed at the source over one channel (unshaped loopback: logged only)
pcb qemu1 120 run --policy=qemu --mem=256M --workload=random --duration=400ms --seed=3 --trace=off \
	--socket-buffer=4M --window=4 --batch=64 --json="$T/qemu1.json"
if [ "$RC" != 0 ]; then
	show qemu1
	fail "qemu one channel: exit $RC"
elif check qemu1 source 1; then
	log "qemu one channel, unshaped loopback: the source's socket held up to" \
		"$($PCBJSON get "$T/qemu1.json" results.policy.source_sendq_max_bytes) bytes"
fi

# 1b. the same behind a 500 Mbit/s bottleneck: the source's socket fills and demand replies queue behind it
NS=pcbt-push-$$
trap 'kill $(jobs -p) 2>/dev/null; ip netns del $NS 2>/dev/null; rm -rf "$T"' EXIT
if ! ip netns add $NS 2>"$T/ns.err"; then
	log "not checked (queue behind a bottleneck): cannot create a network namespace: $(cat "$T/ns.err")"
elif ! { ip -n $NS link set lo up && tc -n $NS qdisc add dev lo root tbf rate 500mbit burst 128kb latency 100ms; } 2>"$T/ns.err"; then
	fail "cannot shape the namespace's loopback with tbf: $(cat "$T/ns.err")"
else
	"$REAPER" -t 120 -r "$T/qemutbf.rep" -- ip netns exec $NS "$PCBENCH" run --policy=qemu --mem=64M \
		--workload=random --duration=400ms --seed=3 --trace=off --socket-buffer=4M --window=4 --batch=64 \
		--json="$T/qemutbf.json" >"$T/qemutbf.out" 2>"$T/qemutbf.err" </dev/null
	rep_parse qemutbf
	if [ "$RC" != 0 ]; then
		show qemutbf
		fail "qemu one channel behind tbf: exit $RC"
	elif check qemutbf source 1; then
		read -r q sb rt < <($PCBJSON get "$T/qemutbf.json" results.policy.source_sendq_max_bytes \
			results.policy.source_sndbuf_bytes results.pager.demand_round_trip.max_ns | tr '\n' ' ')
		pull=$((4 * 64 * 4096))               # the most a pull keeps in flight: --window x --batch pages
		drain=$((pull * 8 * 1000 / 500))      # ns to drain it at 500 Mbit/s (16.8 ms)
		log "qemu one channel behind 500 Mbit/s: the source's socket held up to $q bytes (SO_SNDBUF $sb;" \
			"asked 4194304; a pull's window: $pull); longest demand round trip $rt ns (a pull's window drains in $drain ns)"
		[ "$q" -ge 4194304 ] || fail "pushing behind a bottleneck, the source's socket never held the 4 MiB socket buffer (max $q bytes)"
		[ "$q" -gt "$pull" ] || fail "pushing queued no more than a pull's window ($q <= $pull bytes)"
		[ "$rt" -gt "$drain" ] || fail "no demand reply waited longer than a pull's window takes to drain ($rt <= $drain ns)"
	fi
fi

# 2. preempt: two channels; other policies at the source; qemu pulled at the destination
pcb qemu2 120 run --policy=qemu --policy-opt=preempt=on --mem=64M --workload=random --duration=300ms --trace=off \
	--json="$T/qemu2.json"
[ "$RC" = 0 ] && check qemu2 source 2 || { show qemu2; fail "qemu preempt=on: exit $RC"; }
pcb seqpush 120 run --policy=sequential --policy-end=source --channels=1 --mem=64M --workload=zipf --duration=300ms \
	--vcpus=2 --trace=off --json="$T/seqpush.json"
[ "$RC" = 0 ] && check seqpush source 1 || { show seqpush; fail "sequential pushed: exit $RC"; }
# on an emulated link the source paces the stream itself; its end arrives after the last page
pcb qemulink 120 run --policy=qemu --link=1gbit,200us --vcpus=2 --mem=64M --workload=random --duration=300ms \
	--trace=off --json="$T/qemulink.json"
[ "$RC" = 0 ] && check qemulink source 1 || { show qemulink; fail "qemu on an emulated link: exit $RC"; }
pcb qemudst 120 run --policy=qemu --policy-end=destination --mem=64M --workload=random --duration=300ms --trace=off \
	--json="$T/qemudst.json"
[ "$RC" = 0 ] && check qemudst destination 1 || { show qemudst; fail "qemu at the destination: exit $RC"; }

# 3. refused: preempt=off on two channels; an unknown end
pcb badch 30 run --policy=qemu --channels=2 --mem=16M --duration=100ms
[ "$RC" = 64 ] || { show badch; fail "qemu --channels=2 without preempt: exit $RC, want 64"; }
[ "$(wc -l <"$T/badch.err")" = 1 ] && grep -q "policy qemu .* uses 1 connection" "$T/badch.err" || { show badch; fail "qemu --channels=2: not one line naming the policy and its connections"; }
pcb badend 30 run --policy=qemu --policy-end=sideways --mem=16M --duration=100ms
[ "$RC" = 64 ] && grep -q "'sideways'" "$T/badend.err" || { show badend; fail "--policy-end=sideways: exit $RC, want 64 naming it"; }

# 4. a network source (`pcbench source`) pushes built-in policies, but does not
#    load a shared object or read a file named by its peer
"$PCBENCH" source --listen=127.0.0.1:0 --mem=64M --seed=5 --sessions=0 >"$T/src.out" 2>&1 &
SRC=$!
for _ in $(seq 100); do
	PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$T/src.out")
	[ -n "$PORT" ] && break
	sleep 0.05
done
if [ -z "${PORT:-}" ]; then
	fail "pcbench source did not start: $(cat "$T/src.out")"
else
	pcb netq 60 dest --source=127.0.0.1:$PORT --policy=qemu --workload=random --duration=300ms --trace=off \
		--json="$T/netq.json"
	[ "$RC" = 0 ] && check netq source 1 || { show netq; fail "qemu pushed by a network source: exit $RC"; }
	pcb netso 60 dest --source=127.0.0.1:$PORT --policy=./$BUILD/examples/ahead.so --policy-end=source \
		--workload=random --duration=300ms --trace=off
	[ "$RC" != 0 ] && grep -q "only built-in policies" "$T/netso.err" ||
		{ show netso; fail "a network source loaded a policy object named by its peer (exit $RC)"; }
fi
kill $SRC 2>/dev/null
wait $SRC 2>/dev/null
finish
