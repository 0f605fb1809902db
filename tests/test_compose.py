"""The Docker stack (docker-compose.kafka.yml) agrees with the code it deploys.

Why: the compose file repeats names the code owns (environment variables are
Settings fields, topics are `loglytics.topics`); a rename on either side would
otherwise only show up as a worker that silently ignores its configuration or
consumes a topic nobody creates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from loglytics.settings import Settings, load_settings
from loglytics.topics import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.kafka.yml"
SETTINGS_VARS = {name.upper() for name in Settings.model_fields}
TOPIC_FLAG = re.compile(r"--topic[ =]+([A-Za-z0-9._-]+)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" list form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return "" if value is None else str(value)


def _loglytics_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services that run loglytics itself: built from the repo's Dockerfile."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def test_services_and_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (
        "kafka",
        "kafka-init",
        "clickhouse",
        "ollama",
        "ollama-pull",
        "vllm",
        "worker",
        "prometheus",
        "grafana",
    ):
        assert name in services, name
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert "controller" in _env(services["kafka"])["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")
    assert services["ollama"]["image"].startswith("ollama/ollama")
    assert services["vllm"]["image"].startswith("vllm/vllm-openai")
    assert services["vllm"].get("profiles") == ["gpu"]
    assert "Llama-4-Maverick-17B-128E-Instruct" in _text(services["vllm"]["command"])
    assert "llama3.2:3b" in _text(services["ollama-pull"]["command"])
    for name, svc in services.items():
        if name != "vllm":
            assert not svc.get("profiles"), f"{name} should run without a profile"
    assert _loglytics_services(compose) == {"worker": services["worker"]}
    assert services["worker"]["build"]["dockerfile"] == "Dockerfile"
    assert (ROOT / "Dockerfile").is_file()


def test_loglytics_env_vars_are_settings_fields(compose: dict[str, Any]) -> None:
    for name, svc in _loglytics_services(compose).items():
        env = _env(svc)
        unknown = set(env) - SETTINGS_VARS
        assert not unknown, f"{name}: not Settings fields: {sorted(unknown)}"
        for required in (
            "KAFKA_BOOTSTRAP_SERVERS",
            "CLICKHOUSE_DSN",
            "OLLAMA_BASE_URL",
            "OLLAMA_MODEL",
            "VLLM_BASE_URL",
            "VLLM_MODEL",
            "WEB_HOST",
            "WEB_PORT",
        ):
            assert required in env, f"{name} lacks {required}"
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["WEB_HOST"] == "0.0.0.0"
        assert env["CLICKHOUSE_DSN"].startswith("http://")


def test_topics_match_topics_module(compose: dict[str, Any]) -> None:
    known = {spec.name for spec in ALL_TOPICS}
    named = set(TOPIC_FLAG.findall(COMPOSE.read_text()))
    assert named, "no --topic in the compose file"
    assert named <= known, f"unknown topics: {sorted(named - known)}"
    init = compose["services"]["kafka-init"]
    script = _text(init.get("entrypoint")) + "\n" + _text(init.get("command"))
    assert "kafka-topics.sh" in script
    created = {m.group(1): m.group(0) for m in re.finditer(r"--topic ([\w.-]+)[^\n]*", script)}
    assert set(created) == known, f"not created: {sorted(known - set(created))}"
    for spec in ALL_TOPICS:
        line = created[spec.name]
        if spec.compacted:
            assert "cleanup.policy=compact" in line, spec.name
        if spec.retention is not None:
            ms = int(spec.retention.total_seconds() * 1000)
            assert f"retention.ms={ms}" in line, f"{spec.name}: retention should be {ms} ms"


def test_prometheus_scrapes_the_worker(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    port = _env(compose["services"]["worker"])["WEB_PORT"]
    assert f"worker:{port}" in targets
    mounts = _text(compose["services"]["prometheus"]["volumes"])
    assert "./deploy/prometheus.yml" in mounts


def test_grafana_provisions_clickhouse(compose: dict[str, Any]) -> None:
    files = list((ROOT / "deploy" / "grafana").rglob("*.yml"))
    sources = [ds for f in files for ds in yaml.safe_load(f.read_text()).get("datasources", [])]
    clickhouse = [ds for ds in sources if ds["type"] == "grafana-clickhouse-datasource"]
    assert clickhouse and clickhouse[0]["jsonData"]["host"] == "clickhouse"
    grafana = compose["services"]["grafana"]
    assert "grafana-clickhouse-datasource" in _env(grafana)["GF_INSTALL_PLUGINS"]


HOST_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
ADDRESS = re.compile(r"(?:^|[/@,])([a-z][a-z0-9-]*):(\d+)")


def _with_defaults(value: str) -> str:
    """A value as compose resolves it when the host sets none of its variables."""
    return HOST_VARIABLE.sub(lambda m: m.group(2) or "", value)


def test_worker_env_is_valid_settings(compose: dict[str, Any]) -> None:
    """With the host setting nothing, the worker's environment is a valid Settings."""
    env = _env(compose["services"]["worker"])
    for name, value in env.items():
        for var in HOST_VARIABLE.findall(value):
            assert var[0] == name, f"{name} reads the host's {var[0]}: use the same name"
    settings = load_settings(**{name.lower(): _with_defaults(v) for name, v in env.items()})
    assert settings.web_port == int(env["WEB_PORT"])


def test_a_host_variable_has_one_default(compose: dict[str, Any]) -> None:
    """e.g. OLLAMA_MODEL: the model ollama-pull fetches is the one the worker asks for."""
    defaults: dict[str, set[str]] = {}
    for name, default in HOST_VARIABLE.findall(COMPOSE.read_text()):
        defaults.setdefault(name, set()).add(default)
    split = {name: values for name, values in defaults.items() if len(values) > 1}
    assert not split, f"one variable, several defaults: {split}"
    assert "OLLAMA_MODEL" in defaults and "VLLM_MODEL" in defaults


def _depends(services: dict[str, Any], name: str) -> set[str]:
    """The services `name` waits for, directly or through the ones it waits for."""
    direct = services[name].get("depends_on") or []
    found = set(direct)
    for dep in direct:
        found |= _depends(services, dep)
    return found


def _listens(service: dict[str, Any], port: str) -> bool:
    published = [str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])]
    advertised = " ".join(_env(service).values())
    return port in published or f":{port}" in advertised


def test_worker_waits_for_every_service_it_addresses(compose: dict[str, Any]) -> None:
    services = compose["services"]
    needed = _depends(services, "worker")
    addressed = {
        (host, port)
        for value in _env(services["worker"]).values()
        for host, port in ADDRESS.findall(_with_defaults(value))
        if host in services
    }
    assert {host for host, _ in addressed} >= {"kafka", "clickhouse", "ollama"}
    for host, port in sorted(addressed):
        assert host in needed, f"the worker addresses {host} but does not wait for it"
        assert _listens(services[host], port), f"{host} does not listen on {port}"
