"""`loglytics findings`: print findings from the `findings` topic.

It reads the topic (not ClickHouse), so it works while the worker holds the
embedded ClickHouse, and it needs no consumer group: it never moves anyone's
offsets.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time

from rich.console import Console

from loglytics.commands import broker
from loglytics.kafka_clients import KafkaConnection
from loglytics.schemas import DecodeError, Finding
from loglytics.topics import FINDINGS

SEVERITY_STYLE = {
    "low": "cyan",
    "medium": "yellow",
    "high": "bold red",
    "critical": "bold white on red",
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd]?)$")


def parse_duration(text: str) -> float:
    """'90', '30s', '15m', '2h', '1d' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 30s, 15m, 2h, 1d)")
    value, unit = float(match.group(1)), match.group(2) or "s"
    return value * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def format_finding(f: Finding) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(f.window_start))
    return (
        f"[{SEVERITY_STYLE[f.severity]}]{f.severity.upper():8s}[/] {when} "
        f"{f.tenant}/{f.source} [{f.kind}/{f.category}] {f.title} "
        f"[dim]({f.model_used}, {f.tokens_used} tok)[/]"
    )


async def follow(
    kafka: KafkaConnection, tenant: str | None, since: float, forever: bool, as_json: bool
) -> int:
    consumer = kafka.consumer(
        FINDINGS.name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    console = Console(highlight=False)
    await consumer.start()
    seen: set[str] = set()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            if not batch and not forever:
                break
            for records in batch.values():
                for rec in records:
                    try:
                        finding = Finding.from_bytes(rec.value or b"")
                    except DecodeError:
                        continue
                    if tenant and finding.tenant != tenant:
                        continue
                    if finding.created_at < since or finding.finding_id in seen:
                        continue
                    seen.add(finding.finding_id)
                    if as_json:
                        sys.stdout.write(finding.to_bytes().decode() + "\n")
                        sys.stdout.flush()
                    else:
                        console.print(format_finding(finding))
    finally:
        await consumer.stop()
    return len(seen)


def run(args: argparse.Namespace) -> int:
    kafka = broker()
    if kafka is None:
        return 2
    try:
        since = time.time() - parse_duration(args.since)
    except argparse.ArgumentTypeError as exc:
        print(f"loglytics findings: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(follow(kafka, args.tenant, since, args.follow, args.json))
    except KeyboardInterrupt:
        pass
    return 0
