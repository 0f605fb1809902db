"""The package's shape, checked: layers, cycles, sizes, and nothing done at import.

The layers are the README's: shared lower layers (schemas, topics, parsing,
mining, providers, prompts, storage, tasks, settings, ...) never import the
worker's infrastructure or a stage; the infrastructure (app, runtime,
dead-lettering) never imports a stage; stages never import each other or the
tools above them. A rule that a newcomer can read is only kept if a test
holds it.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "loglytics"

LOWER = {
    "settings",
    "schemas",
    "topics",
    "partitioning",
    "parsing",
    "mining",
    "providers",
    "prompts",
    "storage",
    "tasks",
    "clients",
    "follower",
    "tenant_view",
    "kafka_admin",
    "kafka_clients",
    "pipeline_metrics",
    "speedups",
    "_speedups",
    "synthetic",
    "testing",
}
INFRA = {"app", "deadletters", "runtime", "transport"}
STAGES = {"ingest", "detection", "incidents", "ledger", "serving", "sinks", "tenants", "web"}
TOP = {"worker", "cli", "commands", "bench", "embedded", "gateway", "__main__"}
RANK = {**dict.fromkeys(LOWER, 0), **dict.fromkeys(INFRA, 1), **dict.fromkeys(STAGES, 2)}
RANK.update(dict.fromkeys(TOP, 3))

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _unit(path: Path) -> str:
    """The top-level package or module of `loglytics` a file belongs to."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """The `loglytics` units a module imports, at any depth of its body."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "loglytics" and len(parts) > 1:
                found.add(parts[1])
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in _modules():
        unit = _unit(path)
        if unit == "__init__":
            continue
        graph[unit] |= {u for u in _imports(path) if u != unit and u != "__init__"}
    return graph


def test_every_unit_has_a_layer() -> None:
    units = {_unit(p) for p in _modules()} - {"__init__"}
    assert units - RANK.keys() == set(), "new top-level modules must be placed in a layer"


def test_no_unit_imports_a_higher_layer_or_another_stage() -> None:
    wrong = []
    for unit, deps in _graph().items():
        for dep in deps:
            if RANK[dep] > RANK[unit] or (RANK[unit] == RANK[dep] == 2):
                wrong.append(f"{unit} -> {dep}")
    assert wrong == []


def test_no_import_cycles_between_units() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(unit: str, path: list[str]) -> None:
        state[unit] = 1
        for dep in sorted(graph.get(unit, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*path[path.index(dep) :], dep]))
            elif dep not in state:
                visit(dep, [*path, dep])
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit, [unit])
    assert cycles == []


@pytest.mark.parametrize("root", ["loglytics", "tests", "bench"])
def test_modules_and_functions_are_short(root: str) -> None:
    long_ones = []
    for path in sorted((ROOT / root).rglob("*.py")):
        source = path.read_text()
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            long_ones.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_ones.append(f"{path.relative_to(ROOT)}:{node.name}: {length} lines")
    assert long_ones == []


def test_importing_every_module_reads_no_settings_and_touches_no_disk(tmp_path: Path) -> None:
    """Import all of the package in a fresh process whose settings would be invalid
    and whose working directory is empty: any read of the settings or write to
    disk at import time fails or leaves a file behind."""
    names = []
    for path in _modules():
        rel = path.relative_to(ROOT).with_suffix("")
        if rel.name in ("__main__",):
            continue
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        names.append(".".join(parts))
    script = "import importlib, sys\nfor n in sys.argv[1:]:\n    importlib.import_module(n)\n"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TOPIC_PARTITIONS": "not-a-number"}
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert list(tmp_path.iterdir()) == []
