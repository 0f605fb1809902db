"""Settings: the brief's defaults, and a bad value fails at start naming its variable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from loglytics.settings import Settings, SettingsError, load_settings

ENV_NAMES = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No variable or `.env` of the developer's shell may leak into the defaults."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    yield


def test_defaults_follow_the_brief() -> None:
    s = load_settings()
    assert s.tier_limits("free") == (100_000, 1_000)
    assert s.tier_limits("pro") == (1_000_000, 10_000)
    assert (s.free_tokens_per_month, s.free_calls_per_day) == (100_000, 1_000)
    assert (s.pro_tokens_per_month, s.pro_calls_per_day) == (1_000_000, 10_000)
    assert s.window_seconds == 60.0
    assert s.ollama_model == "llama3.2:3b"
    assert s.vllm_model == "meta-llama/Llama-4-Maverick-17B-128E-Instruct"
    assert s.kafka_bootstrap_servers == "" and s.embedded_kafka
    assert s.clickhouse_dsn.startswith("chdb://")
    assert s.log_level == "INFO"
    assert s.max_line_bytes == 65_536
    assert s.stack_file == s.state_dir / "stack.json"


def test_environment_and_dotenv_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WINDOW_SECONDS", "30")
    monkeypatch.setenv("log_level", "debug")
    (tmp_path / ".env").write_text("FREE_CALLS_PER_DAY=5\nOLLAMA_MODEL=qwen2.5:0.5b\n")
    s = load_settings()
    assert s.window_seconds == 30.0
    assert s.log_level == "DEBUG"  # case-insensitive, normalised
    assert s.free_calls_per_day == 5
    assert s.ollama_model == "qwen2.5:0.5b"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WINDOW_SECONDS", "abc"),
        ("WINDOW_SECONDS", "0"),
        ("WINDOW_SECONDS", "-5"),
        ("FREE_TOKENS_PER_MONTH", "-1"),
        ("PRO_CALLS_PER_DAY", "lots"),
        ("WEB_PORT", "70000"),
        ("LOG_LEVEL", "chatty"),
        ("CLICKHOUSE_DSN", "mysql://db"),
        ("TOPIC_PARTITIONS", "0"),
        ("MAX_LINE_BYTES", "1.5"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert name in str(info.value)
    assert str(info.value).startswith("invalid configuration")


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValueError):
        s.window_seconds = 5  # type: ignore[misc]


def test_resolved_reads_the_stack_file(tmp_path: Path) -> None:
    s = load_settings(state_dir=tmp_path / "state")
    assert s.resolved() is s  # no stack file
    s.stack_file.parent.mkdir(parents=True)
    s.stack_file.write_bytes(b"{broken")
    assert s.resolved() is s
    s.stack_file.write_bytes(orjson.dumps({"kafka": "127.0.0.1:1234", "llamacpp": "http://x"}))
    r = s.resolved()
    assert r.kafka_bootstrap_servers == "127.0.0.1:1234" and r.kafka_embedded
    assert r.llamacpp_base_url == "http://x"
    external = load_settings(state_dir=tmp_path / "state", kafka_bootstrap_servers="k:9092")
    assert external.resolved().kafka_bootstrap_servers == "k:9092"  # configured wins


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.upper() not in ENV_NAMES}
    return subprocess.run(
        [sys.executable, "-m", "loglytics", *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_exits_2_naming_the_variable(tmp_path: Path) -> None:
    done = _cli(tmp_path, "stack", "status", WINDOW_SECONDS="abc")
    assert done.returncode == 2, done.stderr
    assert "WINDOW_SECONDS" in done.stderr
    assert "Traceback" not in done.stderr
    # The worker command fails the same way, before any service is started.
    done = _cli(tmp_path, "worker", CLICKHOUSE_DSN="ftp://nope")
    assert done.returncode == 2, done.stderr
    assert "CLICKHOUSE_DSN" in done.stderr
    assert not (tmp_path / ".loglytics").exists()
