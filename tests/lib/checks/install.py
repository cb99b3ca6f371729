"""Checks of tests/integ/install_paths.sh: the install paths (copy, move, continue), batching, zero pages inline, --pin."""
import json
import sys


def path(path, name, mode, batch):
    """A 64 MiB run with --install=MODE --install-batch=BATCH: exit 0, 16384 pages verified, no
    read mismatch, every page installed once; config and JSON name MODE and BATCH; background
    installs happened; unbatched ones carry at most one page per ioctl, batched ones more than
    1.5 (1.0 for NAME ending -demand); move/continue received bytes straight into staging/page
    cache."""
    d = json.load(open(path)); r = d["results"]; batch = int(batch)
    errs = []
    v = r["verify"]; pg = r["pages"]; ins = r["pager"]["install"]
    if d["exit_code"] != 0: errs.append("exit_code %s" % d["exit_code"])
    if not v["done"] or v["pages_corrupt"] or v["pages_missing"] or v["bad_write_stamps"]: errs.append("verify %s" % v)
    if v["pages_verified"] != 16384: errs.append("verified %d pages, want 16384" % v["pages_verified"])
    if r["guest"]["read_mismatches"]: errs.append("%d read mismatches" % r["guest"]["read_mismatches"])
    if pg["demand"] + pg["background"] + pg["drain"] + pg["zero"] != pg["total"]: errs.append("page accounting %s" % pg)
    if d["config"]["install"] != mode or ins["mode"] != mode: errs.append("install mode %s/%s" % (d["config"]["install"], ins["mode"]))
    if ins["batch_pages"] != batch: errs.append("batch %s" % ins["batch_pages"])
    bg = ins["background"]
    if bg["pages"] == 0: errs.append("no background installs")
    ppi = bg["pages"] / bg["ioctls"]
    if batch == 1 and ppi > 1: errs.append("unbatched but %.2f pages per ioctl" % ppi)  # an EEXIST ioctl installs none
    # 25% zero pages (default) break data runs into ~3 pages on average; the demand runs (50% zero pages,
    # pulled by the drain around pages already faulted in) are shorter still, but still above one
    want = 1.0 if name.endswith("-demand") else 1.5
    if batch > 1 and ppi <= want: errs.append("batched but only %.2f pages per ioctl (want > %.1f)" % (ppi, want))
    if mode != "copy" and bg["rx_direct_bytes"] == 0: errs.append("nothing received straight into staging/page cache")
    if errs:
        print("%s: %s" % (name, "; ".join(errs))); sys.exit(1)
    print("%s: ok, %d background pages in %d ioctls (%.1f/ioctl), %d demand, %d EEXIST races, %d wakes" % (
        name, bg["pages"], bg["ioctls"], ppi, pg["demand"], pg["eexist_races"], bg["wakes"]))


def move_chunks(path, thp_mode):
    """--install=move's default batch: 512 pages, 16384 verified, at least 24 of 32 chunks moved
    whole and all 32 moved, zero pages counted, one fresh-chunk reset per chunk, guest THP bytes
    whole 2 MiB pages, and (THP not [never]) some 2 MiB mappings once 12 chunks were reset as
    huge pages."""
    d = json.load(open(path)); r = d["results"]; ins = r["pager"]["install"]; bg = ins["background"]; v = r["verify"]
    thp_never = "[never]" in thp_mode
    errs = []
    if d["config"]["install-batch"] != 512 or ins["batch_pages"] != 512: errs.append("default move batch %s, want 512" % ins["batch_pages"])
    if not v["done"] or v["pages_corrupt"] or v["pages_missing"] or v["pages_verified"] != 16384: errs.append("verify %s" % v)
    if bg["chunks_whole"] < 24: errs.append("only %d of 32 chunks moved whole" % bg["chunks_whole"])
    if bg["chunks_whole"] + bg["chunks_partial"] < 32: errs.append("chunks %d+%d < 32" % (bg["chunks_whole"], bg["chunks_partial"]))
    if r["pages"]["zero"] == 0: errs.append("no zero pages counted")
    if bg["chunk_resets_thp"] + bg["chunk_resets_small"] != bg["chunks_whole"] + bg["chunks_partial"]: errs.append("resets %s" % bg)
    if ins["guest_thp_bytes"] % (2 << 20): errs.append("guest THP bytes %d not whole 2 MiB pages" % ins["guest_thp_bytes"])
    # the installer backs fresh chunks with a huge page or 4 KiB pages, whichever costs less to fault in
    # (measured as it goes); with a dozen huge-page chunks moved whole, some must be 2 MiB mappings
    if not thp_never and bg["chunk_resets_thp"] >= 12 and ins["guest_thp_bytes"] == 0: errs.append("no 2 MiB mappings in the guest %s" % bg)
    if errs: print("move chunks:", "; ".join(errs)); sys.exit(1)
    print("move chunks: %d whole, %d partial (fresh chunks: %d huge, %d small pages), guest region %d MiB in 2 MiB mappings" % (
        bg["chunks_whole"], bg["chunks_partial"], bg["chunk_resets_thp"], bg["chunk_resets_small"], ins["guest_thp_bytes"] >> 20))


def copy_gather(with16, with0):
    """--install=copy with --zero-inline=16 (WITH16) against 0 (WITH0), both verified: at most 2000
    installer jobs, zero_inline echoed, at least 20 pages per ioctl and 1000 zero pages inside
    data runs with 16; none and at most 5 pages per ioctl with 0; the guest RSS grows by at
    least 90 % of the zero pages copied in."""
    errs = []
    res = []
    for f in (with16, with0):
        d = json.load(open(f)); r = d["results"]; ins = r["pager"]["install"]; bg = ins["background"]; v = r["verify"]
        if not v["done"] or v["pages_corrupt"] or v["pages_missing"] or v["pages_verified"] != 16384: errs.append("verify %s" % v)
        zero = r["pages"]["zero"] if isinstance(r["pages"].get("zero"), int) else None
        res.append((ins["zero_inline"], bg, r["pager"]["memory"]["guest_region_rss"], zero))
    (zi, bg, rss, zero), (zi0, bg0, rss0, zero0) = res
    jobs = bg["installer_jobs"]
    if not jobs or jobs > 2000: errs.append("%d installer jobs for 16384 pages: frames not gathered" % jobs)
    if zi != 16 or zi0 != 0: errs.append("zero_inline echoed %s/%s" % (zi, zi0))
    if bg["pages_per_ioctl"] < 20: errs.append("zero slots: %.1f pages per ioctl" % bg["pages_per_ioctl"])
    if bg["zero_inline_pages"] < 1000: errs.append("only %d zero pages inside data runs" % bg["zero_inline_pages"])
    if bg0["zero_inline_pages"] != 0: errs.append("--zero-inline=0 but %d zero pages inside data runs" % bg0["zero_inline_pages"])
    if bg0["pages_per_ioctl"] > 5: errs.append("--zero-inline=0: %.1f pages per ioctl" % bg0["pages_per_ioctl"])
    # the zero pages copied in are allocated; with ZEROPAGE they map the shared zero page
    if rss - rss0 < bg["zero_inline_pages"] * 4096 * 0.9: errs.append("guest RSS %d vs %d with ZEROPAGE" % (rss, rss0))
    if errs: print("copy gather:", "; ".join(errs)); sys.exit(1)
    print("copy gather: %d installer jobs, %.1f pages per ioctl, %d zero pages inside data runs (+%.1f MiB guest RSS); "
          "--zero-inline=0: %.1f pages per ioctl" % (jobs, bg["pages_per_ioctl"], bg["zero_inline_pages"], (rss - rss0) / 2**20,
          bg0["pages_per_ioctl"]))


def installer(path, want):
    """results.pager.install.installer is the --installer that ran; inline has no installer thread (its
    CPU -1, its CPU time 0: the installs are the background thread's)."""
    r = json.load(open(path))["results"]; got = r["pager"]["install"]["installer"]
    cpu = r["pager"]["placement"]["install_thread_cpu"]
    if got != want: print("installer %s, want %s" % (got, want)); sys.exit(1)
    if want == "inline" and (cpu != -1 or r["cpu"]["installer_ns"] not in (0, None)):
        print("inline installs but an installer thread ran: cpu %s, %s ns" % (cpu, r["cpu"]["installer_ns"])); sys.exit(1)
    if want == "thread" and cpu < 0: print("installer thread: no CPU recorded"); sys.exit(1)
    print("installer: %s" % got)


def pinned(path):
    """--pin: the demand, background and install threads and every vCPU ran on CPU 0, and the guest
    and source were pinned to CPU 0."""
    d = json.load(open(path)); r = d["results"]; pl = r["pager"]["placement"]
    thr = r["pager"]["install"]["installer"] == "thread"   # the test asks for an installer thread to pin
    if not thr: print("pin: --installer=thread was not honoured"); sys.exit(1)
    bad = [k for k in ("demand_thread_cpu", "background_thread_cpu", "install_thread_cpu") if pl[k] != 0]
    bad += ["vcpu%d on %d" % (v["vcpu"], v["cpu_end"]) for v in r["guest"]["vcpus"] if v["cpu_end"] != 0]
    if pl["guest_pinned_cpu"] != 0 or pl["source_pinned_cpu"] != 0: bad.append("pinned cpus %s" % pl)
    if bad: print("not where pinned:", bad); sys.exit(1)
    print("pin: every thread on CPU 0")
