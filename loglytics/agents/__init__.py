"""Faust agents: importing this package registers every agent, table and timer on the app."""

from loglytics.agents import ingest, windows
from loglytics.app import app

__all__ = ["app", "ingest", "windows"]
