"""Shared fixtures: the real embedded stack, started once per test session and always stopped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from loglytics.embedded import stack as embedded_stack
from loglytics.embedded.stack import StackState
from loglytics.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
LOGHUB_DIR = Path(os.environ.get("LOGHUB_DIR", REPO_ROOT.parent / "shared" / "data" / "loghub"))


@pytest.fixture(scope="session")
def loghub_dir() -> Path:
    if not LOGHUB_DIR.is_dir():
        pytest.skip(f"Loghub data not found at {LOGHUB_DIR} (set LOGHUB_DIR)")
    return LOGHUB_DIR


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for an isolated embedded stack: own state dir, no external services."""
    state = tmp_path_factory.mktemp("stack")
    return embedded_stack.private_settings(state, broker_session_timeout=3.0)


@pytest.fixture(scope="session")
def stack(stack_settings: Settings) -> Iterator[StackState]:
    """Tansu + llama.cpp on free loopback ports, tied to this pytest process."""
    state = embedded_stack.up(stack_settings, tied=True)
    try:
        yield state
    finally:
        embedded_stack.down(stack_settings)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: StackState) -> str:
    return stack.kafka


@pytest.fixture(scope="session")
def llamacpp_url(stack: StackState) -> str:
    return stack.llamacpp
