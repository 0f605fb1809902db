"""`loglytics bench providers` as a script.

The benchmark itself lives in `loglytics/bench/providers.py`, so that the installed command can
run it."""

import sys

from loglytics.bench.providers import run

if __name__ == "__main__":
    run(sys.argv[1:])
