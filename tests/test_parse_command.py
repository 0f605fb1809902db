"""`loglytics parse`: one JSON object per event with stable field names, in input order."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from loglytics.cli import main

FORMATS_DIR = Path(__file__).parent / "data" / "formats"
FIELDS = ["timestamp", "level", "component", "message", "format", "lines"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def test_json_events_in_input_order(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(
        "2026-12-01 10:00:00,123 INFO [main] com.shop.App: started\n"
        "2026-12-01 10:00:01,000 ERROR [http-1] com.shop.Checkout: checkout failed\n"
        "java.lang.IllegalStateException: coupon expired\n"
        "\tat com.shop.Checkout.apply(Checkout.java:42)\n"
        "\t... 3 more\n"
        "2026-12-01 10:00:02,000 INFO [main] com.shop.App: ok\n"
    )
    code, out, _ = _run(["parse", "--json", str(log)], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [list(row) for row in rows] == [FIELDS] * 3
    assert [(r["message"], r["lines"], r["level"]) for r in rows] == [
        ("started", 1, "INFO"),
        ("checkout failed", 4, "ERROR"),
        ("ok", 1, "INFO"),
    ]
    assert rows[0]["timestamp"] == pytest.approx(1796119200.123)
    assert rows[0]["component"] == "com.shop.App"
    assert {r["format"] for r in rows} == {"log4j"}


def test_stdin_table_and_forced_format(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (FORMATS_DIR / "android_logcat.log").read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code, out, _ = _run(["parse"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["TIME", "LEVEL", "FORMAT", "LINES", "COMPONENT"]
    assert len(lines) == 1 + len(text.splitlines())
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    code, out, _ = _run(["parse", "--json", "--format", "json"], capsys)
    assert code == 0
    assert {json.loads(line)["format"] for line in out.splitlines()} == {"raw"}


def test_unknown_format_and_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["parse", "--format", "nope", "x.log"], capsys)
    assert code == 2 and "unknown format" in err
    code, _, err = _run(["parse", "/nonexistent/x.log"], capsys)
    assert code == 2 and "No such file" in err
