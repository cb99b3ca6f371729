# Shared helpers for the network integration tests (tests/integ/net_*.sh).
# Source it after tests/lib/integ.sh (which sets T and PCBENCH).  Here a failed
# check stops the test at once: the steps of a network test depend on each other.
P=$PCBENCH
fail() { echo "FAIL: $*"; exit 1; }

# start_source NAME ARGS...: run `pcbench source` in the background (stdout/stderr
# in $T/NAME.out), wait until it listens; sets SRC_PID and SRC_PORT.
start_source() {
	local name=$1; shift
	"$@" >"$T/$name.out" 2>&1 &
	SRC_PID=$!
	for _ in $(seq 100); do
		SRC_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$T/$name.out")
		[ -n "$SRC_PORT" ] && return 0
		kill -0 $SRC_PID 2>/dev/null || fail "source $name did not start: $(cat "$T/$name.out")"
		sleep 0.05
	done
	fail "source $name did not report its port"
}

