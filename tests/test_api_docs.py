"""/docs and /redoc rendered offline in Debian's headless chromium, every route listed;
`loglytics check` against the same in-process gateway.

The gateway runs in this process on uvicorn over a stand-in backend (the
pages need only the app's /openapi.json and its bundled assets). Chromium
runs with networking to anything but loopback refused, so a page that needed
a CDN would render empty. The rendered DOM must name every route; a
screenshot of each page is kept under build/test-artifacts/api-docs/.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from test_gateway_units import KEY, StandIn

from loglytics.commands.check import run, run_checks, table
from loglytics.embedded.ports import free_port
from loglytics.gateway.app import build_app

ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts" / "api-docs"
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def docs_base() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(StandIn()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    cmd += ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
    cmd += ["--virtual-time-budget=20000", "--window-size=1280,2400", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (make test installs it)")
@pytest.mark.parametrize("page", ["docs", "redoc"])
def test_docs_render_offline_with_every_route(docs_base: str, page: str) -> None:
    paths = list(httpx.get(f"{docs_base}/openapi.json").json()["paths"])
    dom = chromium("--dump-dom", f"{docs_base}/{page}")
    assert dom.returncode == 0, dom.stderr[-2000:]
    missing = [p for p in paths if p not in dom.stdout]
    assert not missing, (missing, dom.stdout[-2000:])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{page}.html").write_text(dom.stdout)
    shot = ARTIFACTS / f"{page}.png"
    taken = chromium(f"--screenshot={shot}", f"{docs_base}/{page}")
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]


def test_check_command_passes_on_a_serving_api_and_fails_on_a_wrong_key(docs_base: str) -> None:
    """`loglytics check` against the in-process gateway: every step passes with the key,
    and with a wrong one every step fails and the exit status is 1."""
    good = run_checks(docs_base, KEY, 30)
    assert [o.name for o in good if not o.passed] == [], table(good)
    assert len(good) == 12
    bad = run_checks(docs_base, "llk_wrong", 30)
    assert not any(o.passed for o in bad) and {o.status for o in bad} == {401}
    args = argparse.Namespace(base_url=docs_base, api_key="llk_wrong", timeout=30.0)
    assert run(args) == 1
