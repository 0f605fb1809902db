"""The detection stage's work per source: window digests in, findings out.

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
from collections.abc import Awaitable, MutableMapping

import faust
from faust.types import RecordMetadata

from loglytics.detection.baseline import Baseline, restore_baseline, update_baseline
from loglytics.detection.findings import Candidate, build_finding, candidates
from loglytics.detection.judge import (
    RULES,
    CachedVerdict,
    Judgement,
    judge_fresh,
    split_cached,
)
from loglytics.detection.signals import compute_signals
from loglytics.partitioning import state_key
from loglytics.runtime import Runtime
from loglytics.schemas import Finding, WindowDigest
from loglytics.storage.sink import TemplateRow

log = logging.getLogger(__name__)


class PendingJudgements:
    """Judgements running in the background (kept referenced) and the patterns they
    cover, so one pattern is asked about once even while its verdict is on the way."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.keys: set[str] = set()


class _TenantVerdicts:
    """The judge's view of one tenant's verdicts (no other tenant's are reachable)."""

    def __init__(self, table: MutableMapping[bytes, object], tenant: str) -> None:
        self.table = table
        self.prefix = tenant + "#"

    def get(self, key: str) -> object:
        return self.table.get((self.prefix + key).encode())

    def __setitem__(self, key: str, value: CachedVerdict) -> None:
        self.table[(self.prefix + key).encode()] = value


class DetectionStage:
    """One worker's detection: baselines and verdicts in tables, judgements in flight.

    Findings go to `findings_out` (the `findings` topic); windows and template
    rows to the runtime's ClickHouse sink. Both tables hold JSON: `Baseline`s by
    source, `CachedVerdict`s by tenant and pattern; rows in an older form are
    converted when read.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        baselines: MutableMapping[bytes, object],
        verdicts: MutableMapping[bytes, object],
        findings_out: faust.TopicT,
    ) -> None:
        self.runtime = runtime
        self.baselines = baselines
        self.verdicts = verdicts
        self.findings_out = findings_out
        self.pending = PendingJudgements()

    async def send(self, finding: Finding) -> Awaitable[RecordMetadata]:
        """Hand the finding to the producer; the result is awaited for its delivery."""
        return await self.findings_out.send(key=finding.tenant.encode(), value=finding.to_bytes())

    async def detect_source(self, digests: list[WindowDigest]) -> list[Finding]:
        """Signals, candidates and findings for one source's digests of a batch."""
        tenant, source = digests[0].tenant, digests[0].source
        bkey = state_key(tenant, source, "baseline").encode()
        baseline = restore_baseline(self.baselines.get(bkey))
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
        rt = await self.runtime.ready()
        all_cands = [c for _, cands in per_window for c in cands]
        verdicts = _TenantVerdicts(self.verdicts, tenant)
        known, fresh = split_cached(all_cands, verdicts)
        findings = [_finding(c, known.get(c.judgement_key, RULES)) for c in all_cands]
        # Delivered before the baseline that says their windows were processed is written:
        # a crash in between replays the windows (same finding ids) instead of skipping them.
        await asyncio.gather(*[await self.send(finding) for finding in findings])
        if rt.sink is not None:
            for digest, _ in per_window:
                rt.sink.add_window(digest)
            rt.sink.add_templates(templates)
        self.baselines[bkey] = baseline
        self._judge_in_background(tenant, all_cands, fresh, verdicts, findings)
        return findings

    def _judge_in_background(
        self,
        tenant: str,
        cands: list[Candidate],
        fresh: list[Candidate],
        verdicts: _TenantVerdicts,
        findings: list[Finding],
    ) -> None:
        """Findings went out from the rules; the model's verdict follows as an update of
        the same finding ids, so detection never waits on the LLM."""
        pending = self.pending
        fresh = [c for c in fresh if c.judgement_key not in pending.keys]
        if not fresh:
            return
        pending.keys.update(c.judgement_key for c in fresh)
        created = {f.finding_id: f.created_at for f in findings}
        task = asyncio.create_task(self._judge_later(tenant, cands, fresh, verdicts, created))
        pending.tasks.add(task)
        task.add_done_callback(pending.tasks.discard)

    async def _judge_later(
        self,
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
        rt = self.runtime
        try:
            judged = await judge_fresh(
                rt.pool, tenant, rt.tier_of(tenant), fresh, verdicts, rt.grounding
            )
            for cand in cands:
                j = judged.get(cand.judgement_key)
                if j is None or j.verdict is None:
                    continue
                finding = _finding(cand, j)
                first = created.get(finding.finding_id)
                if first is not None:
                    finding = finding.model_copy(update={"created_at": first})
                await self.send(finding)
        except Exception:
            log.exception("LLM judgement failed for %s; findings stay rule-based", tenant)
        finally:
            self.pending.keys.difference_update(c.judgement_key for c in fresh)


def _finding(cand: Candidate, j: Judgement) -> Finding:
    return build_finding(
        cand,
        j.verdict,
        model_used=j.model_used,
        tokens_used=j.tokens,
        latency_ms=j.latency_ms,
        now=time.time(),
    )


def _template_rows(digest: WindowDigest, baseline: Baseline) -> list[TemplateRow]:
    """The window's templates as the templates table keeps them (counts since first seen)."""
    rows = []
    for tpl in digest.templates:
        hist = baseline["templates"].get(tpl.template_id)
        if hist is None:
            continue  # more templates than a baseline keeps: forgotten already
        rows.append(
            TemplateRow(
                tenant=digest.tenant,
                source=digest.source,
                template_id=tpl.template_id,
                template=tpl.template,
                level=tpl.level,
                first_seen=hist["first_seen"],
                last_seen=digest.window_end,
                count=hist["total_count"],
            )
        )
    return rows
