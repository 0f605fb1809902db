"""One way to open ClickHouse, whether it is embedded (chdb) or a server (HTTP).

Why a wrapper at all: the same code runs against chdb on a laptop and against a
ClickHouse server in production, and the two differ in ways that bite late:

* chdb DSNs are parsed by clickhouse-connect as URLs, so the settings default
  ``chdb:///./.loglytics/clickhouse`` would resolve to ``/.loglytics/...`` at the
  filesystem root, and ``chdb://rel/dir`` would treat ``rel`` as a host and
  ``dir`` as a database. We parse chdb DSNs ourselves: ``chdb:///abs/dir`` is
  absolute, ``chdb:///./rel`` / ``chdb:///../rel`` / ``chdb://rel/dir`` are
  relative to the working directory, ``chdb://memory`` is in-memory.
* Both backends refuse to ``USE`` a database that does not exist, so the target
  database is created (``CREATE DATABASE IF NOT EXISTS``) before switching to it.
* chdb holds a file lock on its data directory: one process per directory.
  ``client.close()`` releases it, so a later process can open the same directory.
  Inside one process, every client must use the same directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

__all__ = ["Client", "DsnError", "open_client", "redact_dsn"]

_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MEMORY = {"", "memory", ":memory:"}


class DsnError(ValueError):
    """The ClickHouse DSN cannot be used; the message never contains the password."""


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced, safe for logs and error messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


def chdb_location(dsn: str) -> tuple[str | None, str | None]:
    """(data directory or None for in-memory, database or None) of a ``chdb://`` DSN."""
    rest = dsn.removeprefix("chdb://")
    rest, _, query = rest.partition("?")
    database = parse_qs(query).get("database", [None])[0]
    if rest in _MEMORY or rest.rstrip("/") in _MEMORY:
        return None, database
    if rest.startswith(("/./", "/../")) or rest in ("/.", "/.."):
        rest = rest[1:]  # chdb:///./x means ./x: nobody spells an absolute path that way
    return str(Path(rest).resolve()), database


def open_client(
    dsn: str, *, database: str | None = None, ca_file: Path | None = None, **settings: Any
) -> Client:
    """Open a client for a ``chdb://`` or ``http(s)://`` DSN, creating the database if needed.

    ``database`` overrides the DSN's (the URL path for HTTP, ``?database=`` for chdb).
    ``ca_file`` is the CA an ``https://`` server's certificate is verified against (the
    system's CAs when None); verification is never turned off.
    Extra keyword arguments become ClickHouse session settings.
    """
    if dsn.startswith("chdb:"):
        path, dsn_db = chdb_location(dsn)
        target = database or dsn_db
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
        try:
            client = clickhouse_connect.get_client(
                interface="chdb", path=path, settings=settings or None
            )
        except Exception as exc:
            raise DsnError(f"cannot open chdb at {path or ':memory:'}: {exc}") from exc
    elif dsn.startswith(("http://", "https://")):
        parts = urlsplit(dsn)
        target = database or (parts.path.strip("/").split("/")[0] or None)
        # Connect to `default` first: a DSN naming a missing database would fail.
        base = urlunsplit(parts._replace(path="/default"))
        tls: dict[str, Any] = (
            {"ca_cert": str(ca_file)} if ca_file and parts.scheme == "https" else {}
        )
        try:
            # The interface is passed: clickhouse-connect reads a DSN's host, port and user
            # but not its scheme, so https:// on a port other than 443/8443 went out as http.
            client = clickhouse_connect.get_client(
                dsn=base, interface=parts.scheme, settings=settings or None, verify=True, **tls
            )
        except Exception as exc:
            raise DsnError(f"cannot connect to {redact_dsn(dsn)}: {exc}") from exc
    else:
        raise DsnError(f"unsupported ClickHouse DSN {redact_dsn(dsn)!r} (chdb:// or http(s)://)")
    if target and target != "default":
        if not _DB_NAME.match(target):
            client.close()
            raise DsnError(f"invalid database name {target!r}")
        client.command(f"CREATE DATABASE IF NOT EXISTS `{target}`")
        client.database = target
    return client
