#!/usr/bin/env bash
# analysis/plots.sh RESULTS_DIR: regenerate the summary and figures of a `pcbench bench` results
# directory without re-running anything: `pcbench analyze` (tidy CSV, descriptive summary.csv, plot
# data), analysis/stats.py (SciPy: intervals, tests, findings -> summary.md, summary.tex, stats.csv,
# headline plot data), then one gnuplot script per figure, each to PDF (papers) and PNG (quick looks)
# in RESULTS_DIR/figures/.  `make plots RESULTS=dir` calls this.  PCBENCH overrides the pcbench
# binary (default ./pcbench); PYTHON the interpreter with SciPy (default Debian's /usr/bin/python3).
set -euo pipefail
dir=${1:?usage: analysis/plots.sh RESULTS_DIR}
[ -d "$dir" ] || { echo "plots: '$dir' is not a directory" >&2; exit 64; }
dir=$(cd "$dir" && pwd -P)          # absolute, before moving to the repository root
cd "$(dirname "$0")/.."
pcbench=${PCBENCH:-./pcbench}
command -v gnuplot >/dev/null || { echo "plots: gnuplot is not installed (make deps)" >&2; exit 69; }
"$pcbench" analyze "$dir"
python=${PYTHON:-/usr/bin/python3}
"$python" analysis/stats.py "$dir" || { echo "plots: analysis/stats.py failed (python3-scipy: make deps)" >&2; exit 70; }
mkdir -p "$dir/figures"
n=0
for script in analysis/fig[0-9]*.gp; do
	name=$(basename "$script" .gp)
	for term in pdf png; do
		out="$dir/figures/$name.$term"
		rm -f "$out"
		if ! gnuplot -e "dir='$dir'; term='$term'" "$script" 2>"$dir/figures/$name.$term.log"; then
			echo "plots: gnuplot failed on $script ($term):" >&2
			sed 's/^/    | /' "$dir/figures/$name.$term.log" >&2
			exit 70
		fi
		[ -s "$out" ] || { echo "plots: $script wrote no $out" >&2; exit 70; }
		# keep gnuplot's warnings only if there were any
		[ -s "$dir/figures/$name.$term.log" ] || rm -f "$dir/figures/$name.$term.log"
		n=$((n + 1))
	done
done
echo "plots: $n figure files in $dir/figures (summary: $dir/summary.md, $dir/summary.tex)"
