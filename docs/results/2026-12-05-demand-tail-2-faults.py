#!/usr/bin/env python3
"""Per-fault analysis of `pcbench floor`'s same-CPU demand rows
(docs/results/2026-12-05-demand-tail-2.md).  Not part of pcbench.

Input: the files an instrumented floor writes with XP_LAT=DIR
(2026-12-05-demand-tail-2-floor.patch): DIR/rNN_same_VARIANT.bin, one line per
fault, "start_ns latency_ns" (CLOCK_MONOTONIC).

  faults.py pooled DIR...        pooled p50/p90/p99/p99.9, faults above 45 and 60 us
  faults.py episodes DIR         slow faults (> 45 us) less than 1 ms apart
  faults.py align TRACE DIR      interrupts inside each fault's window; TRACE is
      perf script -F comm,tid,pid,time,event,trace of a
      perf record -k CLOCK_MONOTONIC -C 0 -e irq_vectors:local_timer_entry ... run
DIR may hold run subdirectories (DIR/1/, DIR/2/, ...)."""
import bisect, collections, glob, os, re, sys

VARIANTS = ('bare_tcp', 'pcbench_tcp', 'pcbench_process_tcp')
SLOW = 45000


def rows(d, v):
    files = glob.glob(os.path.join(d, '*_' + v + '.bin')) + glob.glob(os.path.join(d, '*', '*_' + v + '.bin'))
    for f in sorted(files):
        yield [tuple(map(int, x.split())) for x in open(f)]


def pooled(dirs):
    for d in dirs:
        for v in VARIANTS:
            lat = sorted(l for r in rows(d, v) for _, l in r)
            n = len(lat)
            if not n:
                continue
            q = lambda p: lat[min(n - 1, int(p * n))] / 1000
            print(f"{d} {v:20s} n {n} p50 {q(.5):.1f} p90 {q(.9):.1f} p99 {q(.99):.1f} p99.9 {q(.999):.1f} us; "
                  f">45 us {1000 * sum(x > 45000 for x in lat) / n:.2f}/1000, >60 us {1000 * sum(x > 60000 for x in lat) / n:.2f}/1000")


def episodes(d):
    for v in VARIANTS:
        n = eps = 0
        dur = 0
        sizes = collections.Counter()
        after = collections.defaultdict(list)
        excess = []
        for r in rows(d, v):
            r = r[1:]   # the row's first fault is slow in every variant
            if not r:
                continue
            med = sorted(l for _, l in r)[len(r) // 2]
            dur += r[-1][0] - r[0][0]
            n += len(r)
            last, size = None, 0
            for i, (t0, lat) in enumerate(r):
                if lat <= SLOW:
                    continue
                if last is None or t0 - last > 1e6:
                    if size:
                        sizes[min(size, 10)] += 1
                    eps, size = eps + 1, 0
                    for k in range(8):
                        if i + k < len(r):
                            after[k].append(r[i + k][1] / 1000)
                    excess.append(sum(l - med for t, l in r[i:] if t - t0 < 1e6) / 1000)
                size, last = size + 1, t0
            if size:
                sizes[min(size, 10)] += 1
        if not n:
            continue
        print(f"{v:20s} {n} faults, {eps} episodes in {dur / 1e9:.2f} s ({eps / (dur / 1e9):.0f}/s); sizes "
              f"{dict(sorted(sizes.items()))}; mean excess in the 1 ms from an episode's start {sum(excess) / len(excess):.1f} us")
        print("    mean latency (us) of the k-th fault from an episode's first:",
              ' '.join(f"{k}:{sum(a) / len(a):.1f}" for k, a in sorted(after.items())))


def align(trace, d):
    line = re.compile(r'^\s*(.*?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s+(.*)$')
    ev = []
    for l in open(trace):
        m = line.match(l)
        if not m:
            continue
        e, tr = m.group(5).split(':')[1], m.group(6)
        if e == 'hrtimer_expire_entry':
            e = 'hrtimer:' + tr.split('function=')[1].split()[0]
        elif e == 'softirq_entry':
            e = 'softirq:' + tr.split('action=')[1].rstrip(']')
        elif e == 'irq_handler_entry':
            e = 'irq:' + tr.split('name=')[1]
        ev.append((int(round(float(m.group(4)) * 1e9)), e))
    ev.sort()
    ts = [t for t, _ in ev]
    for v in VARIANTS:
        n = dur = 0
        has = collections.Counter()
        lat_by = collections.defaultdict(list)
        for r in rows(d, v):
            r = r[1:]
            dur += r[-1][0] + r[-1][1] - r[0][0]
            for t0, lat in r:
                n += 1
                kinds = {e for _, e in ev[bisect.bisect_left(ts, t0):bisect.bisect_right(ts, t0 + lat)]}
                has.update(kinds)
                lat_by['timer interrupt' if 'local_timer_entry' in kinds else 'no timer interrupt'].append(lat)
        if not n:
            continue
        print(f"== {v}: {n} faults in {dur / 1e9:.3f} s")
        print("   faults containing (per 1000 faults, per s):",
              ', '.join(f"{k} {1000 * c / n:.2f} {c / (dur / 1e9):.0f}/s" for k, c in has.most_common(10)))
        for k, l in lat_by.items():
            l.sort()
            print(f"   {k}: {1000 * len(l) / n:.2f}/1000, p50 {l[len(l) // 2] / 1000:.1f} p90 {l[9 * len(l) // 10] / 1000:.1f} us, "
                  f"slow {sum(x > SLOW for x in l)}")


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == 'pooled':
        pooled(sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == 'episodes':
        episodes(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == 'align':
        align(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
