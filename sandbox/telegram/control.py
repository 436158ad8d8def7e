"""The control API (``/sandbox/api/...``): JSON over HTTP for tests and the web chat to act as users."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .actions import ActionError
from .api_bot import effective_commands
from .state import Bot, Chat, Conversation, wait_signal

if TYPE_CHECKING:
    from .server import TelegramEmulator

ControlHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_CHAT_TIMEOUT = 60.0


def _error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


async def _body(request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.body_exists:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ActionError("the body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ActionError("the body must be a JSON object")
            data.update(body)
        else:
            form = await request.post()
            for key, value in form.items():
                data[key] = value
    return data


def _int(data: dict[str, Any], name: str, default: int | None = None) -> int:
    value = data.get(name)
    if value is None or value == "":
        if default is None:
            raise ActionError(f"{name} is required")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ActionError(f"{name} must be an integer") from None


def _opt_int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    return _int(data, name)


def _opt_str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else str(value)


def _flag(data: dict[str, Any], name: str, default: bool) -> bool:
    value = data.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes", "on")


def setup_control_routes(app: web.Application, emu: TelegramEmulator) -> None:
    actions = emu.actions
    chats = emu.chats
    state = emu.state

    def guarded(func: Callable[[dict[str, Any], web.Request], Awaitable[Any]]) -> ControlHandler:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                data = await _body(request)
                result = await func(data, request)
            except ActionError as exc:
                return _error(str(exc))
            except KeyError as exc:
                return _error(str(exc.args[0]) if exc.args else "not found", 404)
            if isinstance(result, web.StreamResponse):
                return result
            return web.json_response(result, dumps=_dumps)

        return handler

    def bot_of(data: dict[str, Any]) -> Bot:
        try:
            return state.default_bot(_opt_int(data, "bot_id"))
        except KeyError as exc:
            raise ActionError(str(exc.args[0])) from None

    def conversation_of(data: dict[str, Any]) -> tuple[Bot, Conversation]:
        bot = bot_of(data)
        user = state.ensure_user(_int(data, "user_id"))
        conv = state.conversation(bot, user.id)
        assert conv is not None
        return bot, conv

    async def bots(data: dict[str, Any], request: web.Request) -> Any:
        return [
            {"id": b.id, "username": b.user.username, "first_name": b.user.first_name}
            for b in state.bots.values()
        ]

    async def users(data: dict[str, Any], request: web.Request) -> Any:
        user = actions.add_user(
            _int(data, "user_id"),
            _opt_str(data, "first_name"),
            _opt_str(data, "username"),
            _opt_str(data, "language_code"),
            _opt_str(data, "last_name"),
            started=_flag(data, "started", True),
            bot_id=_opt_int(data, "bot_id"),
        )
        return user.to_api()

    async def send(data: dict[str, Any], request: web.Request) -> Any:
        if "text" not in data:
            raise ActionError("text is required")
        sent = actions.send(
            _int(data, "user_id"),
            str(data["text"]),
            bot_id=_opt_int(data, "bot_id"),
            first_name=_opt_str(data, "first_name"),
            username=_opt_str(data, "username"),
            language_code=_opt_str(data, "language_code"),
            reply_to_message_id=_opt_int(data, "reply_to_message_id"),
        )
        return {"update_id": sent.update_id, "message": state.display(sent.message, None)}

    async def press(data: dict[str, Any], request: web.Request) -> Any:
        update_id, query_id = actions.press(
            _int(data, "user_id"),
            _int(data, "message_id"),
            str(data.get("callback_data", "")),
            bot_id=_opt_int(data, "bot_id"),
            chat_id=_opt_int(data, "chat_id"),
        )
        return {"update_id": update_id, "callback_query_id": query_id}

    async def edit(data: dict[str, Any], request: web.Request) -> Any:
        update_id = actions.edit(
            _int(data, "user_id"),
            _int(data, "message_id"),
            str(data.get("text", "")),
            bot_id=_opt_int(data, "bot_id"),
        )
        return {"update_id": update_id}

    async def upload(data: dict[str, Any], request: web.Request) -> Any:
        file = data.get("file")
        if not isinstance(file, web.FileField):
            raise ActionError("file is required (multipart/form-data)")
        sent = actions.upload(
            _int(data, "user_id"),
            str(data.get("kind", "document")),
            file.file.read(),
            file.filename,
            duration=_opt_int(data, "duration"),
            caption=_opt_str(data, "caption"),
            mime_type=_opt_str(data, "mime_type")
            or (file.content_type if file.content_type != "application/octet-stream" else None),
            bot_id=_opt_int(data, "bot_id"),
        )
        return {"update_id": sent.update_id, "message": state.display(sent.message, None)}

    async def raw_update(data: dict[str, Any], request: web.Request) -> Any:
        update = data.get("update")
        if isinstance(update, str):
            try:
                update = json.loads(update)
            except ValueError:
                raise ActionError("update must be a JSON object") from None
        if not isinstance(update, dict):
            raise ActionError("update must be a JSON object")
        return {"update_id": actions.raw_update(update, bot_id=_opt_int(data, "bot_id"))}

    async def block(data: dict[str, Any], request: web.Request) -> Any:
        update_id = actions.block(
            _int(data, "user_id"), _flag(data, "blocked", True), _opt_int(data, "bot_id")
        )
        return {"update_id": update_id}

    def group_of(data: dict[str, Any]) -> Chat | None:
        """The group or channel named by ``chat_id`` (None for the user's private chat with the bot); a
        user who is not in it may read it only if it is public (has a username)."""
        chat_id = data.get("chat_id")
        if chat_id is None or chat_id == "" or str(chat_id) == str(data.get("user_id")):
            return None
        chat = chats.chat(str(chat_id))
        user_id = _opt_int(data, "user_id")
        if user_id is not None and not chat.is_member(user_id) and not chat.username:
            raise ActionError("the user is not in that chat")
        return chat

    async def chat(data: dict[str, Any], request: web.Request) -> Any:
        group = group_of(data)
        if group is not None:
            return await _chat_events(data, None, state.chat_conversation(group))
        bot, conv = conversation_of(data)
        return await _chat_events(data, bot, conv)

    async def _chat_events(data: dict[str, Any], bot: Bot | None, conv: Conversation) -> Any:
        since = _int(data, "since", 0)
        user_id = _opt_int(data, "user_id")
        limit = max(1, min(_int(data, "limit", 1000), 10000))
        timeout = min(max(float(data.get("timeout") or 0), 0.0), MAX_CHAT_TIMEOUT)
        events = conv.events_since(since, limit)
        if not events and timeout > 0 and not state.closing:
            handle = conv.signal.wait_handle()
            events = conv.events_since(since, limit)
            if not events:
                await wait_signal(handle, timeout)
                events = conv.events_since(since, limit)
        seq = events[-1]["seq"] if events else since
        if bot is None:
            return {
                "seq": seq,
                "events": events,
                "keyboard": None,
                "chat": chats.describe(conv.chat, user_id),
            }
        return {"seq": seq, "events": events, "keyboard": conv.reply_keyboard, "bot_id": bot.id}

    async def callback_answers(data: dict[str, Any], request: web.Request) -> Any:
        bot = bot_of(data)
        user_id = _int(data, "user_id")
        now = emu.ctx.now_monotonic()
        timeout = emu.settings.callback_query_timeout
        return [
            q.to_control(now - q.created > timeout)
            for q in bot.callback_queries.values()
            if q.user_id == user_id
        ]

    async def bot_state(data: dict[str, Any], request: web.Request) -> Any:
        bot = bot_of(data)
        hook = bot.webhook
        return {
            "id": bot.id,
            "username": bot.user.username,
            "commands": {
                (scope if not lang else f"{scope}/{lang}"): cmds
                for (scope, lang), cmds in bot.commands.items()
            },
            "menu_buttons": {("default" if k is None else str(k)): v for k, v in bot.menu_buttons.items()},
            "webhook": None
            if hook is None
            else {
                "url": hook.url,
                "has_secret": hook.secret_token is not None,
                "last_error_date": hook.last_error_date,
                "last_error_message": hook.last_error_message,
            },
            "allowed_updates": sorted(bot.allowed_updates) if bot.allowed_updates else None,
            "pending": bot.pending_count,
            "calls": len(bot.calls),
        }

    async def commands(data: dict[str, Any], request: web.Request) -> Any:
        bot = bot_of(data)
        user_id = _int(data, "user_id")
        user = state.users.get(user_id)
        lang = _opt_str(data, "language_code") or (user.language_code if user else None)
        menu = bot.menu_buttons.get(user_id) or bot.menu_buttons.get(None) or {"type": "commands"}
        return {"commands": effective_commands(bot, user_id, lang), "menu_button": menu}

    async def calls(data: dict[str, Any], request: web.Request) -> Any:
        bot = bot_of(data)
        since = _int(data, "since", 0)
        return [
            {"method": c.method, "params": c.params, "chat_id": c.chat_id, "at": c.at, "error": c.error}
            for c in bot.calls[since:]
        ]

    async def fail_next(data: dict[str, Any], request: web.Request) -> Any:
        emu.fail_next(
            str(data.get("method", "*")),
            _int(data, "error_code", 429),
            _opt_str(data, "description"),
            _int(data, "retry_after", 1),
            _int(data, "times", 1),
            bot_id=_opt_int(data, "bot_id"),
        )
        return {"ok": True}

    async def messages(data: dict[str, Any], request: web.Request) -> Any:
        group = group_of(data)
        conv = state.chat_conversation(group) if group is not None else conversation_of(data)[1]
        by_bot = data.get("by_bot")
        wanted = None if by_bot is None or by_bot == "" else _flag(data, "by_bot", True)
        return [
            state.display_stored(s) for s in conv.messages.values() if wanted is None or s.by_bot == wanted
        ]

    # ---------------------------------------------------------------------------------- groups, channels

    async def create_chat(data: dict[str, Any], request: web.Request) -> Any:
        chat = chats.create(
            str(data.get("type") or "channel"),
            str(data.get("title") or ""),
            _int(data, "owner_id"),
            username=_opt_str(data, "username"),
            chat_id=_opt_int(data, "chat_id"),
            signatures=_flag(data, "signatures", False),
            description=_opt_str(data, "description"),
        )
        return chats.describe(chat, chat_owner(chat))

    def chat_owner(chat: Chat) -> int | None:
        owner = next((m for m in chat.members.values() if m.get("status") == "creator"), None)
        return int(owner["user"]["id"]) if owner else None

    async def list_chats(data: dict[str, Any], request: web.Request) -> Any:
        return chats.chats_of(_opt_int(data, "user_id"))

    async def chat_info(data: dict[str, Any], request: web.Request) -> Any:
        chat = chats.chat(str(data.get("chat_id", "")))
        return chats.describe(chat, _opt_int(data, "user_id"))

    async def chat_member(data: dict[str, Any], request: web.Request) -> Any:
        rights = data.get("rights")
        if isinstance(rights, str):
            try:
                rights = json.loads(rights)
            except ValueError:
                raise ActionError("rights must be a JSON object") from None
        if rights is not None and not isinstance(rights, dict):
            raise ActionError("rights must be an object of can_* flags")
        user_id = _opt_int(data, "user_id")
        if user_id is None:
            user_id = bot_of(data).id  # no user: the bot's own membership
        delivery = chats.set_member(
            str(data.get("chat_id", "")),
            user_id,
            str(data.get("status") or "member"),
            rights=rights,
            by=_opt_int(data, "by"),
            custom_title=_opt_str(data, "custom_title"),
            until_date=_opt_int(data, "until_date"),
        )
        chat = chats.chat(str(data.get("chat_id", "")))
        shown = None if delivery.message is None else state.display(delivery.message, None)
        return {**delivery.to_control(shown), "member": chat.members.get(user_id)}

    async def post(data: dict[str, Any], request: web.Request) -> Any:
        if "text" not in data:
            raise ActionError("text is required")
        delivery = chats.post(
            str(data.get("chat_id", "")),
            _int(data, "user_id"),
            str(data["text"]),
            reply_to_message_id=_opt_int(data, "reply_to_message_id"),
        )
        assert delivery.message is not None
        return delivery.to_control(state.display(delivery.message, None, _int(data, "user_id")))

    async def edit_post(data: dict[str, Any], request: web.Request) -> Any:
        delivery = chats.edit_post(
            str(data.get("chat_id", "")),
            _int(data, "user_id"),
            _int(data, "message_id"),
            str(data.get("text", "")),
        )
        assert delivery.message is not None
        return delivery.to_control(state.display(delivery.message, None))

    async def open_link(data: dict[str, Any], request: web.Request) -> Any:
        url = _opt_str(data, "url")
        if not url:
            raise ActionError("url is required")
        return chats.open_link(_int(data, "user_id"), url, language_code=_opt_str(data, "language_code"))

    async def pay(data: dict[str, Any], request: web.Request) -> Any:
        order_info = data.get("order_info")
        if order_info is not None and not isinstance(order_info, dict):
            raise ActionError("order_info must be an object")
        outcome = await actions.pay(
            _int(data, "user_id"),
            _opt_int(data, "message_id"),
            link=_opt_str(data, "link"),
            bot_id=_opt_int(data, "bot_id"),
            tip_amount=_int(data, "tip_amount", 0),
            order_info=order_info,
        )
        result = outcome.to_control()
        if result["message"] is not None:
            result["message"] = state.display(result["message"], None)
        return result

    async def payments(data: dict[str, Any], request: web.Request) -> Any:
        bot = bot_of(data)
        user_id = _opt_int(data, "user_id")
        return [
            p.to_control() for p in bot.payments.payments.values() if user_id is None or p.user_id == user_id
        ]

    async def pre_checkout_queries(data: dict[str, Any], request: web.Request) -> Any:
        bot = bot_of(data)
        user_id = _opt_int(data, "user_id")
        return [
            q.to_control() for q in bot.payments.queries.values() if user_id is None or q.user_id == user_id
        ]

    async def invoices(data: dict[str, Any], request: web.Request) -> Any:
        bot = bot_of(data)
        return [i.to_control() for i in [*bot.payments.invoices.values(), *bot.payments.links.values()]]

    async def redeliver_payment(data: dict[str, Any], request: web.Request) -> Any:
        charge_id = _opt_str(data, "telegram_payment_charge_id")
        if not charge_id:
            raise ActionError("telegram_payment_charge_id is required")
        update_id = actions.redeliver_payment(
            charge_id, same_update_id=_flag(data, "same_update_id", True), bot_id=_opt_int(data, "bot_id")
        )
        return {"update_id": update_id}

    async def redeliver_update(data: dict[str, Any], request: web.Request) -> Any:
        update = data.get("update")
        if isinstance(update, str):
            try:
                update = json.loads(update)
            except ValueError:
                raise ActionError("update must be a JSON object") from None
        if not isinstance(update, dict):
            raise ActionError("update must be a JSON object")
        return {"update_id": actions.redeliver_update(update, bot_id=_opt_int(data, "bot_id"))}

    routes: list[tuple[str, str, Callable[[dict[str, Any], web.Request], Awaitable[Any]]]] = [
        ("GET", "bots", bots),
        ("POST", "users", users),
        ("POST", "send", send),
        ("POST", "press", press),
        ("POST", "edit", edit),
        ("POST", "upload", upload),
        ("POST", "raw_update", raw_update),
        ("POST", "block", block),
        ("GET", "chat", chat),
        ("GET", "messages", messages),
        ("GET", "callback_answers", callback_answers),
        ("GET", "bot_state", bot_state),
        ("GET", "commands", commands),
        ("GET", "calls", calls),
        ("POST", "fail_next", fail_next),
        ("POST", "pay", pay),
        ("GET", "payments", payments),
        ("GET", "pre_checkout_queries", pre_checkout_queries),
        ("GET", "invoices", invoices),
        ("POST", "redeliver_payment", redeliver_payment),
        ("POST", "redeliver_update", redeliver_update),
        ("POST", "chats", create_chat),
        ("GET", "chats", list_chats),
        ("GET", "chat_info", chat_info),
        ("POST", "chat_member", chat_member),
        ("POST", "post", post),
        ("POST", "edit_post", edit_post),
        ("POST", "open_link", open_link),
    ]
    for http_method, name, func in routes:
        app.router.add_route(http_method, f"/sandbox/api/{name}", guarded(func))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
