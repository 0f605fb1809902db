"""The columnar hot path against its line-by-line definitions.

Why a file of its own: ingest parses, masks and mines whole batches at once
(`parse_columns`, `parse_timestamps`, `mine_columns`) for speed, and each of
those promises to equal the per-line code it replaces. These tests hold
them to it on the real Loghub samples, on synthetic traffic, and on random
mutations that must either give the same answer or fall back.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mined_lines import process_lines

from loglytics.ingest.pipeline import Decoded, SourcePipeline
from loglytics.mining import MinedLine, TemplateMiner
from loglytics.parsing import FORMATS, LineParser
from loglytics.parsing.layouts import RegexLayout
from loglytics.parsing.loghub import SYSTEMS, load
from loglytics.parsing.timestamps import TimestampCache, parse_timestamp, parse_timestamps
from loglytics.synthetic import mixed_lines

T0 = 1_796_000_000.0


def _settled(lines: list[str], fmt: str | None = None) -> LineParser:
    """A parser past its detection probe (the only state in which it answers in columns)."""
    parser = LineParser(format=fmt, default_year=2005)
    parser.parse_many(lines[:16])
    return parser


def _assert_same(parser: LineParser, reference: LineParser, lines: list[str]) -> bool:
    """Columns equal line-by-line parsing whenever they answer; True if they answered."""
    columns = parser.parse_columns(lines)
    expected = reference.parse_many(lines)
    if columns is None:
        parser.parse_many(lines)  # keep both parsers in the same state
        return False
    assert columns.timestamps == [p.timestamp for p in expected]
    assert columns.levels == [p.level for p in expected]
    assert columns.messages == [p.message for p in expected]
    return True


@pytest.mark.parametrize("system", SYSTEMS)
def test_loghub_columns_equal_line_by_line(loghub_dir: Path, system: str) -> None:
    lines = load(system, loghub_dir).lines
    parser, reference = _settled(lines), _settled(lines)
    answered = [
        _assert_same(parser, reference, lines[i : i + 250]) for i in range(16, len(lines), 250)
    ]
    assert all(answered)  # real logs of a settled layout take the batch path


def test_synthetic_sources_take_the_batch_path() -> None:
    by_source: dict[str, list[str]] = {}
    for source, line in mixed_lines(6000, T0, 1000.0, seed=3):
        by_source.setdefault(source, []).append(line)
    assert len(by_source) == 5
    for lines in by_source.values():
        parser, reference = _settled(lines), _settled(lines)
        assert all(
            _assert_same(parser, reference, lines[i : i + 200]) for i in range(16, len(lines), 200)
        )


MUTATIONS = (
    lambda s: s + "  ",
    lambda s: "",
    lambda s: s[: len(s) // 2],
    lambda s: s + "\n" + s,
    lambda s: " " + s,
    lambda s: s.replace(" ", "\t", 1),
    lambda s: s + "\r",
    lambda s: s.replace(":", "", 1),
    lambda s: s.upper(),
    lambda s: "{" + s + "}",
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    system=st.sampled_from(SYSTEMS),
    start=st.integers(0, 1800),
    edits=st.lists(st.tuples(st.integers(0, 49), st.integers(0, len(MUTATIONS) - 1)), max_size=4),
    forced=st.booleans(),
)
def test_mutated_batches_agree_or_fall_back(
    loghub_dir: Path, system: str, start: int, edits: list[tuple[int, int]], forced: bool
) -> None:
    lines = load(system, loghub_dir).lines
    probe = _settled(lines)
    fmt = probe.format if forced else None
    parser, reference = _settled(lines, fmt), _settled(lines, fmt)
    batch = list(lines[start : start + 50])
    for index, mutation in edits:
        batch[index] = MUTATIONS[mutation](batch[index])
    _assert_same(parser, reference, batch)
    assert parser.format == reference.format


@pytest.mark.parametrize("name", [n for n, f in FORMATS.items() if isinstance(f, RegexLayout)])
def test_every_regex_layout_has_a_batch_form(name: str) -> None:
    layout = FORMATS[name]
    assert isinstance(layout, RegexLayout)
    example = layout.example
    columns = layout.parse_columns([example, example], TimestampCache(2005))
    single = layout.parse(example, TimestampCache(2005))
    assert columns is not None and single is not None
    assert columns.messages == [single.message] * 2
    assert columns.levels == [single.level] * 2
    assert columns.timestamps == [single.timestamp] * 2


JSON_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "timestamp": st.sampled_from(
            ["2026-11-30T04:27:00.035Z", "2026-11-30 04:27:01,5", "1796012820", "junk", ""]
        )
        | st.integers(0, 2_000_000_000_000),
        "level": st.sampled_from(["INFO", "warning", "Err", "x"]) | st.integers(0, 60),
        "message": st.text(max_size=20) | st.integers() | st.none(),
        "msg": st.text(max_size=20),
        "logger": st.text(max_size=8),
        "n": st.integers(-(2**70), 2**70) | st.floats(allow_nan=False),
    },
)


@settings(max_examples=200, deadline=None)
@given(objs=st.lists(JSON_FIELDS, min_size=1, max_size=12))
def test_json_columns_equal_line_by_line(objs: list[dict[str, object]]) -> None:
    lines = [
        json.dumps(o, ensure_ascii=False) if i % 2 else json.dumps(o) for i, o in enumerate(objs)
    ]
    layout = FORMATS["json"]
    columns = layout.parse_columns(lines, TimestampCache(2026))
    expected = [layout.parse(line, TimestampCache(2026)) for line in lines]
    if columns is None:
        return
    assert all(p is not None for p in expected)
    assert columns.messages == [p.message for p in expected if p]
    assert columns.levels == [p.level for p in expected if p]
    assert columns.timestamps == [p.timestamp for p in expected if p]


STAMPS = st.sampled_from(
    [
        "2026-11-30T04:27:00.035Z",
        "2026-11-30T04:27:00Z",
        "2026-11-30 04:27:00,123456789",
        "2026-11-30T04:27:00+02:00",
        "2026-11-30T04:27:00 -0130",
        "2026-11-30T04:27:00 ",
        " 2026-11-30T04:27:00",
        "2026-02-30T04:27:00",
        "2026-11-30T04:27:00\n",
        "1796012820",
        "Nov 30 04:27:00",
        "",
    ]
)


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(STAMPS, min_size=1, max_size=10))
def test_parse_timestamps_equals_parse_timestamp(texts: list[str]) -> None:
    expected = [parse_timestamp(t, TimestampCache(2026)) for t in texts]
    assert parse_timestamps(texts, TimestampCache(2026)) == expected


@pytest.mark.parametrize("system", SYSTEMS)
def test_mine_columns_ends_where_add_many_ends(loghub_dir: Path, system: str) -> None:
    """Batch mining resolves every line to the template line-by-line mining resolves it to."""
    messages = [p.message for p in LineParser().parse_many(load(system, loghub_dir).lines)]
    by_line, by_batch = TemplateMiner(), TemplateMiner()
    line_ids: list[str] = []
    batch_ids: list[str] = []
    for i in range(0, len(messages), 250):
        chunk = messages[i : i + 250]
        line_ids += [m.template_id for m in by_line.add_many(chunk, float(i))]
        batch_ids += by_batch.mine_columns(chunk, float(i)).template_ids
    assert [by_batch.resolve(t) for t in batch_ids] == [by_line.resolve(t) for t in line_ids]
    assert by_batch.templates() == by_line.templates()


def _resolved(lines: list[MinedLine], miner: TemplateMiner) -> list[tuple[object, ...]]:
    return [(m.ts, m.level, miner.resolve(m.template_id), m.message, m.flagged) for m in lines]


def test_pipeline_columns_equal_line_objects() -> None:
    """`process_batch` (columns) and `process` (objects) agree line for line on mixed traffic.

    Within a batch, a line that generalises a template moves the batch's earlier
    lines of it along (see `mine_columns`), so lines are compared by the
    template they resolve to, and both miners must end with the same templates.
    """
    rnd = random.Random(5)
    sources: dict[str, list[str]] = {}
    for source, line in mixed_lines(3000, T0, 1000.0, seed=8):
        sources.setdefault(source, []).append(line)
    for source, lines in sources.items():
        a, b = SourcePipeline("acme", source), SourcePipeline("acme", source)
        for i in range(0, len(lines), 120):
            chunk = lines[i : i + 120]
            if rnd.random() < 0.2:
                chunk[rnd.randrange(len(chunk))] = "not a log line at all"
            decoded = Decoded("acme", source, None, chunk)
            got = b.process_batch(decoded, T0 + 900).lines()
            want = process_lines(a, decoded, T0 + 900)[0]
            assert [
                (m.ts, m.level, b.miner.resolve(m.template_id), m.message, m.flagged) for m in got
            ] == [
                (m.ts, m.level, a.miner.resolve(m.template_id), m.message, m.flagged) for m in want
            ]
        assert b.miner.templates() == a.miner.templates()
