#!/usr/bin/env bash
# Overhead of pctrace on the fault path, measured on tests/helpers/uffd_victim
# with no injected delay (the shortest, most sensitive fault).
#
#   bpf/overhead.sh [-n PAGES] [-r ROUNDS] [-c CPU] [--usdt] [--modes "M ..."]
#                   [--no-rt] [--json FILE]
#
# Modes:
#   off      no tracer attached
#   hist     pctrace, histograms only (its default: page fault + sched_switch)
#   events   histograms + CSV event stream
#   usdt     (--usdt) histograms + the pcbench:* USDT probes the victim fires
# and, with --modes, any of:
#   wakeup   + the sched_wakeup hook (fault -> wake-up split)
#   msgs     + the fault-message hook (--messages: syscalls:sys_exit_read)
#   classic  classic tracepoints instead of tp_btf
#
# One victim process touches ROUNDS x modes chunks of PAGES pages; before
# each chunk exactly one tracer (or none, for off) is attached: one pctrace
# per mode is loaded up front and switched with SIGUSR2 (attach) / SIGUSR1
# (detach) between chunks.  The order of the modes rotates every round.  So
# every mode is measured in the same process, the same memory, interleaved
# in time within a fraction of a second, which is what makes ratios of a few
# percent measurable on a loaded machine.  Handler and toucher are pinned to
# CPU (same CPU: the cheapest, most sensitive round trip) and, unless
# --no-rt, run SCHED_FIFO so that other work cannot preempt them mid-fault.
#
# Reported per mode: the median of the per-chunk median fault latencies and
# its ratio to off; the median of the per-round paired ratios (each chunk
# over the off chunk of the same round) with its quartiles, as the spread.
# The JSON has every per-chunk median, the placement, the load and the
# revision.  Needs root and a built tree (make pctrace
# build/tests/helpers/uffd_victim).
set -u
BUILD=${BUILD:-build}
VICTIM=$BUILD/tests/helpers/uffd_victim
PCTRACE=${PCTRACE:-./pctrace}
PAGES=5000 ROUNDS=15 CPU=0 USDT=0 JSON= EXTRA= RT=1
while [ $# -gt 0 ]; do
	case $1 in
	-n) PAGES=$2; shift 2 ;;
	-r) ROUNDS=$2; shift 2 ;;
	-c) CPU=$2; shift 2 ;;
	--usdt) USDT=1; shift ;;
	--modes) EXTRA=$2; shift 2 ;;
	--no-rt) RT=0; shift ;;
	--json) JSON=$2; shift 2 ;;
	-h|--help) sed -n '2,33p' "$0"; exit 0 ;;
	*) echo "overhead.sh: unknown option $1" >&2; exit 64 ;;
	esac
done
case "$PAGES$ROUNDS$CPU" in *[!0-9]*|"") echo "overhead.sh: -n, -r and -c take numbers" >&2; exit 64 ;; esac
[ "$PAGES" -gt 0 ] && [ "$ROUNDS" -gt 0 ] || { echo "overhead.sh: -n and -r must be > 0" >&2; exit 64; }
[ -x "$VICTIM" ] && [ -x "$PCTRACE" ] || { echo "overhead.sh: build $VICTIM and $PCTRACE first" >&2; exit 69; }
command -v python3 >/dev/null || { echo "overhead.sh: python3 is needed" >&2; exit 69; }
SCHED=()
if [ "$RT" = 1 ]; then
	if chrt -f 10 true 2>/dev/null; then SCHED=(chrt -f 10); else echo "overhead.sh: chrt -f not permitted; default scheduling" >&2; fi
fi
placement="handler+toucher pinned to CPU $CPU, ${SCHED[*]:-SCHED_OTHER}"

modes="off hist events"
[ "$USDT" = 1 ] && modes="$modes usdt"
[ -n "$EXTRA" ] && modes="$modes $EXTRA"
read -r -a marr <<<"$modes"
nm=${#marr[@]}
chunks=$((ROUNDS * nm + 1))             # + one warm-up chunk

tmp=$(mktemp -d)
declare -A pid
vpid=
cleanup() {
	for m in "${!pid[@]}"; do kill "${pid[$m]}" 2>/dev/null; done
	[ -n "$vpid" ] && kill "$vpid" 2>/dev/null
	exec 3>&- 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
die() { echo "overhead.sh: $*" >&2; exit 70; }

# wait_lines FILE PATTERN N: until FILE has N lines matching PATTERN (10 s)
wait_lines() {
	for _ in $(seq 2000); do
		[ "$(grep -c -- "$2" "$1" 2>/dev/null || true)" -ge "$3" ] 2>/dev/null && return 0
		sleep 0.005
	done
	return 1
}

mkfifo "$tmp/fifo"
"${SCHED[@]}" "$VICTIM" -n $((PAGES * chunks)) -H "$CPU" -T "$CPU" --chunks "$chunks" --wait "$tmp/fifo" \
	>"$tmp/victim.out" 2>&1 &
vpid=$!
wait_lines "$tmp/victim.out" '^ready' 1 || die "victim did not start: $(cat "$tmp/victim.out")"
exec 3>"$tmp/fifo"

declare -A npause nresume
for m in "${marr[@]}"; do
	args=()
	case $m in
	off) continue ;;
	hist) args=(--no-usdt) ;;
	events) args=(--no-usdt --events "$tmp/events.csv") ;;
	usdt) args=() ;;
	msgs) args=(--no-usdt --messages) ;;
	wakeup) args=(--no-usdt --wakeup) ;;
	classic) args=(--no-usdt --classic) ;;
	*) echo "overhead.sh: unknown mode $m" >&2; exit 64 ;;
	esac
	"$PCTRACE" -p "$vpid" -q -i 0 "${args[@]}" >/dev/null 2>"$tmp/$m.err" &
	pid[$m]=$!
	wait_lines "$tmp/$m.err" 'tracing pid' 1 || { cat "$tmp/$m.err" >&2; exit 69; }
	kill -USR1 "${pid[$m]}"
	npause[$m]=1 nresume[$m]=0
	wait_lines "$tmp/$m.err" 'paused' 1 || die "pctrace ($m) did not pause"
done

load0=$(cut -d' ' -f1-3 /proc/loadavg)
k=0
run_chunk() {   # MODE ROUND
	local m=$1
	if [ "$m" != off ]; then
		kill -USR2 "${pid[$m]}"
		nresume[$m]=$((nresume[$m] + 1))
		wait_lines "$tmp/$m.err" 'resumed' "${nresume[$m]}" || die "pctrace ($m) did not resume: $(tail -2 "$tmp/$m.err")"
	fi
	printf x >&3
	wait_lines "$tmp/victim.out" '^chunk ' $((k + 1)) || die "victim stalled"
	echo "$2 $m $(sed -n "s/^chunk $k median_ns=\([0-9]*\)/\1/p" "$tmp/victim.out")" >>"$tmp/runs"
	k=$((k + 1))
	if [ "$m" != off ]; then
		kill -USR1 "${pid[$m]}"
		npause[$m]=$((npause[$m] + 1))
		wait_lines "$tmp/$m.err" 'paused' "${npause[$m]}" || die "pctrace ($m) did not pause"
	fi
}
: >"$tmp/runs"
run_chunk off 0         # warm-up
for r in $(seq "$ROUNDS"); do
	for i in $(seq 0 $((nm - 1))); do
		run_chunk "${marr[$(((i + r) % nm))]}" "$r"
	done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
exec 3>&-
wait "$vpid" || die "victim failed: $(tail -2 "$tmp/victim.out")"
vpid=

python3 - "$tmp/runs" "$modes" "$PAGES" "$ROUNDS" "$placement" "$load0" "$load1" "${JSON:-}" <<'PY'
import json, statistics, subprocess, sys, platform
runs, modes, pages, rounds, placement, load0, load1, out = sys.argv[1:9]
modes = modes.split()
by = {}
for line in open(runs):
    r, m, v = line.split()
    if r != "0":
        by.setdefault(m, {})[int(r)] = int(v)
def q(v, p):
    v = sorted(v); k = (len(v) - 1) * p; i = int(k)
    return v[i] + (v[min(i + 1, len(v) - 1)] - v[i]) * (k - i)
base = statistics.median(by["off"].values())
print(f"one victim, {rounds} rounds x {len(modes)} modes, {pages} faults per chunk, {placement}; "
      f"load {load0} -> {load1}")
print(f"{'mode':8s} {'median_ns':>10s} {'ratio':>7s} {'paired':>7s} {'p25':>6s} {'p75':>6s}   per-chunk medians (ns)")
res = {}
for m in modes:
    vals = by[m]
    med = statistics.median(vals.values())
    paired = [vals[r] / by["off"][r] for r in vals if r in by["off"]]
    res[m] = {"median_ns": med, "ratio": round(med / base, 4),
              "paired_ratio_median": round(statistics.median(paired), 4),
              "paired_ratio_p25": round(q(paired, 0.25), 4), "paired_ratio_p75": round(q(paired, 0.75), 4),
              "chunks_ns": [vals[r] for r in sorted(vals)]}
    print(f"{m:8s} {med:10.0f} {med/base:7.3f} {res[m]['paired_ratio_median']:7.3f} "
          f"{res[m]['paired_ratio_p25']:6.3f} {res[m]['paired_ratio_p75']:6.3f}   "
          + " ".join(str(vals[r]) for r in sorted(vals)))
if out:
    rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    json.dump({"tool": "bpf/overhead.sh", "git_revision": rev, "kernel": platform.release(),
               "pages_per_chunk": int(pages), "rounds": int(rounds), "placement": placement,
               "loadavg_before": load0, "loadavg_after": load1, "modes": res}, open(out, "w"), indent=1)
PY
