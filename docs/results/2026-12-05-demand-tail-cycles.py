#!/usr/bin/env python3
"""Fault cycles of `pcbench floor`'s same-CPU demand rows from a scheduler trace
(docs/results/2026-12-05-demand-tail.md).

  perf record -e sched:sched_switch -e sched:sched_waking -a -o t.data -- pcbench floor --no-bulk --no-link --no-kvm ...
  perf script -i t.data -F comm,tid,pid,cpu,time,event,trace > t.txt
  python3 2026-12-05-demand-tail-cycles.py t.txt [SLOW_SECONDS=45e-6]

A row is the life of one server process (pcbench-source, or the floor's bare
server pcbench-floorsr(v)); its handler is the task that wakes servers most,
its faulting thread the task the handler wakes most.  A cycle runs from the
faulting thread's switch-out to its next switch-in on CPU 0; the run time of
every task on CPU 0 inside it is added up by class.  Rows with fewer than 500
cycles (the cross-CPU rows, whose handler runs on CPU 1) are left out."""
import collections, re, sys

LINE = re.compile(r'^\s*(.*?)\s+(?:(\d+)/)?(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)$')
SWITCH = re.compile(r'prev_comm=(.*?) prev_pid=(\d+) prev_prio=\d+ prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)')
WAKE = re.compile(r'comm=(.*?) pid=(\d+) ')
SERVERS = ('pcbench-source', 'pcbench-floorsr')

def load(path):
    ev, tgid, comm = [], {}, {}
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        _, pid, tid, cpu, t, e, tr = m.groups()
        if pid:
            tgid[int(tid)] = int(pid)
        if int(cpu) != 0:
            continue
        ev.append((float(t), int(tid), e, tr))
        if e == 'sched:sched_switch':
            s = SWITCH.match(tr)
            for c, p in ((s.group(1), int(s.group(2))), (s.group(4), int(s.group(5)))):
                if c != 'pcbench' or p not in comm:
                    comm.setdefault(p, c)
    return ev, tgid, comm

def main():
    ev, tgid, comm = load(sys.argv[1])
    slow_at = float(sys.argv[2]) if len(sys.argv) > 2 else 45e-6
    spans = {}
    for t, tid, e, tr in ev:
        if e == 'sched:sched_switch':
            s = SWITCH.match(tr)
            c, p = s.group(4), int(s.group(5))
            if c in SERVERS:
                spans.setdefault(p, [t, t, c])[1] = t
    seen = set()
    for spid, (t0, t1, kind) in sorted(spans.items(), key=lambda x: x[1][0]):
        evs = [x for x in ev if t0 - 0.05 <= x[0] <= t1]
        wakes_server, woken = collections.Counter(), collections.defaultdict(collections.Counter)
        for t, tid, e, tr in evs:
            if e == 'sched:sched_waking':
                p = int(WAKE.match(tr).group(2))
                woken[tid][p] += 1
                if comm.get(p) == kind:
                    wakes_server[tid] += 1
        if not wakes_server:
            continue
        handler = wakes_server.most_common(1)[0][0]
        cands = [(n, p) for p, n in woken[handler].items() if comm.get(p) != kind]
        if not cands:
            continue
        faulter = max(cands)[1]
        cycles, cur, out_t, ran, nsw = [], None, None, collections.Counter(), 0
        for t, tid, e, tr in evs:
            if e != 'sched:sched_switch':
                continue
            s = SWITCH.match(tr)
            prev, nxt = int(s.group(2)), int(s.group(5))
            if cur is not None:
                ran[cur[0]] += t - cur[1]
            cur = (nxt, t)
            if prev == faulter:
                out_t, ran, nsw = t, collections.Counter(), 0
            elif out_t is not None:
                nsw += 1
            if nxt == faulter and out_t is not None:
                cycles.append((t - out_t, dict(ran), nsw))
                out_t = None
        if len(cycles) < 500 or (handler, faulter) in seen:
            continue
        seen.add((handler, faulter))
        proc = any(comm.get(x[1]) == 'pcbench-pager' for x in evs[:2000])

        def cls(p):
            if p == handler: return 'handler'
            if comm.get(p) == kind: return 'server'
            if p == faulter: return 'faulter'
            if p == 0: return 'idle'
            if tgid.get(p) is not None and tgid.get(p) == tgid.get(faulter): return 'own-process-other-thread'
            if comm.get(p) == 'pcbench-pager' and proc: return 'own-pager-process-other-thread'
            return 'other:' + comm.get(p, '?')
        d = sorted(c[0] for c in cycles)
        fast = [c for c in cycles if c[0] <= slow_at]
        slow = [c for c in cycles if c[0] > slow_at]
        q = lambda f: d[min(len(d) - 1, int(len(d) * f))] * 1e6
        print(f"row {kind}{'/process' if proc else ''} server={spid} handler={handler} faulter={faulter} cycles={len(cycles)} "
              f"p50={q(.5):.0f} p90={q(.9):.0f} p99={q(.99):.0f} us; slow(>{slow_at * 1e6:.0f}us) {100 * len(slow) / len(cycles):.1f}%; "
              f"switches per fault: fast {sum(c[2] for c in fast) / max(1, len(fast)):.2f}, slow {sum(c[2] for c in slow) / max(1, len(slow)):.2f}")
        for name, group in (('fast', fast), ('slow', slow)):
            tot = collections.Counter()
            for c in group:
                for p, v in c[1].items():
                    tot[cls(p)] += v
            n = max(1, len(group))
            print('   ', name, 'cycle, mean us:', ' '.join(f"{k}={v / n * 1e6:.1f}" for k, v in tot.most_common(8)))

if __name__ == '__main__':
    main()
