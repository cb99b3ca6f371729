#!/usr/bin/env bash
# Real memory images: a generated image file with known zero pages and runs,
# and an image dumped from a running process (`pcbench image dump`).
# Checks: `pcbench image stats` counts exactly the file's zero pages, runs,
# duplicates, and zlib finds the compressible pages compressible; the dump
# holds the process's buffer (pages of its pattern) and leaves it running;
# `pcbench run --image` and `pcbench source --image` + `pcbench dest` migrate
# each file with every page verified as it arrived, the destination given
# nothing but the address; a page served corrupt is caught; bad files and
# options exit 64/65.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

# 8192 pages: page p is zero if p % 4 == 0 or (p // 64) % 3 == 0, else p % 4 == 1 is byte (p % 251 + 1)
# repeated (compressible, duplicates), the rest random bytes
$CHECK image.write_pattern "$T/gen.img"
"$PCBENCH" image stats "$T/gen.img" --json="$T/gen.json" >"$T/gen.out" 2>&1 || fail "image stats: $(cat "$T/gen.out")"
cat "$T/gen.out"
$CHECK image.stats "$T/gen.json" || fail "image stats JSON"

# the forked source serves the file: every page verified as it arrived
pcb run 120 $FAST --image="$T/gen.img" --policy=sequential --workload=random --duration=300ms --json "$T/run.json"
if expect_rc run 0; then
	[ "$($PCBJSON get "$T/run.json" results.verify.pages_verified)" = 8192 ] || fail "run --image: not all pages verified"
	[ "$($PCBJSON get "$T/run.json" results.pages.zero)" = "$($PCBJSON get "$T/gen.json" zero_pages)" ] ||
		fail "run --image: zero pages sent differ from the file's"
	$PCBJSON get "$T/run.json" results.verify.method | grep -q "^bytes image" || fail "run --image: verify method"
	$PCBJSON host_line "$T/run.json" "$T/run.out" || fail "run --image: summary's host line"
fi
PCB_TEST_CORRUPT_PAGE=70 pcb corrupt 120 $FAST --image="$T/gen.img" --duration=200ms --json "$T/corrupt.json"
expect_rc corrupt 1
[ "$($PCBJSON get "$T/corrupt.json" results.verify.first_bad_pages.0)" = 70 ] || fail "corrupt page 70 not named"

# a real process: a Python interpreter holding 8 MiB of 0xab
python3 -c "
import time
b = bytearray(b'\xab' * (8 << 20))
print('ready', flush=True)
time.sleep(120)
" >"$T/py.out" &
PY=$!
for i in $(seq 100); do grep -q ready "$T/py.out" && break; sleep 0.05; done
"$PCBENCH" image dump --pid=$PY --out="$T/py.img" >"$T/dump.out" 2>&1 || fail "image dump: $(cat "$T/dump.out")"
cat "$T/dump.out"
kill -0 $PY 2>/dev/null || fail "the dumped process did not survive"
grep -q '^State:.*[SR]' /proc/$PY/status || fail "the dumped process was left stopped: $(grep State /proc/$PY/status)"
grep -q '\[heap\]' "$T/py.img.maps" || fail "no [heap] in the dump's region list"
$CHECK image.dump_has_buffer "$T/py.img" || fail "the dump lacks the process's buffer"
kill $PY 2>/dev/null
"$PCBENCH" image stats "$T/py.img" >"$T/pystats.out" 2>&1 || fail "image stats of the dump"

# pcbench source --image + pcbench dest: the destination is given only the address
pcb_bg src 120 source --image="$T/py.img" --listen=127.0.0.1:0 --sessions=1
for i in $(seq 200); do grep -q 'listening on' "$T/src.out" && break; sleep 0.05; done
PORT=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$T/src.out")
if [ -n "$PORT" ]; then
	pcb dest 120 dest --source=127.0.0.1:$PORT $FAST --policy=sequential --workload=seq --duration=300ms --json "$T/dest.json"
	if expect_rc dest 0; then
		pages=$(( $(stat -c %s "$T/py.img") / 4096 ))
		[ "$($PCBJSON get "$T/dest.json" results.verify.pages_verified)" = "$pages" ] || fail "dest: not all $pages pages verified"
		[ "$($PCBJSON get "$T/dest.json" config.mem)" = "$(stat -c %s "$T/py.img")" ] || fail "dest: --mem is not the file's size"
	fi
	pcb_wait src
	expect_rc src 0
else
	fail "source --image did not start: $(cat "$T/src.out" "$T/src.err")"
fi

# bad input
head -c 5000 /dev/zero >"$T/odd.img"
pcb odd 30 image stats "$T/odd.img"
expect_rc odd 65 && { grep -q "multiple of 4096" "$T/odd.err" || fail "odd: $(cat "$T/odd.err")"; }
pcb nofile 30 $FAST --image="$T/none.img" --duration=100ms
expect_rc nofile 64
pcb sqlimg 30 --workload=sqlite --image="$T/gen.img"
expect_rc sqlimg 64
pcb nopid 30 image dump --pid=4000000 --out="$T/x.img"
expect_rc nopid 64
pcb noargs 30 image dump --out="$T/x.img"
expect_rc noargs 64
finish
