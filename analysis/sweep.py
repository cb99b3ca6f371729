#!/usr/bin/python3
"""The [sweep] of a `pcbench bench` job: `pcbench simulate` over link bandwidth and RTT.

Usage: analysis/sweep.py RESULTS_DIR     (after `pcbench bench`; `make bench` runs it)

For each workload of the job's [sweep] section (NAME or NAME:KNOBS, KNOBS its --workload-opt),
records the guest's access trace once with the options of the live runs (a --policy=local run with
--record, same --mem, --duration, --seed, ...; plus one with the replay variant's record_seed when
the job has one), then replays it through every policy of the job (a [policy] variant with its
--channels / --replay) over every link of `links`, and the live links too (so live and simulated
points can be compared).  Writes RESULTS_DIR/sweep/sweep.csv:
  workload,policy,link,bandwidth_bps,rtt_us,blocktime_ms,migration_ms,faults,guest_ms
and deletes the traces afterwards (~140 MB per guest second at 512 MiB; the recording commands are
in sweep/*.log).  analysis/stats.py turns it into plotdata/sensitivity.dat (figure 8).
"""
import csv, json, os, re, shlex, subprocess, sys

RATE = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12}
DUR = {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6}


def parse_job(path):
    """Sections of a job file as {name: {key: value}} (format: configs/README.md, checked by pcbench)."""
    secs, cur = {}, None
    for raw in open(path):
        line = re.sub(r"(^|\s)#.*", "", raw).strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            cur = line.strip("[]").strip()
            secs[cur] = {}
        elif "=" in line and cur is not None:
            k, v = line.split("=", 1)
            secs[cur][k.strip()] = v.strip()
    return secs


def link_of(spec):
    m = re.fullmatch(r"([0-9.]+)([kmgt]bit)(?:,([0-9.]+)(ns|us|ms|s))?", spec.strip().lower())
    if not m:
        sys.exit(f"sweep: cannot read link '{spec}'")
    return float(m.group(1)) * RATE[m.group(2)], float(m.group(3)) * DUR[m.group(4)] if m.group(3) else 0.0


def knobs_differ(exp, knobs):
    """The sweep workload's knobs are not the live runs' --workload-opt."""
    return knobs != exp.get("workload-opt", "")


def live_command(d):
    """The option list of the first live run (its log's first line), without what a run varies."""
    for f in sorted(os.listdir(os.path.join(d, "runs"))):
        if f.endswith(".log"):
            first = open(os.path.join(d, "runs", f)).readline()
            if first.startswith("# "):
                argv = shlex.split(first[2:])
                drop = ("--policy=", "--workload=", "--workload-opt=", "--json=", "--timeline=", "--progress-csv=",
                        "--link=", "--replay=", "--channels=", "--source=", "--seed=")
                return [a for a in argv[2:] if not a.startswith(drop)]
    sys.exit(f"sweep: no run log in {d}/runs")


def run(cmd, log):
    with open(log, "a") as f:
        f.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        f.flush()
        return subprocess.call(cmd, stdout=f, stderr=f)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: analysis/sweep.py RESULTS_DIR")
    d = sys.argv[1]
    pcbench = os.environ.get("PCBENCH", "./pcbench")
    job = parse_job(os.path.join(d, "job.conf"))
    sw = job.get("sweep")
    if not sw:
        print("sweep: the job has no [sweep] section; nothing to do")
        return
    exp = job["experiment"]
    seed = exp.get("seed", "1")
    policies = re.split(r"[\s,]+", exp["policies"].strip())
    variants = {k.split(None, 1)[1]: v for k, v in job.items() if k.startswith("policy ")}
    live_links = {k.split(None, 1)[1]: v["link"] for k, v in job.items() if k.startswith("link ") and "link" in v}
    links = [(l, l) for l in sw["links"].split()] + [(n, s) for n, s in live_links.items()]
    base = live_command(d)
    out = os.path.join(d, "sweep")
    os.makedirs(out, exist_ok=True)
    rows = []
    for wspec in sw["workloads"].split():
        wl, _, knobs = wspec.partition(":")
        wopt = ["--workload-opt=" + knobs] if knobs else []
        traces = {}
        seeds = {seed} | {v["record_seed"] for v in variants.values() if "record_seed" in v}
        for s in sorted(seeds):
            t = os.path.join(out, f"{wl}-seed{s}.trace")
            live = os.path.join(d, "traces", f"{wl}-seed{s}.trace")   # the live replay's own recording
            if not knobs_differ(exp, knobs) and os.path.exists(live) and s != seed:
                traces[s] = live
                continue
            if run([pcbench, "run", "--policy=local", "--workload=" + wl] + wopt + base +
                   ["--seed=" + s, "--record=" + t, "--json=" + t + ".json"], os.path.join(out, f"{wl}-seed{s}.log")):
                sys.exit(f"sweep: recording {t} failed (log {out}/{wl}-seed{s}.log)")
            traces[s] = t
        # one simulate per link for the plain policies and the replay variants (--replay is read by
        # replay only), one per other variant (its own --channels)
        plain = [(p, p) for p in policies if p not in variants]
        groups, rep_extra = [], []
        for name in policies:
            v = variants.get(name)
            if not v:
                continue
            real = v.get("policy", name)
            if real == "replay":
                if "record_seed" in v and not rep_extra:
                    plain.append((name, "replay"))
                    rep_extra = ["--replay=" + traces[v["record_seed"]]]
                continue                   # a fixed replay file, or a second replay seed: not in the sweep
            groups.append(([(name, real)], ["--channels=" + v["channels"]] if "channels" in v else []))
        if plain:
            groups.insert(0, (plain, rep_extra))
        done = {}
        for lname, spec in links:
            bps, rtt = link_of(spec)
            if (bps, rtt) in done:         # a live link that is also a sweep point: same simulation
                rows += [[r[0], r[1], lname] + r[3:] for r in done[(bps, rtt)]]
                continue
            start = len(rows)
            for members, extra in groups:
                js = os.path.join(out, "sim.json")
                mem = [a for a in base if a.startswith("--mem=")]
                if run([pcbench, "simulate", "--trace=" + traces[seed], "--policy=" + ",".join(r for _, r in members),
                        "--link=" + spec, "--seed=" + seed, "--json=" + js] + mem + extra, os.path.join(out, "simulate.log")):
                    sys.exit(f"sweep: simulate failed (log {out}/simulate.log)")
                j = json.load(open(js))
                for (name, _), res in zip(members, [r["results"] for r in j["runs"]] if "runs" in j else [j["results"]]):
                    blk = res["blocktime"].get("sum_vcpus_ns", res["blocktime"]["total_ns"])
                    rows.append([wl, name, lname, "%.0f" % bps, "%g" % rtt, "%.3f" % (blk / 1e6),
                                 "%.3f" % (res["time"]["total_migration_ns"] / 1e6), res["faults"]["count"],
                                 "%.3f" % (res["time"].get("guest_ns", 0) / 1e6)])
            done[(bps, rtt)] = rows[start:]
        for t in traces.values():
            if os.path.dirname(t) == out:
                os.unlink(t)
        print(f"sweep: {wl}: {len(links)} links x {len(policies)} policies simulated", file=sys.stderr)
    with open(os.path.join(out, "sweep.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["workload", "policy", "link", "bandwidth_bps", "rtt_us", "blocktime_ms", "migration_ms", "faults", "guest_ms"])
        w.writerows(rows)
    print(f"sweep: {len(rows)} simulated points in {out}/sweep.csv")


if __name__ == "__main__":
    main()
