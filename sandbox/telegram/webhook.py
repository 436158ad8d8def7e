"""Webhook delivery: one task per bot POSTs its queued updates in order, retrying failures with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from .api import Settings
from .state import Bot, State

log = logging.getLogger(__name__)

# runs a Bot API method a webhook answer asked for: (bot, method, params, files)
MethodRunner = Callable[[Bot, str, dict[str, Any], dict[str, Any]], Awaitable[None]]


class WebhookManager:
    def __init__(
        self, state: State, settings: Settings, http: Callable[[], aiohttp.ClientSession], run: MethodRunner
    ) -> None:
        self.state = state
        self.settings = settings
        self.http = http
        self.run_method = run
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.delivered: dict[int, int] = {}  # bot id -> number of updates delivered

    def start(self, bot: Bot) -> None:
        task = self.tasks.get(bot.id)
        if task is None or task.done():
            self.tasks[bot.id] = asyncio.get_running_loop().create_task(
                self._deliver(bot), name=f"webhook-{bot.id}"
            )
        else:
            bot.updates_signal.fire()  # the url may have changed: wake the loop

    def stop(self, bot: Bot) -> None:
        task = self.tasks.pop(bot.id, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver(self, bot: Bot) -> None:
        failures = 0
        while bot.webhook is not None:
            handle = bot.updates_signal.wait_handle()
            if not bot.updates and not bot.redeliveries:
                await handle.wait()
                continue
            hook = bot.webhook
            again = bool(bot.redeliveries)
            update = bot.redeliveries[0] if again else bot.updates[0][2]
            error = await self._post(bot, hook.url, hook.secret_token, update)
            if error is None:
                failures = 0
                if again:
                    if bot.redeliveries and bot.redeliveries[0] is update:
                        bot.redeliveries.popleft()
                elif bot.updates and bot.updates[0][2] is update:
                    bot.updates.popleft()
                self.delivered[bot.id] = self.delivered.get(bot.id, 0) + 1
                continue
            hook.last_error_date = self.state.now()
            hook.last_error_message = error
            delays = self.settings.webhook_retry_delays
            delay = delays[min(failures, len(delays) - 1)] if delays else 0.1
            failures += 1
            with contextlib.suppress(TimeoutError):
                # sleep, but wake early if the webhook is changed or removed
                await asyncio.wait_for(self._changed(bot, hook), delay)

    @staticmethod
    async def _changed(bot: Bot, hook: object) -> None:
        while bot.webhook is hook:
            await bot.updates_signal.wait_handle().wait()

    async def _post(self, bot: Bot, url: str, secret: str | None, update: dict[str, Any]) -> str | None:
        headers = {"Content-Type": "application/json"}
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout)
        try:
            async with self.http().post(
                url, data=json.dumps(update), headers=headers, timeout=timeout
            ) as resp:
                if not 200 <= resp.status < 300:
                    return f"Wrong response from the webhook: {resp.status} {resp.reason or ''}".rstrip()
                await self._answer_method(bot, resp)
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except aiohttp.ClientError as exc:
            return f"Connection error: {exc.__class__.__name__}"
        return None

    async def _answer_method(self, bot: Bot, resp: aiohttp.ClientResponse) -> None:
        """A webhook may answer with a method call (JSON or form data), which Telegram then executes."""
        params: dict[str, Any] = {}
        files: dict[str, Any] = {}
        if resp.content_type == "application/json":
            with contextlib.suppress(ValueError, aiohttp.ContentTypeError):
                body = await resp.json()
                if isinstance(body, dict):
                    params = body
        elif resp.content_type == "multipart/form-data":
            params, files = await _read_multipart(resp)
        name = params.pop("method", None)
        if isinstance(name, str) and name:
            try:
                await self.run_method(bot, name, params, files)
            except Exception:  # the answer's result is not reported anywhere, as with Telegram
                log.exception("webhook answer method %s failed", name)


async def _read_multipart(resp: aiohttp.ClientResponse) -> tuple[dict[str, Any], dict[str, Any]]:
    from .params import Upload

    params: dict[str, Any] = {}
    files: dict[str, Any] = {}
    reader = aiohttp.MultipartReader.from_response(resp)
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
            continue
        data = await part.read(decode=True)
        if part.filename:
            files[part.name] = Upload(part.filename, bytes(data), part.headers.get("Content-Type"))
        else:
            params[part.name] = bytes(data).decode("utf-8", "replace")
    return params, files
