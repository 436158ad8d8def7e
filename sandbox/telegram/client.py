"""Async test client for the emulator's control API: act as Telegram users and read what the bot answers.

async with EmulatorClient(emu.base_url) as client:
    alice = client.user(1001, first_name="Alice", language_code="en")
    await alice.send("/start")
    reply = await alice.next_message()
    await alice.press(reply, text="Buy")
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

Json = dict[str, Any]
Predicate = Callable[["BotMessage"], bool]


@dataclass(frozen=True)
class BotMessage:
    """A bot message as the user saw it at one moment (a new message, or an edit of an earlier one)."""

    raw: Json  # the Bot API Message plus the emulator's "html" / "file_url" / "reply_keyboard"
    edited: bool = False

    @property
    def message_id(self) -> int:
        return int(self.raw["message_id"])

    @property
    def chat_id(self) -> int:
        return int(self.raw["chat"]["id"])

    @property
    def text(self) -> str:
        """The text, or the caption of a media message ("" if neither)."""
        return str(self.raw.get("text", self.raw.get("caption", "")))

    @property
    def html(self) -> str:
        return str(self.raw.get("html", ""))

    @property
    def entities(self) -> list[Json]:
        value = self.raw.get("entities", self.raw.get("caption_entities"))
        return list(value) if isinstance(value, list) else []

    @property
    def buttons(self) -> list[list[tuple[str, str | None]]]:
        """Inline keyboard rows of (text, callback_data or url)."""
        markup = self.raw.get("reply_markup") or {}
        return [
            [(b["text"], b.get("callback_data", b.get("url"))) for b in row]
            for row in markup.get("inline_keyboard", [])
        ]

    @property
    def button_texts(self) -> list[str]:
        return [text for row in self.buttons for text, _ in row]

    @property
    def reply_keyboard(self) -> Json | None:
        """The ReplyKeyboardMarkup / ReplyKeyboardRemove / ForceReply sent with the message, if any."""
        value = self.raw.get("reply_keyboard")
        return dict(value) if isinstance(value, dict) else None

    @property
    def photo(self) -> list[Json] | None:
        value = self.raw.get("photo")
        return list(value) if isinstance(value, list) else None

    @property
    def document(self) -> Json | None:
        value = self.raw.get("document")
        return dict(value) if isinstance(value, dict) else None

    @property
    def file_url(self) -> str | None:
        value = self.raw.get("file_url")
        return str(value) if value else None

    @property
    def invoice(self) -> Json | None:
        """The Invoice of an invoice message (title, description, currency, total_amount, start_parameter)."""
        value = self.raw.get("invoice")
        return dict(value) if isinstance(value, dict) else None

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


@dataclass(frozen=True)
class PaymentResult:
    """The outcome of paying an invoice (see ``ChatUser.pay``)."""

    raw: Json

    @property
    def status(self) -> str:
        """ "paid" or "failed"."""
        return str(self.raw["status"])

    @property
    def paid(self) -> bool:
        return self.status == "paid"

    @property
    def reason(self) -> str | None:
        """Why it failed: "declined" (answered ok=false) or "timeout" (not answered in time)."""
        return self.raw.get("reason")

    @property
    def error_message(self) -> str | None:
        return self.raw.get("error_message")

    @property
    def answer_seconds(self) -> float | None:
        """How long the bot took to answer the pre-checkout query (None if it did not)."""
        value = self.raw.get("answer_seconds")
        return None if value is None else float(value)

    @property
    def pre_checkout_query_id(self) -> str:
        return str(self.raw["pre_checkout_query_id"])

    @property
    def telegram_payment_charge_id(self) -> str | None:
        return self.raw.get("telegram_payment_charge_id")

    @property
    def update_id(self) -> int | None:
        """The update that carried the successful_payment message."""
        value = self.raw.get("update_id")
        return None if value is None else int(value)

    @property
    def message(self) -> Json | None:
        """The user's service message with ``successful_payment``."""
        return self.raw.get("message")


class ControlError(RuntimeError):
    """The control API refused a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class EmulatorClient:
    def __init__(self, base_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._own_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> EmulatorClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, *, params: Json | None = None, **kwargs: Any) -> Any:
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}/sandbox/api/{path}"
        async with self.session.request(method, url, params=query, **kwargs) as response:
            body = await response.json(content_type=None)
            if response.status >= 400:
                message = body.get("error") if isinstance(body, dict) else str(body)
                raise ControlError(response.status, str(message))
            return body

    async def post(self, path: str, body: Json) -> Any:
        return await self.request("POST", path, json={k: v for k, v in body.items() if v is not None})

    def user(
        self,
        user_id: int,
        first_name: str | None = None,
        *,
        language_code: str | None = None,
        username: str | None = None,
        last_name: str | None = None,
        bot_id: int | None = None,
    ) -> ChatUser:
        return ChatUser(self, user_id, first_name, language_code, username, last_name, bot_id)

    async def bots(self) -> list[Json]:
        return list(await self.request("GET", "bots"))

    async def raw_update(self, update: Json, bot_id: int | None = None) -> int:
        return int((await self.post("raw_update", {"update": update, "bot_id": bot_id}))["update_id"])

    async def bot_state(self, bot_id: int | None = None) -> Json:
        return dict(await self.request("GET", "bot_state", params={"bot_id": bot_id}))

    async def calls(self, bot_id: int | None = None, since: int = 0) -> list[Json]:
        return list(await self.request("GET", "calls", params={"bot_id": bot_id, "since": since}))

    async def fail_next(
        self,
        method: str,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int = 1,
        times: int = 1,
        bot_id: int | None = None,
    ) -> None:
        await self.post(
            "fail_next",
            {
                "method": method,
                "error_code": error_code,
                "description": description,
                "retry_after": retry_after,
                "times": times,
                "bot_id": bot_id,
            },
        )

    async def payments(self, bot_id: int | None = None, user_id: int | None = None) -> list[Json]:
        """Successful payments (``status`` "paid" or "refunded"), oldest first."""
        return list(await self.request("GET", "payments", params={"bot_id": bot_id, "user_id": user_id}))

    async def pre_checkout_queries(self, bot_id: int | None = None, user_id: int | None = None) -> list[Json]:
        """Pre-checkout queries with ``status``, ``ok``, ``error_message`` and ``answer_seconds``."""
        params = {"bot_id": bot_id, "user_id": user_id}
        return list(await self.request("GET", "pre_checkout_queries", params=params))

    async def invoices(self, bot_id: int | None = None) -> list[Json]:
        """Every invoice the bot sent or linked, with its payload and prices."""
        return list(await self.request("GET", "invoices", params={"bot_id": bot_id}))

    async def redeliver_payment(
        self, telegram_payment_charge_id: str, *, same_update_id: bool = True, bot_id: int | None = None
    ) -> int:
        """Deliver a successful_payment to the bot again; returns the update_id used."""
        body = {
            "telegram_payment_charge_id": telegram_payment_charge_id,
            "same_update_id": same_update_id,
            "bot_id": bot_id,
        }
        return int((await self.post("redeliver_payment", body))["update_id"])

    async def redeliver_update(self, update: Json, bot_id: int | None = None) -> int:
        """Deliver an update again unchanged (same update_id)."""
        return int((await self.post("redeliver_update", {"update": update, "bot_id": bot_id}))["update_id"])

    # ------------------------------------------------------------------------------ groups and channels

    async def create_chat(
        self,
        chat_type: str,
        title: str,
        owner_id: int,
        *,
        username: str | None = None,
        chat_id: int | None = None,
        signatures: bool = False,
    ) -> Json:
        """A new channel, supergroup or group owned by ``owner_id``; returns it as ``chat_info`` does
        (``chat``, ``members``, ``bots``, ``status``, ``can_post``, ...)."""
        body = {
            "type": chat_type,
            "title": title,
            "owner_id": owner_id,
            "username": username,
            "chat_id": chat_id,
            "signatures": signatures or None,
        }
        return dict(await self.post("chats", body))

    async def create_channel(self, title: str, owner_id: int, **kwargs: Any) -> int:
        """A channel owned by ``owner_id``; returns its id."""
        return int((await self.create_chat("channel", title, owner_id, **kwargs))["chat"]["id"])

    async def create_group(self, title: str, owner_id: int, *, supergroup: bool = True, **kwargs: Any) -> int:
        """A supergroup (or a basic group) owned by ``owner_id``; returns its id."""
        kind = "supergroup" if supergroup else "group"
        return int((await self.create_chat(kind, title, owner_id, **kwargs))["chat"]["id"])

    async def set_member(
        self,
        chat_id: int | str,
        user_id: int,
        status: str = "member",
        *,
        rights: Json | None = None,
        by: int | None = None,
        custom_title: str | None = None,
    ) -> Json:
        """Add (``member``), promote (``administrator`` with ``rights``: can_* overrides of the defaults),
        restrict, remove (``left``) or ban (``kicked``) a user or a bot. Returns ``{"member", "updates":
        {bot id: update id}, "message"}`` (the service message in groups)."""
        body = {
            "chat_id": chat_id,
            "user_id": user_id,
            "status": status,
            "rights": rights,
            "by": by,
            "custom_title": custom_title,
        }
        return dict(await self.post("chat_member", body))

    async def set_bot_member(
        self,
        chat_id: int | str,
        status: str = "administrator",
        *,
        rights: Json | None = None,
        bot_id: int | None = None,
        by: int | None = None,
    ) -> Json:
        """The bot's own membership (default: the first bot): it gets a my_chat_member update."""
        body = {"chat_id": chat_id, "bot_id": bot_id, "status": status, "rights": rights, "by": by}
        return dict(await self.post("chat_member", body))

    async def post_in(
        self, chat_id: int | str, user_id: int, text: str, *, reply_to_message_id: int | None = None
    ) -> Json:
        """A user posts in a channel (as the channel) or writes in a group; returns the message."""
        body = {
            "chat_id": chat_id,
            "user_id": user_id,
            "text": text,
            "reply_to_message_id": reply_to_message_id,
        }
        return dict((await self.post("post", body))["message"])

    async def edit_post(self, chat_id: int | str, user_id: int, message_id: int, text: str) -> Json:
        body = {"chat_id": chat_id, "user_id": user_id, "message_id": message_id, "text": text}
        return dict((await self.post("edit_post", body))["message"])

    async def chats(self, user_id: int | None = None) -> list[Json]:
        """The groups and channels ``user_id`` is in (all of them without a user)."""
        return list(await self.request("GET", "chats", params={"user_id": user_id}))

    async def chat_info(self, chat_id: int | str, user_id: int | None = None) -> Json:
        return dict(await self.request("GET", "chat_info", params={"chat_id": chat_id, "user_id": user_id}))

    async def chat_messages(
        self, chat_id: int | str, *, by_bot: bool | None = None, user_id: int | None = None
    ) -> list[BotMessage]:
        """The messages now in a group or channel, oldest first (``by_bot``: only bots' / only users')."""
        params: Json = {"chat_id": chat_id, "user_id": user_id}
        if by_bot is not None:
            params["by_bot"] = "true" if by_bot else "false"
        return [BotMessage(m) for m in await self.request("GET", "messages", params=params)]

    async def wait_chat_messages(
        self,
        chat_id: int | str,
        count: int = 1,
        *,
        by_bot: bool | None = True,
        predicate: Predicate | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[BotMessage]:
        """Wait until a group or channel holds at least ``count`` messages (by bots by default, matching
        ``predicate`` if given); returns them all. Waits on the chat's event stream, not by sleeping."""
        deadline = time.monotonic() + timeout
        since = 0
        while True:
            found = [
                m
                for m in await self.chat_messages(chat_id, by_bot=by_bot)
                if predicate is None or predicate(m)
            ]
            if len(found) >= count:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(found)} of {count} messages in chat {chat_id} after {timeout}s")
            params = {"chat_id": chat_id, "since": since, "timeout": round(min(remaining, 10.0), 3)}
            since = int((await self.request("GET", "chat", params=params))["seq"])

    async def open_link(self, user_id: int, url: str, *, language_code: str | None = None) -> Json:
        """The user opens a t.me link: a bot's deep link sends ``/start <payload>`` to that bot."""
        body = {"user_id": user_id, "url": url, "language_code": language_code}
        return dict(await self.post("open_link", body))

    async def download(self, file_url: str) -> bytes:
        url = file_url if file_url.startswith("http") else f"{self.base_url}{file_url}"
        async with self.session.get(url) as response:
            response.raise_for_status()
            return await response.read()


class ChatUser:
    """One user in his private chat with a bot. Bot messages and edits are read in order, each once."""

    POLL_SLICE = 10.0

    def __init__(
        self,
        client: EmulatorClient,
        user_id: int,
        first_name: str | None,
        language_code: str | None,
        username: str | None,
        last_name: str | None,
        bot_id: int | None,
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.bot_id = bot_id
        self._profile = {
            "first_name": first_name,
            "language_code": language_code,
            "username": username,
            "last_name": last_name,
        }
        self._registered = False
        self._cursor = 0
        self._queue: deque[BotMessage] = deque()
        self._history: dict[int, BotMessage] = {}
        self.deleted: list[int] = []
        self.chat_actions: list[str] = []
        self.callback_answers: dict[str, Json] = {}
        self.keyboard: Json | None = None  # the reply keyboard currently shown
        self.payment_events: list[Json] = []  # "payment" chat events: paid, failed, refunded

    # ------------------------------------------------------------------------------------------ actions

    async def _register(self) -> None:
        if not self._registered:
            await self.client.post("users", {"user_id": self.user_id, "bot_id": self.bot_id, **self._profile})
            self._registered = True

    async def send(self, text: str, *, reply_to_message_id: int | None = None) -> Json:
        """Send a text message; returns the user's message (as stored in the chat)."""
        await self._register()
        body = {"user_id": self.user_id, "text": text, "bot_id": self.bot_id}
        body["reply_to_message_id"] = reply_to_message_id
        return dict((await self.client.post("send", body))["message"])

    async def press(self, message: BotMessage | int, text: str | None = None, data: str | None = None) -> str:
        """Press an inline button of a bot message, chosen by text or callback_data; returns the query id."""
        if isinstance(message, int):
            message_id = message
            found = self._history.get(message_id)
            rows = found.buttons if found else []
        else:
            message_id = message.message_id
            latest = self._history.get(message_id) if message.chat_id == self.user_id else None
            rows = (latest or message).buttons
        if data is None:
            matches = [value for row in rows for label, value in row if text is None or label == text]
            if not matches:
                labels = [label for row in rows for label, _ in row]
                raise LookupError(f"no button {text!r} in message {message_id}; buttons: {labels}")
            data = matches[0]
            if data is None:
                raise LookupError(f"button {text!r} has no callback_data")
        await self._register()
        body = {
            "user_id": self.user_id,
            "message_id": message_id,
            "callback_data": data,
            "bot_id": self.bot_id,
        }
        if isinstance(message, BotMessage) and message.chat_id < 0:
            body["chat_id"] = message.chat_id  # a bot's message in a group or channel
        return str((await self.client.post("press", body))["callback_query_id"])

    async def edit(self, message_id: int, text: str) -> int | None:
        """Edit one of the user's own messages (the bot gets an edited_message update)."""
        body = {"user_id": self.user_id, "message_id": message_id, "text": text, "bot_id": self.bot_id}
        result = await self.client.post("edit", body)
        return None if result.get("update_id") is None else int(result["update_id"])

    async def upload(
        self,
        kind: str,
        data: bytes,
        filename: str = "file",
        duration: int | None = None,
        *,
        caption: str | None = None,
        mime_type: str | None = None,
    ) -> Json:
        """Send a voice, audio, document, photo or video_note; returns the user's message."""
        await self._register()
        form = aiohttp.FormData()
        form.add_field("user_id", str(self.user_id))
        form.add_field("kind", kind)
        for name, value in (("duration", duration), ("caption", caption), ("mime_type", mime_type)):
            if value is not None:
                form.add_field(name, str(value))
        if self.bot_id is not None:
            form.add_field("bot_id", str(self.bot_id))
        form.add_field("file", data, filename=filename, content_type=mime_type or "application/octet-stream")
        return dict((await self.client.request("POST", "upload", data=form))["message"])

    async def pay(
        self,
        invoice: BotMessage | int | str,
        *,
        tip_amount: int = 0,
        order_info: Json | None = None,
    ) -> PaymentResult:
        """Pay an invoice message (a ``BotMessage`` or message id) or an invoice link (a URL string).

        Returns once the bot answered the pre-checkout query (and the successful_payment message was sent)
        or the pre-checkout timeout passed.
        """
        await self._register()
        body: Json = {"user_id": self.user_id, "bot_id": self.bot_id, "tip_amount": tip_amount or None}
        if isinstance(invoice, str):
            body["link"] = invoice
        else:
            body["message_id"] = invoice if isinstance(invoice, int) else invoice.message_id
        if order_info is not None:
            body["order_info"] = order_info
        return PaymentResult(dict(await self.client.post("pay", body)))

    async def open_link(self, url: str) -> Json:
        """Press a t.me link (e.g. a Copy button's URL): ``t.me/<bot>?start=<payload>`` becomes
        ``/start <payload>`` in this user's chat with that bot. Returns the control API's answer
        (``type`` "bot" with ``message`` and ``update_id``, or "chat" for a public chat's link)."""
        await self._register()
        language = self._profile.get("language_code")
        return await self.client.open_link(self.user_id, url, language_code=language)

    async def post_in(self, chat_id: int | str, text: str, *, reply_to_message_id: int | None = None) -> Json:
        """Post in a channel this user runs, or write in a group this user is in; returns the message."""
        await self._register()
        return await self.client.post_in(chat_id, self.user_id, text, reply_to_message_id=reply_to_message_id)

    async def block(self, blocked: bool = True) -> None:
        await self.client.post("block", {"user_id": self.user_id, "blocked": blocked, "bot_id": self.bot_id})

    async def download(self, message: BotMessage) -> bytes:
        if message.file_url is None:
            raise ValueError("the message has no file")
        return await self.client.download(message.file_url)

    # ------------------------------------------------------------------------------------------ reading

    @property
    def history(self) -> list[BotMessage]:
        """Every bot message seen so far (latest version, deleted ones excluded), oldest first."""
        return list(self._history.values())

    async def _pump(self, wait: float) -> None:
        params: Json = {"user_id": self.user_id, "since": self._cursor, "timeout": round(max(wait, 0.0), 3)}
        params["bot_id"] = self.bot_id
        result = await self.client.request("GET", "chat", params=params)
        self.keyboard = result.get("keyboard")
        for event in result["events"]:
            self._cursor = max(self._cursor, int(event["seq"]))
            kind = event["type"]
            if kind in ("message", "edit"):
                message = event["message"]
                sender = message.get("from") or {}
                if not sender.get("is_bot"):
                    continue
                bot_message = BotMessage(message, edited=kind == "edit")
                self._history[bot_message.message_id] = bot_message
                self._queue.append(bot_message)
            elif kind == "delete":
                self._history.pop(int(event["message_id"]), None)
                self.deleted.append(int(event["message_id"]))
            elif kind == "chat_action":
                self.chat_actions.append(str(event["action"]))
            elif kind == "callback_answer":
                self.callback_answers[str(event["callback_query_id"])] = event
            elif kind == "payment":
                self.payment_events.append(event)
        self._cursor = max(self._cursor, int(result["seq"]))

    async def refresh(self) -> None:
        """Read all events that happened so far without waiting."""
        await self._pump(0)

    async def next_message(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 (the README's API)
        predicate: Predicate | None = None,
    ) -> BotMessage:
        """The next bot message or edit not returned before; with ``predicate``, skips (consumes) others."""
        deadline = time.monotonic() + timeout
        first = True
        while True:
            while self._queue:
                message = self._queue.popleft()
                if predicate is None or predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0 and not first:
                what = "matching bot message" if predicate else "bot message"
                raise TimeoutError(f"no {what} for user {self.user_id} within {timeout}s")
            first = False
            await self._pump(min(max(remaining, 0.0), self.POLL_SLICE))

    async def wait_for(self, predicate: Predicate, timeout: float = 5.0) -> BotMessage:  # noqa: ASYNC109
        return await self.next_message(timeout, predicate)

    async def expect_silence(self, seconds: float) -> None:
        """Fail (AssertionError) if the bot sends or edits anything within ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            if self._queue:
                raise AssertionError(f"expected silence, but the bot sent: {self._queue[0].text!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await self._pump(min(remaining, self.POLL_SLICE))

    async def callback_answer(self, callback_query_id: str, timeout: float = 5.0) -> Json:  # noqa: ASYNC109
        """Wait until the bot answers a callback query; returns the event (text, show_alert, url)."""
        deadline = time.monotonic() + timeout
        while callback_query_id not in self.callback_answers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"callback query {callback_query_id} not answered within {timeout}s")
            await self._pump(min(remaining, self.POLL_SLICE))
        return self.callback_answers[callback_query_id]

    async def sleep_until_idle(self, quiet: float = 0.2, limit: float = 5.0) -> None:
        """Wait (at most ``limit`` s) until the bot was quiet for ``quiet`` s; messages stay queued."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = len(self._queue)
            await self._pump(quiet)
            if len(self._queue) == before:
                return
        await asyncio.sleep(0)
