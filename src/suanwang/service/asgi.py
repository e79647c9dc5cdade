"""An app factory for running several worker processes under uvicorn, configured by SUANWANG_* variables.

    SUANWANG_DB=postgresql+psycopg://user@host/db uvicorn --factory suanwang.service.asgi:app_from_env --workers 2

Every worker is a replica with its own scheduling loop (set SUANWANG_LOOP=0 to run a worker without one); replicas
share the database safely (see loop.py). `suanwang serve --workers N` starts N such workers with SUANWANG_LOOP=0 and
one loop-only process (worker.py).
"""

from __future__ import annotations

from fastapi import FastAPI

from suanwang.service.api import create_app
from suanwang.service.config import ServiceConfig
from suanwang.service.lifeline import die_with_parent
from suanwang.service.runtime import Service


def app_from_env() -> FastAPI:
    """The service app over `ServiceConfig.from_env()`; a worker started by `suanwang serve` dies with it."""
    die_with_parent()
    return create_app(Service(ServiceConfig.from_env()))
