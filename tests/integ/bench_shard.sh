#!/usr/bin/env bash
# Beyond one machine: `pcbench bench --shard=I/N` runs a deterministic share of a matrix, and
# `pcbench analyze --out=DIR SHARDS...` merges the shards' directories into one whose run ids,
# manifest and tidy rows equal those of the same job run unsharded (values are re-measured, the
# rows are the same).  Overlapping shards and different job files are refused.  A job naming a
# long-running `pcbench source` (source = HOST:PORT) runs every run as `pcbench dest` against it.
. "$(dirname "$0")/../lib/integ.sh"
need_uffd_dev

job_file "$T/sh.conf" name=sh "policies=demand, sequential" baseline_policy=local workloads=random reps=2 \
	mem=16M duration=200ms timeline=none
bench() { "$PCBENCH" bench "$T/sh.conf" --results="$T/res" "$@" 2>>"$T/bench.err"; }
full=$(bench) || die "unsharded bench failed: $(tail -3 "$T/bench.err")"
s1=$(bench --shard=1/2) || die "shard 1/2 failed: $(tail -3 "$T/bench.err")"
s2=$(bench --shard=2/2) || die "shard 2/2 failed: $(tail -3 "$T/bench.err")"
grep -q "shard 1/2: 3 of its 6 runs, 3 to do" "$T/bench.err" || fail "shard 1/2 does not announce 3 of 6 runs"
case "$s1" in *sh-shard1of2-*) ;; *) fail "shard directory name '$s1'";; esac
[ "$(cat "$s2/shard")" = "2/2" ] || fail "no shard file in $s2"
[ -e "$s1/COMPLETE" ] && [ -e "$s2/COMPLETE" ] || fail "a finished shard is not marked complete"
# resuming a shard reuses its own directory only: with shard 1's directory incomplete, shard 2
# starts a new one
rm "$s1/COMPLETE" "$s1/runs/demand-random-loopback-r1.json"
again=$(bench --shard=1/2) || fail "shard 1/2 resume failed"
[ "$again" = "$s1" ] || fail "shard 1/2 resumed in $again, not $s1"
grep -q "shard 1/2: 3 of its 6 runs, 1 to do (resuming" "$T/bench.err" || fail "shard resume did not re-run exactly the missing run"
"$PCBENCH" analyze --out="$T/merged" "$s1" "$s2" >"$T/merge.out" 2>"$T/merge.err" || fail "merge failed: $(cat "$T/merge.err")"
[ -e "$T/merged/COMPLETE" ] || fail "merged directory not complete"
$CHECK bench.shards_merged "$full" "$T/merged" "$s1" "$s2" || fail "merged != unsharded (above)"
"$PCBENCH" analyze --out="$T/merged2" "$s1" "$s1" 2>"$T/dup.err"; rc=$?
[ $rc = 65 ] && grep -q "more than one of the directories" "$T/dup.err" || fail "overlapping shards: exit $rc, $(cat "$T/dup.err")"
"$PCBENCH" bench "$T/sh.conf" --shard=3/2 2>"$T/bad.err"; rc=$?
[ $rc = 64 ] && grep -q "invalid value for --shard: '3/2'" "$T/bad.err" || fail "--shard=3/2: exit $rc, $(cat "$T/bad.err")"

# a long-running source on "another host" (here: this one, over TCP)
"$PCBENCH" source --listen=127.0.0.1:0 --mem=16M --sessions=0 >"$T/src.out" 2>&1 &
src=$!
for _ in $(seq 50); do grep -q "listening on" "$T/src.out" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/src.out")
[ -n "$port" ] || { kill "$src"; die "source did not start: $(cat "$T/src.out")"; }
sed "s/^name .*/name = rem/; s/^baseline_policy.*//; s/^reps .*/reps = 1/" "$T/sh.conf" >"$T/rem.conf"
printf '[link remote]\nsource = 127.0.0.1:%s\n' "$port" >>"$T/rem.conf"
rdir=$("$PCBENCH" bench "$T/rem.conf" --results="$T/res" 2>"$T/rem.err") || fail "remote bench failed: $(tail -3 "$T/rem.err")"
kill "$src"; wait "$src" 2>/dev/null
for p in demand sequential; do
	head -1 "$rdir/runs/$p-random-remote-r1.log" | grep -q " dest --policy=$p .*--source=127.0.0.1:$port" || fail "$p: not run as pcbench dest against the source"
	$CHECK bench.remote_run_ok \
		"$rdir/runs/$p-random-remote-r1.json" || fail "$p: remote run not ok"
done
finish
