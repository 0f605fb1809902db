"""Closing windows on time, not on the next message.

The ingest agent closes a window when the watermark (newest event time minus
the allowed lateness) passes its end; a source that goes quiet has no next
message to advance the watermark, so this timer closes its open windows once
it has been idle for `WINDOW_IDLE_CLOSE_SECONDS`.
"""

from __future__ import annotations

from loglytics.agents.ingest import stage
from loglytics.app import app

TIMER_INTERVAL = 1.0


@app.timer(interval=TIMER_INTERVAL)  # type: ignore[untyped-decorator]
async def close_idle_windows() -> None:
    await stage.close_idle()
