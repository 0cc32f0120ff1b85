"""Redis commands of one process that are asked for together go to Redis as one pipeline.

redis-py sends each command on a connection of its own, taken from the pool and given back:
about 50 us of CPU a command at 16 in flight, most of it the client's own bookkeeping (pool,
retry wrapper, observability hooks, one `send` each). `AutoPipeline` sends the commands that
arrive while a pipeline is out in the next one (`platform.combining.Combiner`: one batch in
flight, the next formed behind it), as ioredis's `enableAutoPipelining` and go-redis's
pipelining do: one write and one read of a socket for all of them, 18-26 us a command in
pipelines of 4-8. Each command's reply, or its own error, goes to its caller; a command is
never joined to another in a transaction (a pipeline is not MULTI/EXEC), so the atomicity of
each command (a Lua script's included) is what Redis gives it alone.
"""

from __future__ import annotations

import weakref
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from tienda.platform.combining import Combiner

Command = tuple[Any, ...]


class AutoPipeline:
    def __init__(self, client: Redis, *, max_batch: int = 64) -> None:
        self._client = weakref.ref(client)  # the client's callers keep it; this must not
        self._combiner: Combiner[None, Command, Any] = Combiner(self._send, max_batch=max_batch)

    async def execute(self, *args: Any) -> Any:
        """The reply to one command (`"HGETALL", key`), parsed as redis-py parses it; a
        command's error is raised to its caller only."""
        reply = await self._combiner.submit(None, args)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def run_script(self, script: AsyncScript, *, keys: list[str], args: list[Any]) -> Any:
        """`script(keys=..., args=...)` by its SHA in the pipeline; loaded first, as redis-py's
        own call does, when Redis does not know it (after a restart or `SCRIPT FLUSH`)."""
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await script(keys=keys, args=args)

    async def _send(self, _: None, commands: list[Command]) -> list[Any]:
        client = self._client()
        if client is None:
            raise RuntimeError("the Redis client of this pipeline is gone")
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))


_PIPELINES: weakref.WeakKeyDictionary[Redis, AutoPipeline] = weakref.WeakKeyDictionary()


def auto_pipeline(client: Redis) -> AutoPipeline:
    """The one `AutoPipeline` of `client`: every user of a client shares its pipelines."""
    pipeline = _PIPELINES.get(client)
    if pipeline is None:
        pipeline = _PIPELINES[client] = AutoPipeline(client)
    return pipeline
