"""The incidents stage: findings grouped into incidents with a lifecycle, and delivered.

`agent` (on top) declares the stage on a worker's app; `rules` says when a
finding joins an open incident; `lifecycle` opens, updates and resolves them
on a tenant's `state`; `delivery` posts the events to Alertmanager and a webhook.
"""

from loglytics.incidents.agent import register

__all__ = ["register"]
