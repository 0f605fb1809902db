"""The window digest: what downstream (detection, prompts, dashboards) sees of the logs."""

from __future__ import annotations

from pydantic import Field

from loglytics.schemas.base import EpochSeconds, Record
from loglytics.schemas.logs import Identifier


class NumericStats(Record):
    """Summary of one numeric variable position of a template within a window."""

    position: int
    count: int
    min: float
    max: float
    mean: float


class TemplateCount(Record):
    template_id: str
    template: str
    count: int = Field(ge=0)
    level: str = "UNKNOWN"
    new: bool = False
    exemplars: list[str] = Field(default_factory=list)
    numeric: list[NumericStats] = Field(default_factory=list)


class WindowDigest(Record):
    """A closed tumbling window of one tenant/source, compact by construction."""

    tenant: Identifier
    source: Identifier
    window_start: EpochSeconds
    window_end: EpochSeconds
    line_count: int = Field(ge=0)
    level_counts: dict[str, int] = Field(default_factory=dict)
    templates: list[TemplateCount] = Field(default_factory=list)
    new_template_ids: list[str] = Field(default_factory=list)
    flagged_lines: int = Field(0, ge=0)
    closed_by: str = "watermark"

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.source}/{self.window_start:.0f}"
