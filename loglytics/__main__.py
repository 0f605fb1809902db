"""`python -m loglytics` is the `loglytics` command."""

from loglytics.cli import main

main()
