"""`loglytics incidents list|show|ack|resolve|mute|unmute`: incidents and feedback on them.

`list` and `show` read the `incidents` topic (each incident's latest version),
so they work while the worker holds the embedded ClickHouse and move nobody's
offsets. `ack`, `resolve`, `mute` and `unmute` write a record to the compacted
`incident-feedback` topic, keyed so that it lands on the tenant's partition
(see `loglytics.schemas.feedback`); the worker's incidents stage applies it and
its sink mirrors it to ClickHouse. `mute --incident ID` mutes that incident's
signature: its templates on its sources. The options are `loglytics.cli`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import orjson
from rich.console import Console
from rich.table import Table

from loglytics.commands import broker
from loglytics.commands.findings import SEVERITY_STYLE, parse_duration
from loglytics.kafka_clients import KafkaConnection
from loglytics.partitioning import tenant_partitioner
from loglytics.schemas import (
    MAX_MUTE_SECONDS,
    MUTE_REASONS,
    DecodeError,
    Incident,
    IncidentFeedback,
    Mute,
    mute_id,
)
from loglytics.topics import FEEDBACK, INCIDENTS


async def read_incidents(kafka: KafkaConnection, tenant: str | None) -> dict[str, Incident]:
    """Every incident's latest version on the topic (of one tenant, if given)."""
    consumer = kafka.consumer(
        INCIDENTS.name, auto_offset_reset="earliest", enable_auto_commit=False
    )
    latest: dict[str, Incident] = {}
    await consumer.start()
    try:
        while batch := await consumer.getmany(timeout_ms=1500, max_records=5000):
            for records in batch.values():
                for rec in records:
                    try:
                        inc = Incident.from_bytes(rec.value or b"")
                    except DecodeError:
                        continue
                    held = latest.get(inc.incident_id)
                    if (tenant is None or inc.tenant == tenant) and (
                        held is None or inc.version >= held.version
                    ):
                        latest[inc.incident_id] = inc
    finally:
        await consumer.stop()
    return latest


async def send_feedback(kafka: KafkaConnection, record: IncidentFeedback) -> None:
    """One feedback record, on the partition of the tenant's findings (the key's prefix)."""
    producer = kafka.producer(partitioner=tenant_partitioner)
    await producer.start()
    try:
        await producer.send_and_wait(FEEDBACK.name, key=record.key, value=record.to_bytes())
    finally:
        await producer.stop()


def _table(incidents: list[Incident]) -> Table:
    table = Table(title="incidents", expand=True)
    for col in ("incident_id", "status", "severity", "tenant", "sources", "opened", "findings"):
        table.add_column(col, no_wrap=True)
    table.add_column("title", overflow="ellipsis", no_wrap=True)
    for inc in incidents:
        status = inc.status + (" (ack)" if inc.acknowledged and inc.status == "open" else "")
        table.add_row(
            inc.incident_id,
            status,
            f"[{SEVERITY_STYLE[inc.severity]}]{inc.severity}[/]",
            inc.tenant,
            ",".join(inc.sources),
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(inc.opened_at)),
            str(inc.findings_count),
            inc.title,
            style="dim" if inc.status == "resolved" else None,
        )
    return table


async def _list_or_show(kafka: KafkaConnection, args: argparse.Namespace) -> int:
    incidents = await read_incidents(kafka, args.tenant)
    if args.action == "show":
        incident = incidents.get(args.id or "")
        if incident is None:
            print(f"loglytics incidents: no incident {args.id!r}", file=sys.stderr)
            return 1
        sys.stdout.write(orjson.dumps(incident.to_json(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        return 0
    shown = sorted(
        (i for i in incidents.values() if args.all or i.status == "open"),
        key=lambda i: -i.opened_at,
    )
    if args.json:
        for inc in shown:
            sys.stdout.write(inc.to_bytes().decode() + "\n")
    else:
        Console(highlight=False).print(_table(shown))
    return 0


async def _mute(kafka: KafkaConnection, args: argparse.Namespace, now: float) -> Mute | str:
    """The mute the options describe, or what is wrong with them."""
    templates, sources = list(args.template), list(args.source)
    if args.incident:
        incident = (await read_incidents(kafka, args.tenant)).get(args.incident)
        if incident is None:
            return f"no incident {args.incident!r} of tenant {args.tenant!r}"
        templates += incident.template_ids
        sources = sources or list(incident.sources)
    if not templates:
        return "mute needs --template ID or --incident ID"
    if args.reason is None:
        return f"mute needs --reason ({', '.join(MUTE_REASONS)})"
    duration = parse_duration(args.duration) if args.duration else None
    if duration is not None and not 0 < duration <= MAX_MUTE_SECONDS:
        return f"--for must be more than 0 and at most {MAX_MUTE_SECONDS // 86_400} days"
    until = now + duration if duration is not None else None
    return Mute(
        mute_id=mute_id(args.tenant, templates, sources, now),
        tenant=args.tenant,
        template_ids=list(dict.fromkeys(templates)),
        sources=sources,
        incident_id=args.incident or "",
        reason=args.reason,
        created_at=now,
        until=until,
    )


async def _feedback(kafka: KafkaConnection, args: argparse.Namespace) -> int:
    now = time.time()
    if not args.tenant:
        print(f"loglytics incidents: {args.action} needs --tenant", file=sys.stderr)
        return 2
    mute: Mute | None = None
    if args.action == "mute":
        made = await _mute(kafka, args, now)
        if isinstance(made, str):
            print(f"loglytics incidents: {made}", file=sys.stderr)
            return 2
        mute = made
    elif args.action == "unmute":
        if not args.id:
            print("loglytics incidents: unmute needs a mute id", file=sys.stderr)
            return 2
        # The unmute travels under the mute's key; only its id and `active` matter.
        mute = Mute(
            mute_id=args.id,
            tenant=args.tenant,
            template_ids=["-"],
            reason="expected",
            created_at=now,
            active=False,
        )
    elif not args.id:
        print(f"loglytics incidents: {args.action} needs an incident id", file=sys.stderr)
        return 2
    record = IncidentFeedback(
        tenant=args.tenant,
        action=args.action,
        created_at=now,
        incident_id=args.id if mute is None else "",
        mute=mute,
        by=args.by,
    )
    await send_feedback(kafka, record)
    sys.stdout.write(orjson.dumps(record.to_json()).decode() + "\n")
    return 0


def run(args: argparse.Namespace) -> int:
    kafka = broker()
    if kafka is None:
        return 2
    try:
        if args.action in ("list", "show"):
            return asyncio.run(_list_or_show(kafka, args))
        return asyncio.run(_feedback(kafka, args))
    except argparse.ArgumentTypeError as exc:
        print(f"loglytics incidents: {exc}", file=sys.stderr)
        return 2
