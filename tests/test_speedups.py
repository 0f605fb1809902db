"""The compiled batch functions must agree exactly with the Python definitions.

The pure-Python `Masker.mask` and `number` are the reference; these tests
compare the compiled `loglytics._speedups` with them on generated text
(digits, value punctuation, literal marks, non-ASCII and lone surrogates), so
a difference in the C scan shows up as a counterexample rather than as a
subtly different template downstream.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loglytics import speedups
from loglytics.mining import masking
from loglytics.mining.masking import Masker
from loglytics.speedups import number

MASKER = Masker()

_MASK_PIECES = [
    *"0123456789",
    *"aZfx",
    *"_.:-",
    " ",
    "=",
    "<*>",
    "<",
    "*",
    ">",
    "<*",
    "*>",
    "é",
    "中",
    "😀",
    "\ud800",
    "٣",
    "latency_ms=",
    "10.0.0.1:8080",
]
_NUMBER_PIECES = [
    *"0123456789",
    "-",
    ".",
    "ms",
    "%",
    "kB",
    "e5",
    "1_000",
    "_",
    "inf",
    "nan",
    "1e999",
    "٣",
    "\u00b2",
    " ",
    "\x1c",
    "é",
    "\ud800",
    "x",
    ":",
    "+",
    "E",
    "Infinity",
]


def _joined(pieces: list[str], max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=max_size).map("".join)


_messages = st.one_of(
    _joined(_MASK_PIECES, 30),
    st.text(max_size=40),
    st.text(alphabet="0123456789aZ_.:- <*>é中😀\ud800", max_size=40),
)
_texts = st.one_of(_joined(_NUMBER_PIECES, 8), st.text(max_size=12))


def _same_floats(got: list[float], expected: Sequence[float | None]) -> bool:
    """Equal element-wise, NaN standing for None (and never a real result)."""
    if len(got) != len(expected):
        return False
    for g, e in zip(got, expected, strict=True):
        if type(g) is not float:
            return False
        if e is None:
            if not math.isnan(g):
                return False
        elif g != e or math.copysign(1.0, g) != math.copysign(1.0, e):
            return False
    return True


def test_compiled_extension_is_in_use() -> None:
    # CI builds the extension; a silent fallback to Python would only show as slowness.
    # (The other tests run whichever is in use, so they still check a fallback.)
    from loglytics import _speedups

    assert speedups.COMPILED
    assert masking.mask_many is _speedups.mask_many
    assert speedups.numbers is _speedups.numbers
    assert speedups.fold is _speedups.fold


@pytest.mark.parametrize(
    "module", ["loglytics.speedups", "loglytics.mining.masking", "loglytics.ingest.windows"]
)
def test_imports_first_without_a_cycle(module: str) -> None:
    # loglytics.mining imports speedups, so speedups must not import mining.
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)


@settings(max_examples=400, deadline=None)
@given(st.lists(_messages, max_size=5))
def test_mask_many_matches_masker(messages: list[str]) -> None:
    shapes, values = masking.mask_many(messages)
    expected = [MASKER.mask(m) for m in messages]
    assert type(shapes) is list and type(values) is list
    assert shapes == [shape for shape, _ in expected]
    assert values == [params for _, params in expected]
    assert all(type(v) is tuple for v in values)


@settings(max_examples=400, deadline=None)
@given(st.lists(_texts, max_size=5))
def test_numbers_matches_number(texts: list[str]) -> None:
    assert _same_floats(speedups.numbers(texts), [number(t) for t in texts])


@settings(max_examples=300, deadline=None)
@given(st.lists(_messages, max_size=5), st.lists(_texts, max_size=5))
def test_fallback_matches_compiled(messages: list[str], texts: list[str]) -> None:
    assert masking._mask_many(messages) == masking.mask_many(messages)
    fallback = speedups._numbers(texts)
    assert _same_floats(speedups.numbers(texts), [None if x != x else x for x in fallback])


def test_mask_many_examples() -> None:
    messages = [
        "GET /api/v2 status=200 in 523ms from 10.0.0.1:8080",
        "fe12 id=42. at 12:30:01",
        "literal <*> and 7",
        "only <*>",
        "",
        "中文 3x é",
        "\ud800 9",
    ]
    shapes, values = masking.mask_many(messages)
    assert shapes == [
        "GET /api/v<*> status=<*> in <*> from <*>",
        "fe<*> id=<*> at <*>",
        "literal <?> and <*>",
        "only <?>",
        "",
        "中文 <*> é",
        "\ud800 <*>",
    ]
    assert values == [
        ("2", "200", "523ms", "10.0.0.1:8080"),
        ("12", "42.", "12:30:01"),
        ("7",),
        (),
        (),
        ("3x",),
        ("9",),
    ]


def test_mask_many_returns_unmasked_messages_themselves() -> None:
    message = "".join(["connection reset by peer", " é"])  # a fresh, non-interned str
    shapes, values = masking.mask_many([message])
    assert shapes[0] is message
    assert values == [()]


def test_numbers_examples() -> None:
    got = speedups.numbers(
        ["523ms", "-1.5", "1_000", "٣", "1e5%", "inf", "1e999", "-", ".", "abc", "", "12KB", ".5"]
    )
    nan = math.nan
    expected = [523.0, -1.5, 1000.0, 3.0, 1e5, nan, nan, nan, nan, nan, nan, 12.0, 0.5]
    assert [g if g == g else None for g in got] == [e if e == e else None for e in expected]


@pytest.mark.parametrize("func", [masking.mask_many, speedups.numbers])
def test_bad_input_raises_type_error(func: Callable[[Any], object]) -> None:
    with pytest.raises(TypeError):
        func(("a", "b"))
    with pytest.raises(TypeError):
        func(["a", 1])
    with pytest.raises(TypeError):
        func(["1", b"2"])


_rows = st.lists(st.lists(_texts, max_size=4).map(tuple), max_size=8)
_stats = st.none() | st.tuples(
    st.integers(1, 10**6), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(-1e9, 1e9)
).map(list)


def _same_stats(got: list[float] | None, want: list[float] | None) -> bool:
    """Equal, with signed zeros told apart (min and max must keep the one Python keeps)."""
    if got is None or want is None:
        return got is want
    return got[0] == want[0] and type(got[0]) is int and _same_floats(got[1:], want[1:])


@settings(max_examples=500, deadline=None)
@given(rows=_rows, k=st.integers(-1, 4), stats=_stats)
def test_fold_matches_its_definition(
    rows: list[tuple[str, ...]], k: int, stats: list[float] | None
) -> None:
    want = speedups._fold(rows, k, None if stats is None else list(stats))
    given_stats = None if stats is None else list(stats)
    got = speedups.fold(rows, k, given_stats)
    assert _same_stats(got, want)
    if given_stats is not None:
        assert got is given_stats  # updated in place, as the windows keep the list


def test_fold_examples() -> None:
    rows = [("12", "x"), ("-1.5ms",), ("0", "7%"), ("1e999",), ("3",)]
    assert speedups.fold(rows, 0, None) == [4, -1.5, 12.0, 13.5]
    assert speedups.fold(rows, 1, None) == [1, 7.0, 7.0, 7.0]
    assert speedups.fold(rows, 2, None) is None
    stats = [2, 5.0, 9.0, 14.0]
    assert speedups.fold(rows, 1, stats) == [3, 5.0, 9.0, 21.0]
    with pytest.raises(TypeError):
        speedups.fold([["1"]], 0, None)  # type: ignore[list-item]  # wrong on purpose
    with pytest.raises(TypeError):
        speedups.fold([(1,)], 0, None)  # type: ignore[list-item]  # wrong on purpose
    with pytest.raises(TypeError):
        speedups.fold([("1",)], 0, [1, 2.0])
