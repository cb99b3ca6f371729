#!/usr/bin/env bash
# Test runner: `run-tests.sh unit BIN...` or `run-tests.sh integ SCRIPT...`.
# Exit status 77 from a test means "skipped" (the test prints why); anything
# else non-zero is a failure.  Prints a summary and fails if any test failed.
set -u
kind=$1; shift
pass=0; fail=0; skip=0; failed=()
log_dir=${BUILD:-build}/test-logs
mkdir -p "$log_dir"
for t in "$@"; do
	name=$(basename "$t")
	log="$log_dir/$name.log"
	start=$(date +%s%N)
	if [ "$kind" = integ ]; then
		timeout --kill-after=10 "${PCB_TEST_TIMEOUT:-600}" bash "$t" >"$log" 2>&1
	else
		timeout --kill-after=10 "${PCB_TEST_TIMEOUT:-300}" "$t" >"$log" 2>&1
	fi
	rc=$?
	ms=$(( ($(date +%s%N) - start) / 1000000 )); secs="$((ms / 1000)).$(( (ms % 1000) / 100 ))"
	case $rc in
	0) pass=$((pass+1)); printf '  PASS  %-40s %6ss\n' "$name" "$secs" ;;
	77) skip=$((skip+1)); printf '  SKIP  %-40s %s\n' "$name" "$(grep -i 'skip' "$log" | tail -1)" ;;
	*) fail=$((fail+1)); failed+=("$name"); printf '  FAIL  %-40s (exit %d, log %s)\n' "$name" "$rc" "$log"
	   # the failed checks first (a CI log keeps only part of a long tail), then the end
	   grep -E '^(FAIL|not ok)|^ *FAIL |\[  (FAILED|ERROR) *\]' "$log" | head -n 10 | sed 's/^/        ! /'
	   tail -n 25 "$log" | sed 's/^/        | /' ;;
	esac
done
echo "$kind tests: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
