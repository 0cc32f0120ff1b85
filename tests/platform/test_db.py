"""The unit of work: reads outside a transaction, and the guard that keeps them reads."""

from __future__ import annotations

import pytest

from tests.conftest import Shop
from tienda.users import repository


class TestReader:
    async def test_reads_what_was_committed(self, shop: Shop) -> None:
        user_id = await shop.register("reader@example.com")

        async with shop.platform.db("users").reader() as uow:
            user = await repository.user_by_public_id(uow.session, user_id)

        assert user is not None
        assert user.email == "reader@example.com"

    async def test_cannot_commit_or_publish(self, shop: Shop) -> None:
        async with shop.platform.db("users").reader() as uow:
            with pytest.raises(RuntimeError, match="cannot publish"):
                await uow.publish("user.registered", {"userId": "u_x"})
            with pytest.raises(RuntimeError, match="cannot commit"):
                await uow.commit()

        assert await shop.scalar("users", "SELECT count(*) FROM users_outbox_events") == 0
