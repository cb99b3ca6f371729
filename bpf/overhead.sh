#!/usr/bin/env bash
# Overhead of pctrace on the fault path, measured on tests/helpers/uffd_victim
# with no injected delay (the shortest, most sensitive fault).
#
#   bpf/overhead.sh [-n PAGES] [-r ROUNDS] [-c CPU] [--usdt] [--json FILE]
#
# Modes, interleaved ROUNDS times: off (no tracer), hist (pctrace, histograms
# only), events (histograms + CSV event stream), and with --usdt also
# usdt (histograms + the pcbench:* USDT probes the victim fires).  For each
# mode the median of the per-run median fault latencies (as the victim
# thread sees it) is reported, with its ratio to off.
# Needs root and a built tree (make pctrace build/tests/helpers/uffd_victim).
set -u
BUILD=${BUILD:-build}
VICTIM=$BUILD/tests/helpers/uffd_victim
PCTRACE=${PCTRACE:-./pctrace}
PAGES=20000 ROUNDS=7 CPU=0 USDT=0 JSON= EXTRA=
while [ $# -gt 0 ]; do
	case $1 in
	-n) PAGES=$2; shift 2 ;;
	-r) ROUNDS=$2; shift 2 ;;
	-c) CPU=$2; shift 2 ;;
	--usdt) USDT=1; shift ;;
	--modes) EXTRA=$2; shift 2 ;;
	--json) JSON=$2; shift 2 ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "overhead.sh: unknown option $1" >&2; exit 64 ;;
	esac
done
[ -x "$VICTIM" ] && [ -x "$PCTRACE" ] || { echo "overhead.sh: build $VICTIM and $PCTRACE first" >&2; exit 69; }

tmp=$(mktemp -d)
ppid=
trap '[ -n "$ppid" ] && kill $ppid 2>/dev/null; rm -rf "$tmp"' EXIT

# one MODE -> prints the victim's median fault latency (ns)
one() {
	local mode=$1 fifo=$tmp/fifo args=()
	case $mode in
	off) "$VICTIM" -n "$PAGES" -H "$CPU" -T "$CPU" | sed -n 's/.* median_ns=\([0-9]*\).*/\1/p'; return ;;
	hist) args=(--no-usdt) ;;
	events) args=(--no-usdt --events "$tmp/events.csv") ;;
	usdt) args=() ;;
	msgs) args=(--no-usdt --messages) ;;
	wakeup) args=(--no-usdt --wakeup) ;;
	classic) args=(--no-usdt --classic) ;;
	*) echo "overhead.sh: unknown mode $mode" >&2; exit 64 ;;
	esac
	rm -f "$fifo"; mkfifo "$fifo"
	"$VICTIM" -n "$PAGES" -H "$CPU" -T "$CPU" --wait "$fifo" >"$tmp/victim.out" &
	local vpid=$!
	for _ in $(seq 100); do grep -q '^ready' "$tmp/victim.out" && break; sleep 0.02; done
	"$PCTRACE" -p "$vpid" -q -i 0 "${args[@]}" >/dev/null 2>"$tmp/pctrace.err" &
	ppid=$!
	for _ in $(seq 200); do grep -q 'tracing pid' "$tmp/pctrace.err" && break; sleep 0.02; done
	if ! grep -q 'tracing pid' "$tmp/pctrace.err"; then
		cat "$tmp/pctrace.err" >&2; kill "$vpid"; exit 69
	fi
	echo go >"$fifo"
	wait "$vpid"
	wait "$ppid"; ppid=
	sed -n 's/.* median_ns=\([0-9]*\).*/\1/p' "$tmp/victim.out"
}

modes="off hist events"
[ "$USDT" = 1 ] && modes="$modes usdt"
[ -n "$EXTRA" ] && modes="$modes $EXTRA"
for m in $modes; do : >"$tmp/$m.medians"; done
one off >/dev/null      # warm-up
for r in $(seq "$ROUNDS"); do
	for m in $modes; do one "$m" >>"$tmp/$m.medians"; done
done

median() { sort -n "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
base=$(median "$tmp/off.medians")
printf '%-7s %12s %8s   %s\n' mode median_ns ratio "per-run medians (ns)"
json="{\"pages\": $PAGES, \"rounds\": $ROUNDS, \"cpu\": $CPU"
for m in $modes; do
	med=$(median "$tmp/$m.medians")
	ratio=$(awk -v a="$med" -v b="$base" 'BEGIN {printf "%.3f", a / b}')
	printf '%-7s %12s %8s   %s\n' "$m" "$med" "$ratio" "$(tr '\n' ' ' <"$tmp/$m.medians")"
	json="$json, \"$m\": {\"median_ns\": $med, \"ratio\": $ratio}"
done
[ -n "$JSON" ] && echo "$json}" >"$JSON"
exit 0
