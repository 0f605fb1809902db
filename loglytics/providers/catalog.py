"""The providers the product knows, as one table, and the tier chains built from settings.

Why a table: each backend differs only in which settings fields hold its
address, model and key, which class speaks its protocol, how many sequences
it runs at once and which tiers may use it. Declaring that once per provider
keeps `LLMPool.from_settings` a loop, and adding a backend is one row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loglytics.providers.base import Provider
from loglytics.providers.ollama import OllamaProvider
from loglytics.providers.openai import OpenAIProvider
from loglytics.settings import TIERS, Settings, Tier

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One backend: where its settings live, what builds it, its default slots and tiers.

    `parallel` is the number of sequences the server processes at once; the
    pool queues the rest on its side (see `ProviderSlot`). `tiers` lists the
    tiers whose fallback chain includes it; chains follow the table's order.
    """

    name: str
    url_field: str
    model_field: str
    key_field: str | None
    build: Callable[..., Provider]
    parallel: int
    tiers: tuple[Tier, ...]

    def __post_init__(self) -> None:
        # A misspelt field would otherwise silently leave the provider unconfigured.
        for field in (self.url_field, self.model_field, self.key_field):
            if field is not None and field not in Settings.model_fields:
                raise ValueError(f"provider {self.name!r}: Settings has no field {field!r}")

    def provider(self, settings: Settings, max_parallel: int, timeout: float) -> Provider | None:
        """The configured provider, or None when its base URL is empty (not deployed)."""
        base_url = str(getattr(settings, self.url_field))
        if not base_url:
            return None
        options: dict[str, Any] = {}
        if self.key_field is not None:
            options["api_key"] = str(getattr(settings, self.key_field))
        return self.build(
            name=self.name,
            base_url=base_url,
            model=str(getattr(settings, self.model_field)),
            max_parallel=max_parallel,
            timeout=timeout,
            **options,
        )


PROVIDER_SPECS: tuple[ProviderSpec, ...] = (
    # vLLM batches widely; it serves the paying tier only.
    ProviderSpec(
        "vllm", "vllm_base_url", "vllm_model", "vllm_api_key", OpenAIProvider, 64, ("pro",)
    ),
    # Ollama's OLLAMA_NUM_PARALLEL defaults to 4 where memory allows.
    ProviderSpec(
        "ollama", "ollama_base_url", "ollama_model", None, OllamaProvider, 4, ("pro", "free")
    ),
    # The embedded llama.cpp server runs 4 slots.
    ProviderSpec(
        "embedded", "llamacpp_base_url", "llamacpp_model", None, OpenAIProvider, 4, ("pro", "free")
    ),
)
"""Every backend, in fallback order: pro → vLLM, Ollama, embedded; free → Ollama, embedded."""


def tiers_from_settings(
    settings: Settings,
    *,
    timeout: float,
    parallel: Mapping[str, int] | None = None,
    specs: tuple[ProviderSpec, ...] = PROVIDER_SPECS,
) -> dict[Tier, list[Provider]]:
    """Each tier's providers in fallback order; only providers with a base URL take part.

    `parallel` overrides a provider's slots by name; one provider object is
    shared by every tier that uses it, so its slots are shared too.
    """
    overrides = parallel or {}
    tiers: dict[Tier, list[Provider]] = {tier: [] for tier in TIERS}
    configured = 0
    for spec in specs:
        provider = spec.provider(settings, overrides.get(spec.name, spec.parallel), timeout)
        if provider is None:
            continue
        configured += 1
        for tier in spec.tiers:
            tiers[tier].append(provider)
    if not configured:
        log.warning("no LLM provider configured and no embedded stack running")
    return tiers
