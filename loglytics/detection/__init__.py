"""The detection stage: deterministic signals, findings from them, LLM judgement per pattern.

`agent` (on top) declares the stage on a worker's app; `stage` runs one
source's digests through `signals` (against its `baseline`), `findings` and
`judge`.
"""

from loglytics.detection.agent import register

__all__ = ["register"]
