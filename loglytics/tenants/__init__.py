"""The tenants stage: the compacted `tenants` topic into every worker's tenant table."""

from loglytics.tenants.agent import register

__all__ = ["register"]
