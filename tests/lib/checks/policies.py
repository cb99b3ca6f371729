"""Checks of tests/integ/policies.sh: the pre-paging policies live."""
import csv
import sys


def down_replay_start(csv_path):
    """--policy=replay on a downward sweep (its install timeline in CSV_PATH): the median page of
    the first 256 background installs is at least 12288 of 16384, i.e. the pull started where
    the trace does (at the top)."""
    bg = sorted((float(r["t_us"]), int(r["page"])) for r in csv.DictReader(open(csv_path))
                if r["event"] == "install" and r["detail"] == "background")
    first = sorted(p for _, p in bg[:256])
    med = first[len(first) // 2]
    print("  first 256 background pages: median page %d of 16384" % med)
    sys.exit(0 if med >= 12288 else 1)


def fewer(fd, f):
    """Not a check: print how many times and what percentage fewer faults F are than demand's FD."""
    fd, f = int(fd), int(f)
    print('%.1fx fewer, %.1f%% fewer' % (fd / max(f, 1), 100 - 100.0 * f / fd))
