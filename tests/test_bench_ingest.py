"""The ingest bench's absorb probe: reading the workers' parsed-lines counter, and its span."""

from __future__ import annotations

from loglytics.bench.workers import AbsorbProbe, parsed_lines

PAGE = """# HELP loglytics_lines_parsed_total Log lines parsed and windowed
# TYPE loglytics_lines_parsed_total counter
loglytics_lines_parsed_total{format="auto"} 1500.0
loglytics_lines_parsed_total{format="log4j"} 500.0
loglytics_lines_parsed_created{format="auto"} 1.7961192e+09
loglytics_events_joined_total 12.0
"""


def test_parsed_lines_sums_the_counter_over_its_labels() -> None:
    assert parsed_lines(PAGE) == 2000.0
    assert parsed_lines("") == 0.0
    assert parsed_lines('loglytics_lines_parsed_total{format="x"} garbage') == 0.0


def test_the_span_counts_from_the_first_reading_that_moved() -> None:
    probe = AbsorbProbe([1], target=1000)
    assert probe.span() is None
    probe.first = (10.0, 250.0)  # the first reading already holds one ingest batch
    probe.last = (12.0, 1000.0)
    assert probe.span() == (2.0, 750)
    probe.last = (10.0, 1000.0)  # everything in one batch: no rate to speak of
    assert probe.span() is None
