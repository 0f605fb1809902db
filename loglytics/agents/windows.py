"""Closing windows on time, not on the next message.

The ingest agent closes a window when the watermark (newest event time minus
the allowed lateness) passes its end; a source that goes quiet has no next
message to advance the watermark, so this timer closes its open windows once
it has been idle for `WINDOW_IDLE_CLOSE_SECONDS`.
"""

from __future__ import annotations

from loglytics.agents.ingest import stage
from loglytics.app import app

# The timer ticks at a quarter of the idle threshold (at most once a second), so a
# quiet source's windows close within 1.25 idle periods rather than up to two.
TIMER_INTERVAL = min(1.0, stage.settings.window_idle_close_seconds / 4)


@app.timer(interval=TIMER_INTERVAL)  # type: ignore[untyped-decorator]
async def close_idle_windows() -> None:
    await stage.close_idle()
