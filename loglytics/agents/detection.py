"""The detection agent: window digests in, findings out (to `findings`, and ClickHouse).

Per batch of windows: deterministic signals for every window against the
source's adaptive baseline, candidates from the signals, one LLM judgement per
new pattern (cached verdicts for recurring ones), then findings. A window at
or before the baseline's last absorbed window was fully processed before a
restart and is skipped, so replays neither double-count baselines nor emit
findings twice (and a finding re-sent before a crash has the same id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from faust.types import StreamT

from loglytics.agents.deadletters import dead_letter
from loglytics.agents.runtime import Runtime, runtime
from loglytics.app import app
from loglytics.detection.findings import Candidate, build_finding, candidates
from loglytics.detection.judge import RULES, Judgement, judge_fresh, split_cached
from loglytics.detection.signals import compute_signals, new_baseline, update_baseline
from loglytics.partitioning import source_key, state_key
from loglytics.schemas import DecodeError, Finding, WindowDigest
from loglytics.storage.sink import TemplateRow
from loglytics.topics import findings_topic, windows_topic

log = logging.getLogger(__name__)

# tenant/source#baseline -> signals.new_baseline() shape
baseline_table = app.Table("detection-baselines", default=None, key_type=bytes)
# tenant#judgement_key -> {"v": verdict | None, "m": model}. Per tenant, not per
# source, and global: a pattern judged for one source (or an earlier replay) is
# not judged again. Bounded by the tenant's templates times signal kinds.
verdict_table = app.GlobalTable("verdicts", default=None, key_type=bytes)


class PendingJudgements:
    """Judgements running in the background (kept referenced) and the patterns they
    cover, so one pattern is asked about once even while its verdict is on the way."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.keys: set[str] = set()


pending = PendingJudgements()


class _TenantVerdicts:
    """The judge's view of one tenant's verdicts (no other tenant's are reachable)."""

    def __init__(self, tenant: str) -> None:
        self.prefix = tenant + "#"

    def get(self, key: str) -> Any:
        return verdict_table.get((self.prefix + key).encode())

    def __setitem__(self, key: str, value: Any) -> None:
        verdict_table[(self.prefix + key).encode()] = value


async def _detect_source(digests: list[WindowDigest]) -> list[Finding]:
    tenant, source = digests[0].tenant, digests[0].source
    bkey = state_key(tenant, source, "baseline").encode()
    baseline: dict[str, Any] = baseline_table.get(bkey) or new_baseline()
    per_window: list[tuple[WindowDigest, list[Candidate]]] = []
    templates: list[TemplateRow] = []
    for digest in sorted(digests, key=lambda d: d.window_start):
        last = baseline["last_window"]
        if last is not None and digest.window_start <= last:
            continue  # processed before a restart
        per_window.append((digest, candidates(digest, compute_signals(digest, baseline))))
        update_baseline(digest, baseline)
        templates.extend(_template_rows(digest, baseline))
    if not per_window:
        return []
    rt = await runtime.ready()
    all_cands = [c for _, cands in per_window for c in cands]
    verdicts = _TenantVerdicts(tenant)
    known, fresh = split_cached(all_cands, verdicts)
    findings = [_finding(c, known.get(c.judgement_key, RULES)) for c in all_cands]
    for finding in findings:
        await findings_topic.send(key=finding.tenant.encode(), value=finding.to_bytes())
    if rt.sink is not None:
        for digest, _ in per_window:
            rt.sink.add_window(digest)
        rt.sink.add_templates(templates)
    baseline_table[bkey] = baseline
    fresh = [c for c in fresh if c.judgement_key not in pending.keys]
    if fresh:
        # Findings go out now, from the rules; the model's verdict follows as an
        # update of the same finding ids, so detection never waits on the LLM.
        pending.keys.update(c.judgement_key for c in fresh)
        created = {f.finding_id: f.created_at for f in findings}
        task = asyncio.create_task(_judge_later(rt, tenant, all_cands, fresh, verdicts, created))
        pending.tasks.add(task)
        task.add_done_callback(pending.tasks.discard)
    return findings


def _finding(cand: Candidate, j: Judgement) -> Finding:
    return build_finding(
        cand,
        j.verdict,
        model_used=j.model_used,
        tokens_used=j.tokens,
        latency_ms=j.latency_ms,
        now=time.time(),
    )


async def _judge_later(
    rt: Runtime,
    tenant: str,
    cands: list[Candidate],
    fresh: list[Candidate],
    verdicts: _TenantVerdicts,
    created: dict[str, float],
) -> None:
    """Send the model's verdicts as updates of the rule-based findings (same ids).

    An update keeps its finding's `created_at`: that is when it was detected,
    which alerting and the "found after" figures are about; the model's answer
    time is `created_at` plus its `latency_ms` at the earliest.
    """
    try:
        judged = await judge_fresh(rt.pool, tenant, rt.tier_of(tenant), fresh, verdicts)
        for cand in cands:
            j = judged.get(cand.judgement_key)
            if j is None or j.verdict is None:
                continue
            finding = _finding(cand, j)
            first = created.get(finding.finding_id)
            if first is not None:
                finding = finding.model_copy(update={"created_at": first})
            await findings_topic.send(key=finding.tenant.encode(), value=finding.to_bytes())
    except Exception:
        log.exception("LLM judgement failed for %s; findings stay rule-based", tenant)
    finally:
        pending.keys.difference_update(c.judgement_key for c in fresh)


def _template_rows(digest: WindowDigest, baseline: dict[str, Any]) -> list[TemplateRow]:
    rows = []
    for tpl in digest.templates:
        hist = baseline["t"].get(tpl.template_id)
        if hist is None:
            continue
        hist["total"] = hist.get("total", 0) + tpl.count
        hist.setdefault("first", digest.window_start)
        rows.append(
            TemplateRow(
                tenant=digest.tenant,
                source=digest.source,
                template_id=tpl.template_id,
                template=tpl.template,
                level=tpl.level,
                first_seen=hist["first"],
                last_seen=digest.window_end,
                count=hist["total"],
            )
        )
    return rows


@app.agent(windows_topic)
async def detect(stream: StreamT[bytes]) -> None:
    """Consume window digests in batches; a bad digest is dead-lettered, never fatal."""
    # Digests come a few at a time, so the batch is usually cut by `within`: it is the
    # wait a finding pays after its window closes, kept as short as the ingest agent's.
    async for events in stream.take_events(500, within=0.25):  # type: ignore[attr-defined]
        groups: dict[str, list[WindowDigest]] = defaultdict(list)
        for event in events:
            value = event.message.value
            try:
                digest = WindowDigest.from_bytes(value if isinstance(value, bytes) else b"")
            except DecodeError as exc:
                await dead_letter("detection", exc.reason, event)
                continue
            groups[source_key(digest.tenant, digest.source)].append(digest)
        results = await asyncio.gather(
            *(_detect_source(digests) for digests in groups.values()),
            return_exceptions=True,
        )
        for (key, digests), result in zip(groups.items(), results, strict=True):
            if isinstance(result, BaseException):
                log.error("detection failed for %s", key, exc_info=result)
                for digest in digests:
                    await dead_letter(
                        "detection", f"internal error: {result!r}", None, digest.to_bytes()
                    )
        rt = await runtime.ready()
        if rt.sink is not None:
            await rt.sink.flush()
