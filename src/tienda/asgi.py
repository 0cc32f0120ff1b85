"""ASGI entry for `tienda serve` workers: `uvicorn --factory tienda.asgi:create`.

Settings come from the environment; `TIENDA_SERVICES` (comma-separated) limits the
process to some modules (the microservice deployment).
"""

from __future__ import annotations

from fastapi import FastAPI

from tienda.app import create_app, select_modules
from tienda.settings import Settings


def create() -> FastAPI:
    settings = Settings()
    return create_app(settings, modules=select_modules(settings.services or None))
