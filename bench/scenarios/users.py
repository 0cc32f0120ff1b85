"""The users module: sign-in (argon2-bound by design) and an authenticated read."""

from __future__ import annotations

from collections.abc import Sequence

from bench.data import load_users, production_hash
from bench.flows import FlowClient, expect
from bench.scenario import BenchModule, LoadContext, Scenario, Target


async def load(ctx: LoadContext) -> None:
    await load_users(ctx.database_url, ctx.users, await production_hash(ctx.settings))


def _credentials(target: Target) -> list[tuple[str, str]]:
    return [(u.email, target.password) for u in target.sample()]


def _profiles(target: Target) -> list[tuple[str, str]]:
    return [(u.user_id, target.token_for(u.user_id)) for u in target.sample()]


async def session_flow(client: FlowClient, row: Sequence[str]) -> None:
    """Sign in, read one's profile with the new token, rotate the refresh token."""
    email, password = row
    tokens = expect(await client.post("/api/v1/users/login", json={"email": email, "password": password}), "login")
    auth = {"Authorization": f"Bearer {tokens['accessToken']}"}
    expect(await client.get(f"/api/v1/users/{tokens['userId']}", headers=auth), "profile")
    expect(await client.post("/api/v1/users/refresh-token", json={"refreshToken": tokens["refreshToken"]}), "refresh")


MODULE = BenchModule(
    name="users",
    load=load,
    scenarios=(
        Scenario(
            name="login",
            description="POST /api/v1/users/login with a right password, a different user each request. "
            "Bound by argon2id at the production cost, so it is compared with argon2 alone.",
            concurrencies=(8, 32),
            lua="login.lua",
            rows=_credentials,
            ceiling="argon2",
        ),
        Scenario(
            name="healthz",
            description="GET /healthz: the shop's own stack with no I/O (framework floor); "
            "read get_profile against it to see what auth and the database add.",
            concurrencies=(32,),
            lua="healthz.lua",
            rows=lambda target: [],
        ),
        Scenario(
            name="get_profile",
            description="GET /api/v1/users/{userId} with that user's bearer token, spread over 2,000 users: "
            "JWT check, revocation lookup in Redis, one indexed SELECT.",
            concurrencies=(32, 64),
            lua="get_profile.lua",
            rows=_profiles,
        ),
        Scenario(
            name="session_flow",
            description="asyncio client, one flow = login, GET own profile, POST refresh-token "
            "(3 requests on a reused connection). Figures are flows/s.",
            concurrencies=(8,),
            flow=session_flow,
            rows=_credentials,
            ceiling="argon2",
        ),
    ),
)
