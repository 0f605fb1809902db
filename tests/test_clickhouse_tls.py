"""ClickHouse over https:// with a CA file: the server is verified against it, never skipped.

A stub HTTPS server with a throwaway CA's certificate stands in for ClickHouse:
it answers every query with a ClickHouse-style error, which is enough to tell
whether the TLS handshake succeeded (the error reaches us) or failed (the
certificate was refused before any query).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from tls_kit import Pki, make_pki

from loglytics.settings import load_settings
from loglytics.storage.client import DsnError, open_client

CLICKHOUSE_ERROR = b"Code: 516. DB::Exception: stub: authentication failed. (AUTHENTICATION_FAILED)"


class _Stub(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-ClickHouse-Exception-Code", "516")
        self.send_header("Content-Length", str(len(CLICKHOUSE_ERROR)))
        self.end_headers()
        self.wfile.write(CLICKHOUSE_ERROR)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def https_server(pki: Pki) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://default:pw@127.0.0.1:{server.server_address[1]}/loglytics"
    finally:
        server.shutdown()


def test_the_ca_file_lets_the_handshake_through(pki: Pki, https_server: str) -> None:
    settings = load_settings(clickhouse_dsn=https_server, clickhouse_ca_file=str(pki.ca))
    assert settings.clickhouse_ca_file == pki.ca
    with pytest.raises(DsnError) as refused:
        open_client(settings.clickhouse_dsn, ca_file=settings.clickhouse_ca_file)
    assert "AUTHENTICATION_FAILED" in str(refused.value)  # the server answered over TLS
    assert "pw" not in str(refused.value)


def test_without_the_ca_file_the_certificate_is_refused(https_server: str) -> None:
    with pytest.raises(DsnError) as refused:
        open_client(https_server)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)


def test_the_options_clickhouse_connect_receives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> Any:
        calls.append(kwargs)
        raise ConnectionError("recorded")

    monkeypatch.setattr(clickhouse_connect, "get_client", record)
    ca = tmp_path / "ca.pem"
    for dsn in ("https://h:8443/db", "http://h:8123/db"):
        with pytest.raises(DsnError):
            open_client(dsn, ca_file=ca)
    https, http = calls
    assert (https["ca_cert"], https["verify"], https["interface"]) == (str(ca), True, "https")
    assert "ca_cert" not in http  # a CA means nothing without TLS
    assert http["interface"] == "http"
