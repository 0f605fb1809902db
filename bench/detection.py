"""`loglytics bench detection` as a script.

The benchmark itself lives in `loglytics/bench/detection.py`, so that the installed command can
run it."""

import sys

from loglytics.bench.detection import run

if __name__ == "__main__":
    run(sys.argv[1:])
