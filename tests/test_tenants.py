"""`loglytics tenants add|list|set-tier` against the session's broker (no worker needed).

The compacted `tenants` topic is the source of truth: `add` prints the new key
once and stores only its hash; `list` never prints keys or hashes; `set-tier`
rewrites the current record. Tier changes reaching a running worker are
covered in `test_requests_faults.py`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from test_requests_support import cli_env, uid

from loglytics.commands.tenants import read_tenants
from loglytics.embedded.stack import StackState
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import hash_api_key


def tenants_cli(stack: StackState, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loglytics", "tenants", *args],
        env=cli_env(stack, tmp),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_add_list_set_tier(stack: StackState, tmp_path: Path) -> None:
    name = f"acme-{uid()}"
    added = tenants_cli(stack, tmp_path, "add", name, "--tier", "pro")
    assert added.returncode == 0, added.stderr
    key = added.stdout.strip()
    assert key.startswith("llk_") and "\n" not in key
    assert "only once" in added.stderr

    again = tenants_cli(stack, tmp_path, "add", name)  # a second key; tier kept
    second = again.stdout.strip()
    record = asyncio.run(read_tenants(KafkaConnection(stack.kafka)))[name]
    assert record.tier == "pro" and record.enabled
    assert record.api_key_hashes == [hash_api_key(key), hash_api_key(second)]
    assert record.accepts(key) and record.accepts(second) and not record.accepts("llk_x")

    listed = tenants_cli(stack, tmp_path, "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(name))
    assert row == [name, "pro", "yes"]
    for secret in (key, second, *record.api_key_hashes):
        assert secret not in listed.stdout

    moved = tenants_cli(stack, tmp_path, "set-tier", name, "free")
    assert moved.returncode == 0, moved.stderr
    after = asyncio.run(read_tenants(KafkaConnection(stack.kafka)))[name]
    assert after.tier == "free" and after.api_key_hashes == record.api_key_hashes
    assert after.updated_at >= record.updated_at


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("set-tier", "no-such-tenant-x1", "pro"), 1),
        (("add", "bad/name"), 2),
        (("add",), 2),
        (("set-tier", "someone"), 2),
    ],
)
def test_cli_refusals(
    stack: StackState, tmp_path: Path, args: tuple[str, ...], status: int
) -> None:
    result = tenants_cli(stack, tmp_path, *args)
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "llk_" not in result.stdout
