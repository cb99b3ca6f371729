#!/usr/bin/env bash
# Hostile peers against the real binaries.  A fake destination sends the real
# `pcbench source` truncated, oversized, out-of-range, wrong-version,
# wrong-magic frames and a wrong key: each is refused with an ERROR frame
# naming the problem, logged, and the source keeps serving (a real migration
# from it succeeds afterwards).  A fake source sends the real `pcbench dest` a
# page outside the image: the destination exits 76 naming it, installs nothing.
. "$(dirname "$0")/../lib/integ.sh"
. tests/lib/net.sh
head -c 32 /dev/urandom >"$T/key"; chmod 600 "$T/key"

# malformed frames go to an unkeyed source (with a key every frame after the
# handshake must carry a tag this script cannot make: an untagged one is refused
# as such, checked below); the wrong key and the untagged frame to a keyed one
start_source src2 "$P" source --listen=127.0.0.1:0 --mem=16M --seed=9 --sessions=0
OPEN_PORT=$SRC_PORT OPEN_PID=$SRC_PID
start_source src "$P" source --listen=127.0.0.1:0 --mem=16M --seed=9 --sessions=0 --auth-key-file="$T/key"
$CHECK net.malformed_frames "$SRC_PORT" "$T/key" "$OPEN_PORT" || exit 1
kill -0 $SRC_PID || fail "the source died"
"$P" dest --source=127.0.0.1:$SRC_PORT --auth-key-file="$T/key" --duration=200ms >"$T/ok.out" 2>&1 ||
	fail "migration after the hostile frames: $(tail -3 "$T/ok.out")"
grep -q "0 corrupt, 0 missing: OK" "$T/ok.out" || fail "migration after the hostile frames did not verify"
for w in "authentication failed" "without an authentication tag"; do
	grep -q "$w" "$T/src.out" || fail "the keyed source did not log '$w'"
done
for w in "length 2147483647" "outside the image" "version 1" "magic" "DIGEST_REQ"; do
	grep -q "$w" "$T/src2.out" || fail "the source did not log '$w'"
done
kill $SRC_PID $OPEN_PID; wait $SRC_PID 2>/dev/null
echo "OK: the source refused every hostile frame, survived, and served a verified migration"

# --- a hostile source against the real destination ------------------------------------------
$CHECK net.hostile_source "$T/port" &
FP=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
"$P" dest --source=127.0.0.1:$(cat "$T/port") --zero-pages=0 --duration=2s --json "$T/bad.json" >"$T/bad.out" 2>&1
rc=$?
cat "$T/bad.out"
[ $rc -eq 76 ] || fail "destination fed a page outside the image: exit $rc (want 76)"
grep -q "outside the image" "$T/bad.out" || fail "the destination did not name the bad frame"
grep -q "0 of 4096 pages had arrived" "$T/bad.out" || fail "something was installed from the hostile source"
kill $FP 2>/dev/null
echo PASS
