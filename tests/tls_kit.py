"""Throwaway TLS for tests: a CA with server and client certificates, and a TLS front.

Why a front: Tansu 0.6 (the embedded broker) listens on plain TCP only; its
`--cert` and `--key` flags refuse to be given together and start no TLS
listener (tansu-io/tansu, "Support TLS/mTLS for client connections"). The
front terminates TLS (requiring a client certificate signed by the CA) and
forwards bytes to Tansu, which advertises the front's address, so every
connection a client makes, bootstrap and metadata alike, is TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

EXTENSIONS = (
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    "basicConstraints=CA:FALSE\n"
    "keyUsage=digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth,clientAuth\n"
)


@dataclass(frozen=True)
class Pki:
    """A CA and two certificates it signed (server: 127.0.0.1, client), as PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(root: Path) -> Pki:
    """A fresh CA (valid two days) and certificates for 127.0.0.1 and a client."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ext.cnf").write_text(EXTENSIONS)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=loglytics-test-ca", cwd=root,
    )  # fmt: skip
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=loglytics-client")):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject, cwd=root,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "ext.cnf",
            cwd=root,
        )  # fmt: skip
    return Pki(
        root / "ca.pem", root / "server.pem", root / "server.key",
        root / "client.pem", root / "client.key",
    )  # fmt: skip


class TlsFront:
    """A TLS listener on `port` forwarding every connection to `upstream` on loopback,
    run on its own event loop in a thread (tests call `asyncio.run` many times)."""

    def __init__(self, pki: Pki, port: int, upstream: int, *, require_client_cert: bool) -> None:
        self.port = port
        self.upstream = upstream
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
        self.context.load_cert_chain(pki.server_cert, pki.server_key)
        if require_client_cert:
            self.context.verify_mode = ssl.CERT_REQUIRED
        self.handshakes = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-front", daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("TLS front did not start")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.context)
        )
        self._ready.set()
        self._loop.run_forever()
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(1 << 16):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
