"""The emulator: an aiohttp app serving the Bot API, file downloads, the control API and the web chat."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from . import api_bot, api_media, api_messages, api_payments  # noqa: F401  (register the Bot API methods)
from .actions import PaymentOutcome, Sent, UserActions
from .api import METHODS, ApiContext, Described, Settings
from .chats import ChatActions, member_object
from .control import setup_control_routes
from .errors import ApiError, too_many_requests
from .params import MAX_BODY, Params, Upload, read_request
from .payments import PaymentRecord, PreCheckoutRecord
from .state import ApiCall, Bot, Chat, Fault, Json, State, User

log = logging.getLogger(__name__)

WEBCHAT_DIR = Path(__file__).with_name("webchat")
# methods that count against Telegram's message rate limits
SENDING_METHODS = frozenset(
    {
        "sendmessage", "sendphoto", "senddocument", "sendvoice", "sendaudio", "sendvideo", "sendvideonote",
        "sendanimation", "sendsticker", "sendmediagroup", "copymessage", "forwardmessage", "copymessages",
        "forwardmessages", "sendlocation", "sendcontact", "senddice", "sendpoll", "sendinvoice",
    }
)  # fmt: skip
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class TelegramEmulator:
    """A local Telegram Bot API server with users you can script (see README.md)."""

    def __init__(
        self,
        *,
        callback_query_timeout: float = 15.0,
        pre_checkout_timeout: float = 10.0,
        webhook_retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
        clock: Callable[[], float] = time.time,
        record_calls: bool = True,
    ) -> None:
        self.settings = Settings(
            callback_query_timeout=callback_query_timeout,
            pre_checkout_timeout=pre_checkout_timeout,
            webhook_retry_delays=webhook_retry_delays,
        )
        self.state = State(clock)
        self.actions = UserActions(self.state, self.settings)
        self.chats = ChatActions(self.state, self.actions)
        self.record_calls = record_calls
        self._faults: list[Fault] = []
        self._rate_per_chat: float | None = None
        self._rate_per_bot: float | None = None
        self._rate_windows: dict[tuple[int, int | None], deque[float]] = defaultdict(deque)
        self._http: aiohttp.ClientSession | None = None
        from .webhook import WebhookManager

        self.webhooks = WebhookManager(
            self.state, self.settings, self._client_session, self._run_from_webhook
        )
        self.ctx = ApiContext(self.state, self.settings, self.webhooks, self._client_session)
        self.app = self._make_app()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0: a free port); returns and sets ``base_url``."""
        self.state.closing = False
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        addresses = self._runner.addresses
        bound_port = int(addresses[0][1]) if addresses else port
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.base_url = f"http://{shown_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        self.state.closing = True
        self.state.wake_all()
        await self.webhooks.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> TelegramEmulator:
        if not self.base_url:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _client_session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    # ------------------------------------------------------------------------------------------ bots & users

    def add_bot(
        self,
        username: str = "test_bot",
        *,
        first_name: str | None = None,
        token: str | None = None,
        bot_id: int | None = None,
    ) -> str:
        """Register a bot; returns its token ``"<bot_id>:<secret>"``."""
        return self.state.add_bot(username, first_name, token, bot_id).token

    def bot(self, bot_id: int | None = None) -> Bot:
        """A bot's state (the first bot added when ``bot_id`` is None)."""
        return self.state.default_bot(bot_id)

    def add_group(
        self,
        chat_id: int,
        title: str,
        *,
        chat_type: str = "supergroup",
        bot_ids: tuple[int, ...] | None = None,
        admin: bool = False,
    ) -> Chat:
        """A group, supergroup or channel with the given bots in it (all bots by default), no updates sent;
        bots are administrators (with every default right) in channels or with ``admin``. See
        ``emu.chats`` (``ChatActions``) for chats with owners, members and the updates Telegram sends."""
        if chat_id >= 0:
            raise ValueError("group and channel ids are negative")
        chat = self.state.chats.get(chat_id) or Chat(id=chat_id, type=chat_type, title=title)
        self.state.chats[chat_id] = chat
        for bot_id in bot_ids if bot_ids is not None else tuple(self.state.bots):
            bot_user = self.state.bots[bot_id].user
            status = "administrator" if admin or chat_type == "channel" else "member"
            chat.members[bot_id] = member_object(chat, bot_user, status)
        return chat

    def add_user(
        self,
        user_id: int,
        first_name: str | None = None,
        *,
        username: str | None = None,
        language_code: str | None = None,
        started: bool = True,
    ) -> User:
        return self.actions.add_user(user_id, first_name, username, language_code, started=started)

    def user_send(self, user_id: int, text: str, *, bot_id: int | None = None, **kwargs: Any) -> Sent:
        return self.actions.send(user_id, text, bot_id=bot_id, **kwargs)

    def user_press(
        self, user_id: int, message_id: int, callback_data: str, *, bot_id: int | None = None
    ) -> tuple[int | None, str]:
        return self.actions.press(user_id, message_id, callback_data, bot_id=bot_id)

    def push_update(self, update: Json, *, bot_id: int | None = None) -> int:
        return self.actions.raw_update(update, bot_id=bot_id)

    def block(self, user_id: int, blocked: bool = True, *, bot_id: int | None = None) -> None:
        self.actions.block(user_id, blocked, bot_id)

    def messages(self, chat_id: int, *, bot_id: int | None = None, by_bot: bool | None = None) -> list[Json]:
        """All messages currently in a chat (as the bot sees it), oldest first; ``by_bot`` True keeps only
        those a bot sent (in channels they carry no ``from``), False only the users'."""
        bot = self.bot(bot_id)
        conv = self.state.conversations.get((bot.id, chat_id)) or self.state.conversations.get((0, chat_id))
        if conv is None:
            return []
        return [s.message for s in conv.messages.values() if by_bot is None or s.by_bot == by_bot]

    # ------------------------------------------------------------------------------------------ payments

    async def user_pay(
        self,
        user_id: int,
        message_id: int | None = None,
        *,
        link: str | None = None,
        bot_id: int | None = None,
        tip_amount: int = 0,
        order_info: Json | None = None,
    ) -> PaymentOutcome:
        """The user pays an invoice message or link; returns once the payment succeeded or failed."""
        return await self.actions.pay(
            user_id, message_id, link=link, bot_id=bot_id, tip_amount=tip_amount, order_info=order_info
        )

    def payments(self, *, bot_id: int | None = None, user_id: int | None = None) -> list[PaymentRecord]:
        """Successful payments (refunded ones included), oldest first."""
        found = self.bot(bot_id).payments.payments.values()
        return [p for p in found if user_id is None or p.user_id == user_id]

    def pre_checkout_queries(
        self, *, bot_id: int | None = None, user_id: int | None = None
    ) -> list[PreCheckoutRecord]:
        """Every pre-checkout query with its outcome and ``answer_seconds``, oldest first."""
        found = self.bot(bot_id).payments.queries.values()
        return [q for q in found if user_id is None or q.user_id == user_id]

    def redeliver_payment(
        self, telegram_payment_charge_id: str, *, same_update_id: bool = True, bot_id: int | None = None
    ) -> int:
        """Deliver a successful_payment again: the same update (same update_id) or a new one."""
        return self.actions.redeliver_payment(
            telegram_payment_charge_id, same_update_id=same_update_id, bot_id=bot_id
        )

    def redeliver_update(self, update: Json, *, bot_id: int | None = None) -> int:
        """Deliver an update again unchanged (same update_id), as after a failed webhook delivery."""
        return self.actions.redeliver_update(update, bot_id=bot_id)

    def pending_updates(self, bot_id: int | None = None) -> list[Json]:
        bot = self.bot(bot_id)
        return [*bot.redeliveries, *(update for _, _, update in bot.updates)]

    # ------------------------------------------------------------------------------------------ test helpers

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = 1,
        times: int = 1,
        *,
        bot_id: int | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ("*" for any) fail with ``error_code``."""
        if description is None:
            if error_code == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
            else:
                description = _DEFAULT_DESCRIPTIONS.get(error_code, "Internal Server Error")
        self._faults.append(
            Fault(
                method=method.lower(),
                bot_id=bot_id,
                error_code=error_code,
                description=description,
                retry_after=(retry_after or 1) if error_code == 429 else None,
                times=times,
                delay=delay,
            )
        )

    def _take_fault(self, bot: Bot, name: str) -> Fault | None:
        for fault in self._faults:
            if fault.method in (name, "*") and fault.bot_id in (None, bot.id):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @property
    def calls(self) -> dict[int, list[ApiCall]]:
        """Every Bot API request per bot id: ``ApiCall(method, params, chat_id, at, error)``."""
        return {bot_id: bot.calls for bot_id, bot in self.state.bots.items()}

    def calls_of(self, method: str | None = None, *, bot_id: int | None = None) -> list[ApiCall]:
        """The calls of one bot (default: the first), optionally only of ``method`` (case-insensitive)."""
        calls = self.bot(bot_id).calls
        if method is None:
            return list(calls)
        wanted = method.lower()
        return [call for call in calls if call.method.lower() == wanted]

    def clear_calls(self) -> None:
        for bot in self.state.bots.values():
            bot.calls.clear()

    def max_requests_per_second(
        self,
        chat_id: int | None = None,
        *,
        bot_id: int | None = None,
        methods: Iterable[str] | None = SENDING_METHODS,
        window: float = 1.0,
    ) -> int:
        """The most requests within any ``window`` seconds (to ``chat_id``, or to any one chat if None).

        By default only message-sending methods count (Telegram's limits are about messages).
        """
        wanted = None if methods is None else {m.lower() for m in methods}
        per_chat: dict[int | None, list[float]] = defaultdict(list)
        for call in self.bot(bot_id).calls:
            if wanted is not None and call.method.lower() not in wanted:
                continue
            if chat_id is not None and call.chat_id != chat_id:
                continue
            per_chat[call.chat_id].append(call.at)
        best = 0
        for times in per_chat.values():
            times.sort()
            start = 0
            for end, at in enumerate(times):
                while at - times[start] >= window:
                    start += 1
                best = max(best, end - start + 1)
        return best

    def total_requests_per_second(
        self,
        *,
        bot_id: int | None = None,
        methods: Iterable[str] | None = SENDING_METHODS,
        window: float = 1.0,
    ) -> int:
        """The most requests (across all chats) within any ``window`` seconds."""
        wanted = None if methods is None else {m.lower() for m in methods}
        times = sorted(
            call.at for call in self.bot(bot_id).calls if wanted is None or call.method.lower() in wanted
        )
        best = 0
        start = 0
        for end, at in enumerate(times):
            while at - times[start] >= window:
                start += 1
            best = max(best, end - start + 1)
        return best

    def set_rate_limits(self, per_chat: float | None = None, per_bot: float | None = None) -> None:
        """Enforce limits on sending methods: answer 429 above ``per_chat`` / ``per_bot`` a second."""
        self._rate_per_chat = per_chat
        self._rate_per_bot = per_bot
        self._rate_windows.clear()

    def _check_rate(self, bot: Bot, name: str, chat_id: int | None) -> None:
        if name not in SENDING_METHODS or (self._rate_per_chat is None and self._rate_per_bot is None):
            return
        now = time.monotonic()
        checks: list[tuple[tuple[int, int | None], float]] = []
        if self._rate_per_chat is not None and chat_id is not None:
            checks.append(((bot.id, chat_id), self._rate_per_chat))
        if self._rate_per_bot is not None:
            checks.append(((bot.id, None), self._rate_per_bot))
        for key, limit in checks:
            window = self._rate_windows[key]
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= limit:
                raise too_many_requests(max(1, math.ceil(1.0 - (now - window[0]))))
        for key, _ in checks:
            self._rate_windows[key].append(now)

    # ------------------------------------------------------------------------------------------ HTTP

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file_download)
        app.router.add_get("/sandbox/files/{file_id}", self._handle_sandbox_file)
        setup_control_routes(app, self)
        app.router.add_get("/", self._handle_index)
        app.router.add_get("/webchat/{path:.+}", self._handle_webchat)
        return app

    async def _handle_bot_api(self, request: web.Request) -> web.Response:
        bot = self.state.tokens.get(request.match_info["token"])
        if bot is None:
            return _error_response(ApiError(401, "Unauthorized"))
        method = request.match_info["method"]
        started = time.monotonic()
        try:
            data, files = await read_request(request)
        except ApiError as exc:
            return _error_response(exc)
        params = Params(data, files)
        result: Any = None
        error: ApiError | None = None
        try:
            result = await self.call(bot, method, params)
        except ApiError as exc:
            error = exc
        except Exception:
            log.exception("Bot API method %s failed", method)
            error = ApiError(500, "Internal Server Error")
        if self.record_calls:
            bot.calls.append(
                ApiCall(
                    method, params.loggable(), _chat_id(data), started, error.description if error else None
                )
            )
        if error is not None:
            return _error_response(error)
        if isinstance(result, Described):
            return web.json_response({"ok": True, "result": result.result, "description": result.description})
        return web.json_response({"ok": True, "result": result})

    async def call(self, bot: Bot, method: str, params: Params) -> Any:
        """Run a Bot API method for ``bot`` (fault injection and rate limits included)."""
        name = method.lower()
        fault = self._take_fault(bot, name)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            raise ApiError(fault.error_code, fault.description, retry_after=fault.retry_after)
        handler = METHODS.get(name)
        if handler is None:
            raise ApiError(404, "Not Found")
        self._check_rate(bot, name, _chat_id(params.data))
        return await handler(self.ctx, bot, params)

    async def _run_from_webhook(
        self, bot: Bot, method: str, data: dict[str, Any], files: dict[str, Any]
    ) -> None:
        params = Params(data, {k: v for k, v in files.items() if isinstance(v, Upload)})
        error: str | None = None
        started = time.monotonic()
        try:
            await self.call(bot, method, params)
        except ApiError as exc:
            error = exc.description
        if self.record_calls:
            bot.calls.append(ApiCall(method, params.loggable(), _chat_id(data), started, error))

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        bot = self.state.tokens.get(request.match_info["token"])
        if bot is None:
            return _error_response(ApiError(401, "Unauthorized"))
        record = self.state.files_by_path.get(request.match_info["path"])
        if record is None:
            return _error_response(ApiError(404, "Not Found"))
        return web.Response(body=record.data, content_type=record.mime_type)

    async def _handle_sandbox_file(self, request: web.Request) -> web.StreamResponse:
        record = self.state.files.get(request.match_info["file_id"])
        if record is None:
            raise web.HTTPNotFound()
        headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
        if not record.mime_type.startswith(("image/", "audio/", "video/")):
            name = (record.file_name or record.file_path.rsplit("/", 1)[-1]).replace('"', "")
            headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return web.Response(body=record.data, content_type=record.mime_type, headers=headers)

    async def _handle_index(self, request: web.Request) -> web.StreamResponse:
        return _static(WEBCHAT_DIR / "index.html")

    async def _handle_webchat(self, request: web.Request) -> web.StreamResponse:
        relative = request.match_info["path"]
        root = WEBCHAT_DIR.resolve()
        target = (WEBCHAT_DIR / relative).resolve()
        if root not in target.parents:
            raise web.HTTPNotFound()
        return _static(target)


def _static(path: Path) -> web.StreamResponse:
    if not path.is_file():
        raise web.HTTPNotFound(text="web chat not found")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


def _error_response(error: ApiError) -> web.Response:
    return web.json_response(error.payload(), status=error.code)


def _chat_id(data: dict[str, Any]) -> int | None:
    value = data.get("chat_id")
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
