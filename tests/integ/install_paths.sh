#!/usr/bin/env bash
# Every install path (--install=copy|move|continue), batched (128 pages per
# ioctl) and unbatched (1), migrates 64 MiB with zero corrupt or missing
# pages, under demand faults from 2 vCPUs racing the background pull; the
# JSON says which path ran and how many pages each ioctl carried (batched
# background installs must carry more than one page per ioctl on average,
# unbatched exactly one).  Bad --install / --install-batch / --pin values
# exit 64 naming the value.  --pin places the threads where asked.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
[ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd access"
feat=$(python3 - <<'PY'
import ctypes, fcntl, os, struct
# UFFDIO_API on a fresh userfaultfd: which features does this kernel offer?
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(323, os.O_CLOEXEC | 1)   # SYS_userfaultfd, UFFD_USER_MODE_ONLY
if fd < 0:
    try:
        dev = os.open("/dev/userfaultfd", os.O_RDWR)
        fd = fcntl.ioctl(dev, 0xAA00, os.O_CLOEXEC)
    except OSError:
        print(0); raise SystemExit
buf = bytearray(struct.pack("QQQ", 0xAA, 0, 0))
fcntl.ioctl(fd, 0xc018aa3f, buf)
print(struct.unpack("QQQ", bytes(buf))[1])
PY
)
has() { [ $(( feat & $1 )) -ne 0 ]; }

check() {   # check NAME MODE BATCH
	python3 - "$T/$1.json" "$1" "$2" "$3" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1])); r = d["results"]; name, mode, batch = sys.argv[2], sys.argv[3], int(sys.argv[4])
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
PY
}

run() {   # run NAME MODE BATCH ARGS...
	local name=$1 mode=$2 batch=$3; shift 3
	"$P" --mem=64M --duration=500ms --trace=off --install=$mode --install-batch=$batch --json "$T/$name.json" "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
	local rc=$?
	if [ $rc -ne 0 ]; then fail "$name: exit $rc: $(tail -2 "$T/$name.err")"; return; fi
	check "$name" "$mode" "$batch" || fail "$name: JSON checks"
}

for mode in copy move continue; do
	if [ $mode = move ] && ! has $((1 << 16)); then echo "move: kernel lacks UFFD_FEATURE_MOVE, not tested here"; continue; fi
	if [ $mode = continue ] && ! has $((1 << 10)); then echo "continue: kernel lacks MINOR_SHMEM, not tested here"; continue; fi
	batches="1 128"
	[ $mode = move ] && batches="1 128 512"   # 512: whole 2 MiB chunks, moved with one ioctl each
	for batch in $batches; do
		run "$mode-b$batch" $mode $batch --workload=random --vcpus=2 --policy=sequential --batch=256
	done
	# demand only, then drain: every page goes through the demand path or the drain
	run "$mode-demand" $mode 128 --workload=zipf --policy=demand --zero-pages=0.5
done

# move, default batch (0 = 512): a scan nobody races assembles whole 2 MiB chunks (zero
# pages included) and moves each with one ioctl; where THP is not disabled the kernel moves
# them as huge-page mappings, so the guest region ends up (mostly) mapped by 2 MiB PMDs
if has $((1 << 16)); then
	"$P" --mem=64M --duration=0 --ops=1 --workload=seq --policy=sequential --trace=off --install=move \
		--json "$T/chunks.json" >"$T/chunks.out" 2>"$T/chunks.err" || fail "move chunks run: $(tail -1 "$T/chunks.err")"
	python3 - "$T/chunks.json" "$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)" <<'PY' || fail "move chunks"
import json, sys
d = json.load(open(sys.argv[1])); r = d["results"]; ins = r["pager"]["install"]; bg = ins["background"]; v = r["verify"]
thp_never = "[never]" in sys.argv[2]
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
PY
fi

# copy: frames received back to back go to the installer as one job, not one job per
# frame, and a short run of zero pages between data pages travels in the data's segment as
# zero slots (one UFFDIO_COPY; --zero-inline, default 16): with 25% zero pages scattered a
# RUN carries ~3 pages, so without them a background install would average < 3 pages per
# ioctl.  --zero-inline=0: every zero page with UFFDIO_ZEROPAGE (the shared zero page), so
# the guest region's RSS is smaller by about the zero pages.  Pinned to --zero-model=uniform:
# the check is about zero pages scattered one by one among data pages (the default runs
# model puts them in runs of 2^k pages, most longer than --zero-inline, which go by ZEROPAGE).
for zi in 16 0; do
	"$P" --mem=64M --duration=0 --ops=1 --workload=seq --policy=sequential --trace=off --install=copy --zero-inline=$zi \
		--zero-model=uniform \
		--json "$T/gather$zi.json" >"$T/gather.out" 2>"$T/gather.err" || fail "copy gather run: $(tail -1 "$T/gather.err")"
done
python3 - "$T/gather16.json" "$T/gather0.json" <<'PY' || fail "copy gather"
import json, sys
errs = []
res = []
for f in sys.argv[1:]:
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
PY

# placement: pinned threads run where asked
"$P" --mem=16M --duration=200ms --trace=off --pin=guest=0,demand=0,background=0,source=0,install=0 --json "$T/pin.json" >/dev/null 2>"$T/pin.err" ||
	fail "pin run: $(tail -1 "$T/pin.err")"
python3 - "$T/pin.json" <<'PY' || fail "pin placement"
import json, sys
d = json.load(open(sys.argv[1])); r = d["results"]; pl = r["pager"]["placement"]
bad = [k for k in ("demand_thread_cpu", "background_thread_cpu", "install_thread_cpu") if pl[k] != 0]
bad += ["vcpu%d on %d" % (v["vcpu"], v["cpu_end"]) for v in r["guest"]["vcpus"] if v["cpu_end"] != 0]
if pl["guest_pinned_cpu"] != 0 or pl["source_pinned_cpu"] != 0: bad.append("pinned cpus %s" % pl)
if bad: print("not where pinned:", bad); sys.exit(1)
print("pin: every thread on CPU 0")
PY

# bad values: exit 64, one line naming the value
for bad in "--install=mmap" "--zero-inline=129" "--install-batch=lots" "--install-batch=5000" "--pin=guest=99" "--pin=vcpu=0" "--pin=sideways"; do
	out=$("$P" --mem=16M $bad 2>&1); rc=$?
	val=${bad#*=}
	if [ $rc -ne 64 ]; then fail "$bad: exit $rc, want 64"; continue; fi
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "$bad: more than one line: $out"
	printf '%s' "$out" | grep -qF -- "$val" || fail "$bad: message does not name '$val': $out"
done

finish
