"""Stubs for the compiled batch functions.

`loglytics.mining.masking` documents `mask_many`, `loglytics.speedups` the others.
"""

def mask_many(messages: list[str], /) -> tuple[list[str], list[tuple[str, ...]]]: ...
def numbers(texts: list[str], /) -> list[float]: ...
def fold(
    rows: list[tuple[str, ...]], k: int, stats: list[float] | None, /
) -> list[float] | None: ...
