"""The one settings object: every knob comes from the environment (or `.env`).

Why one typed object: a bad value must fail at start with the variable's name,
not deep inside an agent an hour later. Empty service addresses mean "use the
embedded stack", whose addresses `loglytics stack up` records in a state file
that `Settings.resolved()` reads.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import orjson
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as UnparsableSetting

Tier = Literal["free", "pro"]
TIERS: tuple[Tier, ...] = ("free", "pro")
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class TierLimits(BaseModel):
    """The brief's `FREE_TIER_LIMITS` / `PRO_TIER_LIMITS` JSON object; a key left out keeps
    the value of today's per-limit variable (`FREE_TOKENS_PER_MONTH`, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_llm_tokens_per_month: int | None = Field(None, ge=0)
    max_api_calls_per_day: int | None = Field(None, ge=0)


class SettingsError(ValueError):
    """A configuration value is invalid; the message names the variable."""


class Settings(BaseSettings):
    """Configuration read from environment variables (names are the upper-case field names)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # Services: empty means "embedded".
    kafka_bootstrap_servers: str = ""
    # How every Kafka client (Faust's, the commands', the gateway's) reaches the broker;
    # applied by loglytics.kafka_clients. TLS verifies against KAFKA_SSL_CAFILE (else the
    # system's CAs); a client certificate and key are sent when both are set.
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: str = ""
    clickhouse_dsn: str = "chdb:///./.loglytics/clickhouse"
    # For an https:// DSN: the CA that signed the server's certificate (else the system's).
    clickhouse_ca_file: Path | None = None
    ollama_base_url: str = ""
    # DEFAULT_LLM_MODEL and MAVERICK_MODEL_NAME are the product brief's names for these two.
    ollama_model: str = Field(
        "llama3.2:3b", validation_alias=AliasChoices("ollama_model", "default_llm_model")
    )
    vllm_base_url: str = ""
    vllm_model: str = Field(
        "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
        validation_alias=AliasChoices("vllm_model", "maverick_model_name"),
    )
    vllm_api_key: str = ""
    llamacpp_base_url: str = ""
    llamacpp_model: str = "smollm2-135m-instruct"

    # Tier quotas (product brief defaults).
    free_tokens_per_month: int = Field(100_000, ge=0)
    free_calls_per_day: int = Field(1_000, ge=0)
    pro_tokens_per_month: int = Field(1_000_000, ge=0)
    pro_calls_per_day: int = Field(10_000, ge=0)
    free_tier_limits: TierLimits = TierLimits()
    pro_tier_limits: TierLimits = TierLimits()

    # Requests per tenant over a sliding window (HTTP and topic alike), enforced by the
    # quota ledger where requests are admitted; separate from calls per day.
    rate_limit_enabled: bool = True
    rate_limit_requests: int = Field(100, ge=1)
    rate_limit_window: float = Field(3600.0, gt=0)

    # Windows.
    window_seconds: float = Field(60.0, gt=0)
    allowed_lateness_seconds: float = Field(10.0, ge=0)
    window_idle_close_seconds: float = Field(5.0, gt=0)
    future_tolerance_seconds: float = Field(300.0, gt=0)
    max_line_bytes: int = Field(65_536, gt=0)

    # Worker.
    app_id: str = "loglytics"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    # The HTTP API gateway (`loglytics api`), a process of its own; a call with no final
    # reply within API_REPLY_TIMEOUT_SECONDS is answered 504.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=0, le=65535)
    api_reply_timeout_seconds: float = Field(180.0, gt=0)
    topic_partitions: int = Field(4, ge=1)
    broker_session_timeout: float = Field(10.0, gt=0)
    state_dir: Path = Path(".loglytics")
    # Set by `resolved()` when the broker is the embedded Tansu (one record per batch).
    kafka_embedded: bool = False

    # LLM economy.
    llm_timeout_seconds: float = Field(60.0, gt=0)
    llm_max_tokens: int = Field(384, gt=0)
    llm_cache_size: int = Field(1024, ge=0)
    llm_cache_ttl_seconds: float = Field(3600.0, ge=0)

    # Incidents: resolved after this many windows with none of their patterns firing;
    # delivered to Alertmanager's v2 API and a webhook when set (empty: not delivered).
    incident_resolve_windows: int = Field(3, ge=1)
    alertmanager_url: str = ""
    webhook_url: str = ""
    webhook_secret: str = ""

    # Retention in ClickHouse, in days (0 keeps rows forever), set at every start by
    # loglytics.storage.retention. An unset override takes RETENTION_DAYS; unset usage
    # (billing data) is kept the longest, and at least a year and a month.
    retention_days: int = Field(90, ge=0)
    retention_window_stats_days: int | None = Field(None, ge=0)
    retention_findings_days: int | None = Field(None, ge=0)
    retention_incidents_days: int | None = Field(None, ge=0)
    retention_usage_days: int | None = Field(None, ge=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _usage_kept_longest(self) -> Settings:
        """Usage is what tenants are billed from: it must outlive everything it accounts for."""
        usage = self.retention_usage_days
        overrides = (
            self.retention_window_stats_days,
            self.retention_findings_days,
            self.retention_incidents_days,
        )
        others = [self.retention_days, *(d for d in overrides if d is not None)]
        if usage and (0 in others or usage < max(others)):
            raise ValueError(
                f"RETENTION_USAGE_DAYS ({usage}) must be 0 (forever) or at least every other "
                "RETENTION_*_DAYS: usage is billing data and is kept the longest"
            )
        return self

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> Settings:
        """SASL without a user, or a certificate without its key, fails at start, not at
        the first connection (where it reads as the broker refusing us)."""
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        return self

    @field_validator("clickhouse_dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        if not value.startswith(("chdb://", "http://", "https://")):
            raise ValueError("must start with chdb://, http:// or https://")
        return value

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"

    @property
    def embedded_kafka(self) -> bool:
        return not self.kafka_bootstrap_servers

    def tier_limits(self, tier: Tier) -> tuple[int, int]:
        """(tokens per month, calls per day) for a tier."""
        if tier == "pro":
            given, tokens, calls = (
                self.pro_tier_limits,
                self.pro_tokens_per_month,
                self.pro_calls_per_day,
            )
        else:
            given, tokens, calls = (
                self.free_tier_limits,
                self.free_tokens_per_month,
                self.free_calls_per_day,
            )
        return (
            tokens if given.max_llm_tokens_per_month is None else given.max_llm_tokens_per_month,
            calls if given.max_api_calls_per_day is None else given.max_api_calls_per_day,
        )

    def resolved(self) -> Settings:
        """Fill empty service addresses from the running embedded stack, if any."""
        if not self.stack_file.exists():
            return self
        try:
            state = orjson.loads(self.stack_file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return self
        updates: dict[str, object] = {}
        if not self.kafka_bootstrap_servers and state.get("kafka"):
            updates["kafka_bootstrap_servers"] = state["kafka"]
            updates["kafka_embedded"] = True
        if not self.llamacpp_base_url and state.get("llamacpp"):
            updates["llamacpp_base_url"] = state["llamacpp"]
        return self.model_copy(update=updates) if updates else self


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into one that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
    except UnparsableSetting as exc:  # a JSON-valued variable that is not JSON
        field = str(exc).split('"')[1] if str(exc).count('"') >= 2 else ""
        raise SettingsError(f"invalid configuration: {field.upper()}: not valid JSON") from None


@functools.cache
def get_settings() -> Settings:
    """The process's settings, resolved against the embedded stack once."""
    return load_settings().resolved()
