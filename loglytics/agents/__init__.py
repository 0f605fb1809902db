"""Faust agents: importing this package registers every agent, table and timer on the app."""

from loglytics import web as web
from loglytics.agents import detection, ingest, runtime, sinks, usage, windows
from loglytics.agents import requests as requests
from loglytics.app import app

__all__ = ["app", "detection", "ingest", "runtime", "sinks", "usage", "windows"]
