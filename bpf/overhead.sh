#!/usr/bin/env bash
# Overhead of pctrace on the fault path, measured on tests/helpers/uffd_victim
# with no injected delay (the shortest, most sensitive fault).
#
#   bpf/overhead.sh [-n PAGES] [-r ROUNDS] [-c CPU] [--usdt] [--modes "M ..."]
#                   [--no-rt] [--seed N] [--json FILE]
#
# Modes:
#   off      no tracer attached
#   hist     pctrace's default: user- and kernel-mode page faults, sched_switch,
#            the fault-message hook (syscalls:sys_exit_read, any process) and
#            the registration hooks (syscalls:*ioctl, munmap, mremap)
#   events   histograms + CSV event stream
#   usdt     (--usdt) histograms + the pcbench:* USDT probes the victim fires
# and, with --modes, any of:
#   wakeup   + the sched_wakeup hook (fault -> wake-up split)
#   heuristic  pctrace --heuristic: page fault + sched_switch only (a fault
#            counts when it blocks; what the default was before 2026-12-04)
#   resolve  + pctrace --resolve (the resolving-ioctl hook)
#   classic  classic tracepoints instead of tp_btf
#   null     the hooks of hist with programs that return at once
#            (pctrace --null-programs): the cost of attaching by itself
# A mode may name another pctrace build to compare with: MODE:PATH (e.g.
# "hist:/tmp/pctrace-before").
#
# One victim process touches its pages in chunks of PAGES faults; before each
# chunk exactly one tracer (or none) is attached: one pctrace per mode is
# loaded up front and switched with SIGUSR2 (attach) / SIGUSR1 (detach)
# between chunks, by a driver that blocks on the tools' output (no polling),
# so chunks follow each other within a millisecond or two.  Every traced
# chunk sits between two untraced ones (off A off B off A' ...; the order of
# the traced modes rotates every round), and its ratio is taken to the mean
# of those two neighbours: latency on this machine drifts between levels
# (11 vs 15 us per fault, for tens to hundreds of milliseconds), and the
# sandwich cancels whatever is slow against a chunk's length.  Handler and
# toucher are pinned to CPU (same CPU: the cheapest, most sensitive round
# trip) and, unless --no-rt, run SCHED_FIFO so that other work cannot
# preempt them mid-fault.
#
# Reported per mode: the median of the per-chunk median fault latencies and
# its ratio to off; the median of the ROUNDS sandwich ratios, their
# quartiles, and a 95 % bootstrap interval of that median (fixed --seed);
# for the tail, the median of the per-chunk p99 latencies and of their
# sandwich ratios.  The JSON has every per-chunk median and p99 in order, the placement, the load and
# the revision.  Needs root and a built tree (make pctrace
# build/tests/helpers/uffd_victim).
set -u
BUILD=${BUILD:-build}
VICTIM=$BUILD/tests/helpers/uffd_victim
PCTRACE=${PCTRACE:-./pctrace}
PAGES=2000 ROUNDS=41 CPU=0 USDT=0 JSON= EXTRA= RT=1 SEED=1
while [ $# -gt 0 ]; do
	case $1 in
	-n) PAGES=$2; shift 2 ;;
	-r) ROUNDS=$2; shift 2 ;;
	-c) CPU=$2; shift 2 ;;
	--usdt) USDT=1; shift ;;
	--modes) EXTRA=$2; shift 2 ;;
	--no-rt) RT=0; shift ;;
	--seed) SEED=$2; shift 2 ;;
	--json) JSON=$2; shift 2 ;;
	-h|--help) sed -n '2,41p' "$0"; exit 0 ;;
	*) echo "overhead.sh: unknown option $1" >&2; exit 64 ;;
	esac
done
case "$PAGES$ROUNDS$CPU$SEED" in *[!0-9]*|"") echo "overhead.sh: -n, -r, -c and --seed take numbers" >&2; exit 64 ;; esac
[ "$PAGES" -gt 0 ] && [ "$ROUNDS" -gt 0 ] || { echo "overhead.sh: -n and -r must be > 0" >&2; exit 64; }
[ -x "$VICTIM" ] && [ -x "$PCTRACE" ] || { echo "overhead.sh: build $VICTIM and $PCTRACE first" >&2; exit 69; }
command -v python3 >/dev/null || { echo "overhead.sh: python3 is needed" >&2; exit 69; }
SCHED=()
if [ "$RT" = 1 ]; then
	if chrt -f 10 true 2>/dev/null; then SCHED=(chrt -f 10); else echo "overhead.sh: chrt -f not permitted; default scheduling" >&2; fi
fi
placement="handler+toucher pinned to CPU $CPU, ${SCHED[*]:-SCHED_OTHER}"

modes="hist events"
[ "$USDT" = 1 ] && modes="$modes usdt"
[ -n "$EXTRA" ] && modes="$modes $EXTRA"
for m in $modes; do
	case $m in
	hist|events|usdt|heuristic|resolve|wakeup|classic|null) ;;
	hist:*|events:*|usdt:*|heuristic:*|resolve:*|wakeup:*|classic:*|null:*)
		[ -x "${m#*:}" ] || { echo "overhead.sh: $m: ${m#*:} is not an executable" >&2; exit 64; } ;;
	*) echo "overhead.sh: unknown mode $m" >&2; exit 64 ;;
	esac
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$VICTIM" "$PCTRACE" "$modes" "$PAGES" "$ROUNDS" "$CPU" "$placement" "$SEED" "$tmp" "${JSON:-}" "${SCHED[@]}" <<'PY'
import json, os, platform, random, select, signal, statistics, subprocess, sys, time
victim, pctrace, modes, pages, rounds, cpu, placement, seed, tmp, out = sys.argv[1:11]
sched = sys.argv[11:]
modes, pages, rounds, seed = modes.split(), int(pages), int(rounds), int(seed)
nm = len(modes)
# warm-up, then per round: off M off M ... (each traced chunk between two off chunks), final off
order = ["off"]
for r in range(rounds):
    for i in range(nm):
        order += ["off", modes[(i + r) % nm]]
order.append("off")
procs = []

def die(msg, code=70):
    print(f"overhead.sh: {msg}", file=sys.stderr)
    for p in procs:
        if p.poll() is None:
            p.kill()
    sys.exit(code)

class Lines:
    """Blocking line reader with a deadline, on a pipe."""
    def __init__(self, proc, stream, name):
        self.p, self.f, self.name, self.buf, self.seen = proc, stream, name, b"", []
    def until(self, word, timeout=20.0):
        end = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.decode(errors="replace")
                self.seen.append(line)
                if word in line:
                    return line
            left = end - time.monotonic()
            if left <= 0:
                die(f"{self.name}: no '{word}' within {timeout:.0f} s; last: {self.seen[-3:]}")
            r, _, _ = select.select([self.f], [], [], left)
            if r:
                d = os.read(self.f.fileno(), 65536)
                if not d:
                    st = self.p.wait()      # keep "unavailable" / "no permission" apart
                    die(f"{self.name} exited (status {st}); last: {self.seen[-3:]}", st if st in (69, 77) else 70)
                self.buf += d

fifo = os.path.join(tmp, "fifo")
os.mkfifo(fifo)
v = subprocess.Popen(sched + [victim, "-n", str(pages * len(order)), "-H", cpu, "-T", cpu,
                              "--chunks", str(len(order)), "--wait", fifo],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
procs.append(v)
vout = Lines(v, v.stdout, "victim")
vpid = int(vout.until("ready").split("pid=")[1])
wfd = os.open(fifo, os.O_WRONLY)
args = {"hist": ["--no-usdt"], "events": ["--no-usdt", "--events", os.path.join(tmp, "events.csv")],
        "usdt": [], "heuristic": ["--no-usdt", "--heuristic"], "resolve": ["--no-usdt", "--resolve"], "wakeup": ["--no-usdt", "--wakeup"],
        "classic": ["--no-usdt", "--classic"], "null": ["--no-usdt", "--null-programs"]}
tr = {}
for m in modes:
    base, _, binp = m.partition(":")
    p = subprocess.Popen([binp or pctrace, "-p", str(vpid), "-q", "-i", "0"] + args[base],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    procs.append(p)
    tr[m] = (p, Lines(p, p.stderr, f"pctrace ({m})"))
    tr[m][1].until("tracing pid")
    p.send_signal(signal.SIGUSR1)
    tr[m][1].until("paused")

load0 = open("/proc/loadavg").read().split()[:3]
vals, p99s = [], []
t0 = time.monotonic()
for k, m in enumerate(order):
    if m != "off":
        tr[m][0].send_signal(signal.SIGUSR2)
        tr[m][1].until("resumed")
    os.write(wfd, b"x")
    line = vout.until(f"chunk {k} ")
    vals.append(int(line.split("median_ns=")[1].split()[0]))
    p99s.append(int(line.split("p99_ns=")[1].split()[0]))
    if m != "off":
        tr[m][0].send_signal(signal.SIGUSR1)
        tr[m][1].until("paused")
elapsed = time.monotonic() - t0
load1 = open("/proc/loadavg").read().split()[:3]
os.close(wfd)
if v.wait() != 0:
    die(f"victim failed: {vout.seen[-2:]}")
for m in modes:
    tr[m][0].send_signal(signal.SIGINT)
    tr[m][0].wait()

def q(x, p):
    x = sorted(x); k = (len(x) - 1) * p; i = int(k)
    return x[i] + (x[min(i + 1, len(x) - 1)] - x[i]) * (k - i)
rng = random.Random(seed)
def boot_ci(x, n=2000):
    meds = sorted(statistics.median(rng.choice(x) for _ in x) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]

off = [vals[k] for k, m in enumerate(order) if m == "off" and k > 0]
base = statistics.median(off)
base99 = statistics.median(p99s[k] for k, m in enumerate(order) if m == "off" and k > 0)
print(f"one victim, {rounds} rounds x {nm} traced modes, each chunk of {pages} faults between two "
      f"untraced ones ({len(order)} chunks in {elapsed:.1f} s), {placement}; load {' '.join(load0)} -> {' '.join(load1)}")
print(f"{'mode':9s} {'median_ns':>10s} {'ratio':>7s} {'paired':>7s} {'p25':>6s} {'p75':>6s} {'95% CI of paired':>17s}"
      f" {'p99_ns':>8s} {'p99 paired':>10s}")
print(f"{'off':9s} {base:10.0f} {1:7.3f} {'':37s} {base99:8.0f}")
res = {"off": {"median_ns": base, "chunks_ns": off, "p99_median_ns": base99}}
for m in modes:
    ks = [k for k, mm in enumerate(order) if mm == m]
    mv = [vals[k] for k in ks]
    paired = [vals[k] / ((vals[k - 1] + vals[k + 1]) / 2) for k in ks]
    med = statistics.median(mv)
    pm = statistics.median(paired)
    lo, hi = boot_ci(paired)
    p99 = statistics.median(p99s[k] for k in ks)
    p99_paired = statistics.median(p99s[k] / ((p99s[k - 1] + p99s[k + 1]) / 2) for k in ks)
    res[m] = {"p99_median_ns": p99, "p99_paired_ratio_median": round(p99_paired, 4), "median_ns": med, "ratio": round(med / base, 4), "paired_ratio_median": round(pm, 4),
              "paired_ratio_p25": round(q(paired, 0.25), 4), "paired_ratio_p75": round(q(paired, 0.75), 4),
              "paired_ratio_ci95": [round(lo, 4), round(hi, 4)], "chunks_ns": mv,
              "added_ns_median": round(statistics.median(vals[k] - (vals[k - 1] + vals[k + 1]) / 2 for k in ks))}
    print(f"{m:9s} {med:10.0f} {med/base:7.3f} {pm:7.3f} {q(paired, .25):6.3f} {q(paired, .75):6.3f}"
          f"    {lo:.3f} - {hi:.3f} {p99:8.0f} {p99_paired:10.3f}")
if out:
    rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    json.dump({"tool": "bpf/overhead.sh", "git_revision": rev, "kernel": platform.release(),
               "pages_per_chunk": pages, "rounds": rounds, "placement": placement, "seed": seed,
               "design": "each traced chunk between two untraced ones; paired ratio = chunk / mean(neighbours)",
               "order": order, "chunk_medians_ns": vals, "chunk_p99_ns": p99s, "elapsed_s": round(elapsed, 2),
               "loadavg_before": load0, "loadavg_after": load1, "modes": res}, open(out, "w"), indent=1)
PY
