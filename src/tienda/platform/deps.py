"""FastAPI dependencies every module's routes share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from fastapi import Request

from tienda.platform.db import UnitOfWork


def unit_of_work(module: str, *, readonly: bool = False) -> Callable[[Request], AsyncIterator[UnitOfWork]]:
    """A dependency opening one unit of work of `module` for the request (a reader when
    `readonly`); the route commits, leaving without a commit rolls back."""

    async def dependency(request: Request) -> AsyncIterator[UnitOfWork]:
        db = request.app.state.platform.db(module)
        async with db.reader() if readonly else db.uow() as uow:
            yield uow

    return dependency
