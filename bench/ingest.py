"""`loglytics bench ingest` as a script.

The benchmark itself lives in `loglytics/bench/ingest.py`, so that the installed command can
run it."""

import sys

from loglytics.bench.ingest import run

if __name__ == "__main__":
    run(sys.argv[1:])
