#!/usr/bin/env bash
# The command line: --help lists every option with its default, --version,
# `pcbench list`, and unknown commands.  No migration is run.
. "$(dirname "$0")/../lib/integ.sh"

# --help: exit 0, on stdout, every option of the config echo listed with a [default]
pcb help 10 --help
expect_rc help 0
[ -s "$T/help.err" ] && fail "--help wrote to stderr"
grep -q '^usage: pcbench' "$T/help.out" || fail "--help has no usage line"
opts=$(sed -n 's/^  --\([a-z-]*\)=VALUE .*/\1/p' "$T/help.out")
[ "$(echo "$opts" | wc -l)" -ge 17 ] || fail "--help lists only $(echo "$opts" | wc -l) options"
for o in mem policy workload vcpus seed zero-pages write-ratio zipf-theta duration ops json host port \
	io-timeout batch window source-delay; do
	line=$(grep -E "^  --$o=VALUE " "$T/help.out")
	[ -n "$line" ] || { fail "--help does not list --$o"; continue; }
	echo "$line" | grep -qE '\[[^]]+\]$' || fail "--help line of --$o has no [default]: $line"
done
grep -q -- '--mem=VALUE .*\[256M\]' "$T/help.out" || fail "--help: --mem default is not [256M]"
grep -q -- '--policy=VALUE .*\[sequential\]' "$T/help.out" || fail "--help: --policy default is not [sequential]"
for o in --verbose --help --version; do grep -q -- "$o" "$T/help.out" || fail "--help does not mention $o"; done
pcb help2 10 -h
expect_rc help2 0
cmp -s "$T/help.out" "$T/help2.out" || fail "-h and --help differ"
# --help wins over a bad value after it and starts nothing
pcb help3 10 --help --mem=abc
expect_rc help3 0

# --version: one line "pcbench X.Y.Z (git REV)", matching what result files record
pcb version 10 --version
expect_rc version 0
[ "$(wc -l <"$T/version.out")" = 1 ] || fail "--version printed $(wc -l <"$T/version.out") lines"
grep -qE '^pcbench [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]{7,}(-dirty)?\)$|^pcbench [0-9]+\.[0-9]+\.[0-9]+ \(git unknown\)$' \
	"$T/version.out" || fail "--version output unexpected: $(cat "$T/version.out")"
pcb version2 10 -V
expect_rc version2 0
cmp -s "$T/version.out" "$T/version2.out" || fail "-V and --version differ"

# list: both sections, the built-in policies and workloads, one help line each
pcb list 10 list
expect_rc list 0
grep -qx 'policies:' "$T/list.out" || fail "list has no 'policies:' section"
grep -qx 'workloads:' "$T/list.out" || fail "list has no 'workloads:' section"
pols=$(list_section policies)
wls=$(list_section workloads)
for p in demand sequential; do echo "$pols" | grep -qx "$p" || fail "list does not show policy $p"; done
for w in seq random zipf; do echo "$wls" | grep -qx "$w" || fail "list does not show workload $w"; done
awk '/^  / && NF < 3 { bad = 1 } END { exit bad }' "$T/list.out" || fail "a list entry has no help text"
# every listed name is accepted by the option parser (checked without running: --help after it)
for p in $pols; do pcb lp 10 --policy="$p" --help; [ "$RC" = 0 ] || fail "listed policy $p rejected"; done
for w in $wls; do pcb lw 10 --workload="$w" --help; [ "$RC" = 0 ] || fail "listed workload $w rejected"; done

# every command's --help comes from the one table: usage line, options with [default], exit codes
for c in source dest floor bench analyze simulate; do
	pcb "h-$c" 10 "$c" --help
	expect_rc "h-$c" 0
	grep -q "^usage: pcbench $c" "$T/h-$c.out" || fail "$c --help has no usage line"
	grep -q '^Exit codes: ' "$T/h-$c.out" || fail "$c --help has no exit codes"
	awk '/^  --[a-z-]+(=VALUE)? / && !/\[[^]]+\]$/ { bad = 1 } END { exit bad }' "$T/h-$c.out" ||
		fail "$c --help: an option line has no [default]"
done
# -v is listed, and accepted, only by the commands that log more with it (the table's scope)
for c in run source dest bench analyze; do
	pcb "v-$c" 10 "$c" -v --help
	expect_rc "v-$c" 0
	grep -q '^  -v, --verbose ' "$T/v-$c.out" || fail "$c --help does not list -v"
done
for c in floor simulate "image stats" "image dump"; do
	n=${c// /-}
	pcb "v-$n" 10 $c -v
	expect_rc "v-$n" 64
	grep -q -- "-v (--verbose) does not apply to .pcbench $c" "$T/v-$n.err" || fail "$c -v: $(cat "$T/v-$n.err")"
	pcb "vh-$n" 10 $c --help
	grep -q -- '--verbose' "$T/vh-$n.out" && fail "$c --help lists --verbose, which it ignores"
done
# an option of another command: one line naming it and the command, exit 64
pcb wrongcmd 10 source --policy=demand
expect_rc wrongcmd 64
grep -q -- "--policy does not apply to .pcbench source" "$T/wrongcmd.err" || fail "source --policy: $(cat "$T/wrongcmd.err")"
# the committed man page is the one the table generates (make man)
pcb man 10 --man
expect_rc man 0
cmp -s "$T/man.out" docs/pcbench.1 || fail "docs/pcbench.1 differs from pcbench --man (run make man)"

# unknown command: usage error, one line
pcb cmd 10 frobnicate
expect_rc cmd 64
[ "$(wc -l <"$T/cmd.err")" = 1 ] || fail "unknown command: want one line on stderr, got: $(cat "$T/cmd.err")"
grep -q frobnicate "$T/cmd.err" || fail "unknown command: message does not name it"

finish
