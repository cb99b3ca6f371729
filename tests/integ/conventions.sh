#!/usr/bin/env bash
# The integration tests keep their conventions (docs/testing.md): every script is named
# lower_case_with_underscores.sh and sources tests/lib/integ.sh; no Python check is written
# inline (a `python3 -` heredoc or a `python3 -c` snippet) but named in tests/lib/checks/;
# every check a script names exists, every check is used by a script, and every check has a
# docstring saying what it asserts.  Runs no pcbench.
. "$(dirname "$0")/../lib/integ.sh"

{
for f in tests/integ/*.sh; do
	n=$(basename "$f")
	[[ $n =~ ^[a-z0-9]+(_[a-z0-9]+)*\.sh$ ]] || echo "$n: not lower_case_with_underscores.sh"
	grep -qx '\. "$(dirname "$0")/../lib/integ.sh"' "$f" || echo "$n: does not source tests/lib/integ.sh"
	# allowed inline: a probe for a module (-c 'import scipy.stats'), and a test subject that
	# is not a check (image_file.sh dumps a Python process holding a known buffer)
	[ "$n" = conventions.sh ] && continue
	grep -nE '(python3?|"\$py"|\$py) +(-$|- |-c)' "$f" | grep -v '^[0-9]*:[[:space:]]*#' |
		grep -vE -- "-c 'import [A-Za-z_.]+' " |
		if [ "$n" = image_file.sh ]; then grep -v ':python3 -c "$'; else cat; fi |
		sed "s/^/$n: inline Python, make it a named check in tests\/lib\/checks\/: /"
done

$CHECK --list >"$T/list" || echo "tests/lib/check --list failed"
[ -s "$T/list" ] || echo "tests/lib/check --list lists nothing"
awk '{ print $1 }' "$T/list" | sort >"$T/defined"
grep -ohE '(\$CHECK|tests/lib/check) +[a-z_]+\.[a-z0-9_]+' tests/integ/*.sh | awk '{ print $2 }' | sort -u >"$T/used"
comm -13 "$T/defined" "$T/used" | sed 's/$/: run by a script, not defined in tests\/lib\/checks\//'
comm -23 "$T/defined" "$T/used" | sed 's/$/: defined in tests\/lib\/checks\/, run by no script/'
awk 'NF < 2 { print $1 ": no docstring" }' "$T/list"
} >"$T/bad"

while IFS= read -r l; do fail "$l"; done <"$T/bad"
echo "$(wc -l <"$T/defined") named checks in tests/lib/checks/, $(ls tests/integ/*.sh | wc -l) scripts"
finish
