"""Access tokens and passwords, on the platform's own pieces."""

from __future__ import annotations

import jwt
import pytest

from tienda.platform.auth import PasswordHasher, Role, TokenService
from tienda.platform.cache import MemoryCache
from tienda.platform.clock import FrozenClock
from tienda.platform.errors import Unauthorized

KEY = "k" * 48


def _tokens(clock: FrozenClock, key: str = KEY) -> TokenService:
    return TokenService(key=key, algorithm="HS256", issuer="tienda", ttl_seconds=900, clock=clock, cache=MemoryCache())


class TestAccessTokens:
    async def test_a_token_names_its_subject_and_role(self) -> None:
        tokens = _tokens(FrozenClock())
        issued = tokens.issue("u_abc", Role.ADMIN)

        principal = await tokens.verify(issued.token)

        assert (principal.subject, principal.role, issued.expires_in) == ("u_abc", Role.ADMIN, 900)
        assert principal.is_admin
        assert principal.can_act_for("u_someone_else")

    async def test_expires_by_the_shop_clock(self) -> None:
        clock = FrozenClock()
        tokens = _tokens(clock)
        issued = tokens.issue("u_abc", Role.USER)
        clock.advance(seconds=899)
        await tokens.verify(issued.token)

        clock.advance(seconds=1)

        with pytest.raises(Unauthorized, match="expired"):
            await tokens.verify(issued.token)

    async def test_a_token_signed_with_another_key_is_refused(self) -> None:
        clock = FrozenClock()
        forged = _tokens(clock, key="x" * 48).issue("u_abc", Role.ADMIN)

        with pytest.raises(Unauthorized, match="Invalid"):
            await _tokens(clock).verify(forged.token)

    async def test_a_token_accepted_once_is_still_checked_against_the_key(self) -> None:
        """Verified tokens are remembered: by their exact string and the key, nothing less."""
        clock = FrozenClock()
        issued = _tokens(clock).issue("u_abc", Role.ADMIN)
        await _tokens(clock).verify(issued.token)
        head, payload, signature = issued.token.split(".")
        tampered = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"

        with pytest.raises(Unauthorized, match="Invalid"):
            await _tokens(clock, key="x" * 48).verify(issued.token)
        with pytest.raises(Unauthorized, match="Invalid"):
            await _tokens(clock).verify(tampered)
        assert (await _tokens(clock).verify(issued.token)).subject == "u_abc"

    async def test_an_unknown_role_is_refused(self) -> None:
        token = jwt.encode(
            {"sub": "u_a", "role": "GOD", "exp": 2**40, "jti": "1", "iss": "tienda", "typ": "access"}, KEY
        )

        with pytest.raises(Unauthorized):
            await _tokens(FrozenClock()).verify(token)

    async def test_ending_every_session_refuses_tokens_issued_before(self) -> None:
        clock = FrozenClock()
        tokens = _tokens(clock)
        before = tokens.issue("u_abc", Role.USER)
        other_user = tokens.issue("u_xyz", Role.USER)
        clock.advance(milliseconds=5)

        await tokens.revoke_all("u_abc")
        clock.advance(milliseconds=5)
        after = tokens.issue("u_abc", Role.USER)

        with pytest.raises(Unauthorized, match="revoked"):
            await tokens.verify(before.token)
        assert (await tokens.verify(after.token)).subject == "u_abc"
        assert (await tokens.verify(other_user.token)).subject == "u_xyz"

    async def test_a_revoked_token_is_refused(self) -> None:
        tokens = _tokens(FrozenClock())
        issued = tokens.issue("u_abc", Role.USER)
        principal = await tokens.verify(issued.token)

        await tokens.revoke(principal)

        with pytest.raises(Unauthorized, match="revoked"):
            await tokens.verify(issued.token)

    async def test_a_user_acts_only_for_themselves(self) -> None:
        tokens = _tokens(FrozenClock())
        principal = await tokens.verify(tokens.issue("u_abc", Role.USER).token)

        assert principal.can_act_for("u_abc")
        assert not principal.can_act_for("u_xyz")


class TestPasswords:
    async def test_argon2id_hash_verifies_only_the_right_password(self) -> None:
        hasher = PasswordHasher(time_cost=1, memory_kib=1024, parallelism=1)
        hashed = await hasher.hash("correct horse")

        assert hashed.startswith("$argon2id$")
        assert await hasher.verify(hashed, "correct horse")
        assert not await hasher.verify(hashed, "wrong horse")
        assert not await hasher.verify(None, "correct horse")
        assert not await hasher.verify("not-a-hash", "correct horse")

    async def test_stronger_settings_ask_for_a_rehash(self) -> None:
        weak = PasswordHasher(time_cost=1, memory_kib=1024, parallelism=1)
        strong = PasswordHasher(time_cost=2, memory_kib=2048, parallelism=1)

        assert strong.needs_rehash(await weak.hash("pw-12345678"))
        assert not weak.needs_rehash(await weak.hash("pw-12345678"))
