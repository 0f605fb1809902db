"""`loglytics bench mining` as a script.

The benchmark itself lives in `loglytics/bench/mining.py`, so that the installed command can
run it."""

import sys

from loglytics.bench.mining import run

if __name__ == "__main__":
    run(sys.argv[1:])
