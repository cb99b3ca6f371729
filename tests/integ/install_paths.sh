#!/usr/bin/env bash
# Every install path (--install=copy|move|continue), batched (128 pages per
# ioctl) and unbatched (1), migrates 64 MiB with zero corrupt or missing
# pages, under demand faults from 2 vCPUs racing the background pull; the
# JSON says which path ran and how many pages each ioctl carried (batched
# background installs must carry more than one page per ioctl on average,
# unbatched exactly one).  Bad --install / --install-batch / --pin values
# exit 64 naming the value.  --pin places the threads where asked.  Each path
# also runs with --installer=inline (the background thread installs) besides
# the default (auto: the installer thread unless receive and install share a
# CPU), and the JSON says which ran.
. "$(dirname "$0")/../lib/integ.sh"
P=$PCBENCH
[ -e /dev/userfaultfd ] || [ "$(id -u)" = 0 ] || skip "no userfaultfd access"
feat=$($CHECK uffd.features)
auto_unpinned=thread   # --installer=auto with nothing pinned: the installer thread, unless one CPU is online
[ "$(getconf _NPROCESSORS_ONLN)" = 1 ] && auto_unpinned=inline
has() { [ $(( feat & $1 )) -ne 0 ]; }

check() {   # check NAME MODE BATCH
	$CHECK install.path "$T/$1.json" "$1" "$2" "$3" || return 1
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
	# inline installs (--installer=inline: the background thread installs) instead of the installer
	# thread that --installer=auto chose for these unpinned runs (on more than one CPU), same race
	run "$mode-inline" $mode 128 --workload=random --vcpus=2 --policy=sequential --batch=256 --installer=inline
	$CHECK install.installer "$T/$mode-inline.json" inline || fail "$mode-inline: installer"
	$CHECK install.installer "$T/$mode-b128.json" "$auto_unpinned" || fail "$mode-b128: installer"
done
# --installer=auto: inline where receive and install share a CPU anyway (--pin=same), but the installer
# thread on one shared connection (the background thread also receives the demand replies, which would
# wait behind each inline install)
run copy-same copy 128 --workload=random --vcpus=2 --policy=sequential --batch=256 --pin=same
$CHECK install.installer "$T/copy-same.json" inline || fail "copy-same: installer"
run copy-shared copy 128 --workload=random --vcpus=2 --policy=sequential --batch=256 --channels=1 --pin=same
$CHECK install.installer "$T/copy-shared.json" thread || fail "copy-shared: installer"
# the background thread pinned, the installer not: inline on a 2-CPU machine (the other CPU is the
# source's or the guest's), the thread where more CPUs are online
want=thread; [ "$(nproc)" = 2 ] && want=inline
run copy-bgpin copy 128 --workload=random --vcpus=2 --policy=sequential --batch=256 --pin=background=0
$CHECK install.installer "$T/copy-bgpin.json" $want || fail "copy-bgpin: installer"

# move, default batch (0 = 512): a scan nobody races assembles whole 2 MiB chunks (zero
# pages included) and moves each with one ioctl; where THP is not disabled the kernel moves
# them as huge-page mappings, so the guest region ends up (mostly) mapped by 2 MiB PMDs
if has $((1 << 16)); then
	"$P" --mem=64M --duration=0 --ops=1 --workload=seq --policy=sequential --trace=off --install=move \
		--json "$T/chunks.json" >"$T/chunks.out" 2>"$T/chunks.err" || fail "move chunks run: $(tail -1 "$T/chunks.err")"
	$CHECK install.move_chunks "$T/chunks.json" "$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)" || fail "move chunks"
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
$CHECK install.copy_gather "$T/gather16.json" "$T/gather0.json" || fail "copy gather"

# placement: pinned threads run where asked
"$P" --mem=16M --duration=200ms --trace=off --pin=guest=0,demand=0,background=0,source=0,install=0 --installer=thread --json "$T/pin.json" >/dev/null 2>"$T/pin.err" ||
	fail "pin run: $(tail -1 "$T/pin.err")"
$CHECK install.pinned "$T/pin.json" || fail "pin placement"

# bad values: exit 64, one line naming the value
for bad in "--install=mmap" "--installer=both" "--zero-inline=129" "--install-batch=lots" "--install-batch=5000" "--pin=guest=99" "--pin=vcpu=0" "--pin=sideways"; do
	out=$("$P" --mem=16M $bad 2>&1); rc=$?
	val=${bad#*=}
	if [ $rc -ne 64 ]; then fail "$bad: exit $rc, want 64"; continue; fi
	[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "$bad: more than one line: $out"
	printf '%s' "$out" | grep -qF -- "$val" || fail "$bad: message does not name '$val': $out"
done

finish
