"""Faust agents: importing this package registers every agent, table and timer on the app."""

from loglytics import web as web
from loglytics.agents import ingest, windows
from loglytics.agents import requests as requests
from loglytics.app import app

__all__ = ["app", "ingest", "windows"]
