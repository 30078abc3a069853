"""How a stream waits for new events: a Redis subscription where the worker announces them
(store/event_bus.py), else a plain sleep; either way at most event_poll_seconds, so a lost
announcement costs one poll, never an event (the table is read after every wait)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import anyio
import redis.asyncio as aioredis

from store.event_bus import channel, redis_url
from store.settings import Settings


class Waiter(Protocol):
    async def wait(self) -> None: ...


class _Sleep:
    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    async def wait(self) -> None:
        await anyio.sleep(self._seconds)


class _Subscription:
    def __init__(self, pubsub: aioredis.client.PubSub, seconds: float) -> None:
        self._pubsub, self._seconds = pubsub, seconds

    async def wait(self) -> None:
        with anyio.move_on_after(self._seconds):
            try:
                while True:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True,
                                                             timeout=self._seconds)
                    if message is not None:
                        return
            except aioredis.RedisError:  # Redis went away: this wait becomes a poll
                await anyio.sleep(self._seconds)


def waiter(settings: Settings, kind: str, key: str) -> AbstractAsyncContextManager[Waiter]:
    url = redis_url(settings)
    if url is None:
        return _sleeping(settings.event_poll_seconds)
    return _subscribed(url, channel(kind, key), settings.event_poll_seconds)


@asynccontextmanager
async def _sleeping(seconds: float) -> AsyncIterator[Waiter]:
    yield _Sleep(seconds)


@asynccontextmanager
async def _subscribed(url: str, name: str, seconds: float) -> AsyncIterator[Waiter]:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    pubsub = client.pubsub()
    try:
        try:
            await pubsub.subscribe(name)
        except aioredis.RedisError:  # Redis down: the stream polls the table instead
            yield _Sleep(seconds)
            return
        yield _Subscription(pubsub, seconds)
    finally:
        await pubsub.aclose()
        await client.aclose()
