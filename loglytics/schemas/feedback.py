"""Feedback on incidents: acknowledge, resolve by hand, mute a pattern, unmute it.

Why a compacted topic (`incident-feedback`): feedback is state a person set,
not a stream of facts. Each record's key names what it is about
(`tenant#incident#<id>#<action>` or `tenant#mute#<mute_id>`), so compaction keeps
the latest word on each thing for ever, and the prefix before `#` puts it on
the partition of the tenant's findings and incidents state (co-partitioned,
see `loglytics.partitioning`). An unmute is the mute's own key with
`active` false, so compaction keeps the unmute.

A mute names a pattern: template ids (a template, or an incident's signature:
its templates), optionally only on some sources; for a duration (`until`) or
until unmuted. A muted pattern's findings are still stored, flagged `muted`,
open no incident and notify no one; detection's baselines keep learning.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field

from loglytics.schemas.base import EpochSeconds, Record

FeedbackAction = Literal["ack", "resolve", "mute", "unmute"]
MuteReason = Literal["false_positive", "expected", "maintenance"]
MUTE_REASONS: tuple[MuteReason, ...] = ("false_positive", "expected", "maintenance")
# The longest mute with an end (ten years); a pattern muted for good is muted until unmuted.
MAX_MUTE_SECONDS = 10 * 366 * 86_400


class Mute(Record):
    """One mute as of its latest record."""

    mute_id: str
    tenant: str
    template_ids: list[str] = Field(min_length=1)
    # Empty: the templates on any source of the tenant.
    sources: list[str] = Field(default_factory=list)
    # The incident whose signature was muted, if it came from one.
    incident_id: str = ""
    reason: MuteReason
    created_at: EpochSeconds
    # None: until unmuted.
    until: EpochSeconds | None = None
    active: bool = True

    def applies(self, template_ids: list[str], source: str, at: float) -> bool:
        """Whether a finding on these templates and source, detected at `at`, is muted."""
        return (
            self.active
            and (self.until is None or at < self.until)
            and at >= self.created_at
            and (not self.sources or source in self.sources)
            and bool(set(template_ids) & set(self.template_ids))
        )


class IncidentFeedback(Record):
    """One person's word: on an incident (ack, resolve) or on a mute (mute, unmute)."""

    tenant: str
    action: FeedbackAction
    created_at: EpochSeconds
    incident_id: str = ""
    mute: Mute | None = None
    by: str = ""

    @property
    def key(self) -> bytes:
        """The compaction key (see the module docstring)."""
        if self.mute is not None:
            return f"{self.tenant}#mute#{self.mute.mute_id}".encode()
        return f"{self.tenant}#incident#{self.incident_id}#{self.action}".encode()

    @property
    def feedback_id(self) -> str:
        """Unique per record and equal across replays: what the ClickHouse mirror dedupes on."""
        raw = f"{self.key.decode()}\x1f{self.action}\x1f{self.created_at:.3f}".encode()
        return hashlib.blake2b(raw, digest_size=12).hexdigest()


def mute_id(tenant: str, template_ids: list[str], sources: list[str], created_at: float) -> str:
    """A new mute's id, derived from what it mutes and when."""
    raw = "\x1f".join([tenant, ",".join(sorted(template_ids)), ",".join(sorted(sources))])
    raw += f"\x1f{created_at:.3f}"
    return hashlib.blake2b(raw.encode(), digest_size=8).hexdigest()
