#!/usr/bin/env bash
# --source-image: the source builds the seed's image in memory before serving
# (memory) or generates each page as it sends it (generate).  Checks: both
# modes, in both zero-page models, migrate the same image -- every page
# verified against the source's digests, every guest read checked against the
# destination's own copy of the seed's image, the same pages zero -- and the
# JSON records the choice and the build time; auto picks memory for a small
# image; --source-send: splice or writev as asked, auto and its exceptions
# (qemu, pre-copy, generate), recorded in the JSON; a bad value exits 64 with
# one line; `pcbench source` serves from memory, by splice.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd

common="--mem=64M --policy=sequential --workload=seq --seed=5 --duration=300ms $FAST"
for model in runs uniform; do
	for mode in memory generate auto; do
		pcb "$model-$mode" 120 run $common --zero-model=$model --source-image=$mode --json="$T/$model-$mode.json"
		expect_rc "$model-$mode" 0
	done
	$CHECK source_image.same "$T/$model-memory.json" "$T/$model-generate.json" "$T/$model-auto.json" ||
		fail "--zero-model=$model: memory and generate differ"
done

# --source-send: auto splices an image in memory (above) but writes by writev for the qemu baseline;
# asked for, either way; pre-copy's guest memory goes by writev whatever was asked
pcb send-qemu 120 run $common --policy=qemu --json="$T/send-qemu.json"
expect_rc send-qemu 0
$CHECK source_image.send "$T/send-qemu.json" writev "--policy=qemu" || fail "--policy=qemu did not write by writev"
pcb send-writev 120 run $common --source-send=writev --json="$T/send-writev.json"
expect_rc send-writev 0
$CHECK source_image.send "$T/send-writev.json" writev "--source-send=writev" || fail "--source-send=writev"
pcb send-splice 120 run $common --policy=qemu --source-send=splice --json="$T/send-splice.json"
expect_rc send-splice 0
$CHECK source_image.send "$T/send-splice.json" splice "--source-send=splice" || fail "--source-send=splice"
pcb send-precopy 120 run $common --source-send=splice --precopy=100ms --json="$T/send-precopy.json"
expect_rc send-precopy 0
$CHECK source_image.send "$T/send-precopy.json" writev "--precopy" || fail "--source-send=splice with --precopy"

# a corrupted page served from the in-memory image is caught by the verification
PCB_TEST_CORRUPT_PAGE=100 pcb corrupt 120 run $common --source-image=memory --json="$T/corrupt.json"
[ "$RC" != 0 ] || fail "a corrupted page served from memory was not caught"
$CHECK source_image.corrupt "$T/corrupt.json" || fail "corrupt JSON"

for cmd in run source floor; do
	pcb bad-$cmd 20 $cmd --source-image=disk
	expect_rc bad-$cmd 64
	[ "$(wc -l <"$T/bad-$cmd.err")" = 1 ] && grep -q -- "--source-image: 'disk'" "$T/bad-$cmd.err" ||
		fail "$cmd --source-image=disk: want one line naming the value, got: $(cat "$T/bad-$cmd.err")"
	pcb bads-$cmd 20 $cmd --source-send=sendfile
	expect_rc bads-$cmd 64
	[ "$(wc -l <"$T/bads-$cmd.err")" = 1 ] && grep -q -- "--source-send: 'sendfile'" "$T/bads-$cmd.err" ||
		fail "$cmd --source-send=sendfile: want one line naming the value, got: $(cat "$T/bads-$cmd.err")"
done

# pcbench source builds it too (logged with -v) and a pcbench dest pulls it verified
PORT=$((20000 + RANDOM % 20000))
pcb_bg src 120 source --listen=127.0.0.1:$PORT --mem=64M --seed=5 --sessions=1 --source-image=memory -v
for i in $(seq 200); do grep -q "listening" "$T/src.out" 2>/dev/null && break; sleep 0.05; done
pcb dst 120 dest --source=127.0.0.1:$PORT --policy=sequential --workload=seq --duration=300ms $FAST --json="$T/dst.json"
expect_rc dst 0
pcb_wait src
expect_rc src 0
grep -q "image built in memory" "$T/src.err" || fail "pcbench source -v did not say it built the image: $(tail -3 "$T/src.err")"
grep -Eq "; [1-9][0-9.]* MiB written by splice" "$T/src.out" || fail "pcbench source did not splice its image: $(tail -1 "$T/src.out")"
$CHECK source_image.verified "$T/dst.json" || fail "dest JSON"
finish
