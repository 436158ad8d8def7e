"""Bot API: identity, updates (getUpdates / webhooks), commands, menu button, names, chat info."""

from __future__ import annotations

import asyncio
import itertools
import re
from typing import Any

from . import errors
from .api import ApiContext, Described, api_error, find_conversation, method
from .errors import bad_request
from .params import Params
from .state import UPDATE_TYPES, Bot, Json, WebhookConfig, wait_signal

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_LANG_RE = re.compile(r"^[a-z]{2}$")


@method("getMe")
async def get_me(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    return {
        **bot.user.to_api(),
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


@method("logOut", "close")
async def log_out(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    return True


# ------------------------------------------------------------------------------------------------ updates


def _apply_allowed_updates(bot: Bot, p: Params) -> None:
    """Store allowed_updates if given (an empty list restores the default set)."""
    raw = p.json("allowed_updates")
    if raw is None:
        return
    if not isinstance(raw, list):
        raise bad_request("can't parse allowed_updates JSON array")
    kinds = frozenset(str(kind) for kind in raw if str(kind) in UPDATE_TYPES)
    bot.allowed_updates = kinds or None


@method("getUpdates")
async def get_updates(ctx: ApiContext, bot: Bot, p: Params) -> list[Json]:
    if bot.webhook is not None:
        raise api_error(409, errors.WEBHOOK_CONFLICT)
    offset = p.integer("offset")
    limit = min(max(p.integer("limit") or 100, 1), 100)
    timeout = min(max(p.number("timeout") or 0.0, 0.0), ctx.settings.max_poll_timeout)
    _apply_allowed_updates(bot, p)
    if offset is not None and offset != 0:
        ctx.state.confirm_updates(bot, offset)
    bot.poll_generation += 1
    generation = bot.poll_generation
    bot.updates_signal.fire()  # wake an older poller so that it reports the conflict
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        handle = bot.updates_signal.wait_handle()
        if generation != bot.poll_generation:
            raise api_error(409, errors.POLL_CONFLICT)
        if bot.webhook is not None:
            raise api_error(409, errors.WEBHOOK_CONFLICT)
        if bot.redeliveries or bot.updates:
            again: list[Json] = []
            while bot.redeliveries and len(again) < limit:
                again.append(bot.redeliveries.popleft())
            fresh = [update for _, _, update in itertools.islice(bot.updates, limit - len(again))]
            return again + fresh
        remaining = deadline - loop.time()
        if remaining <= 0 or ctx.state.closing:
            return []
        await wait_signal(handle, remaining)


@method("setWebhook")
async def set_webhook(ctx: ApiContext, bot: Bot, p: Params) -> Described:
    url = (p.string("url") or "").strip()
    if not url:
        return await delete_webhook(ctx, bot, p)
    if not url.startswith(("http://", "https://")):
        raise bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
    secret = p.string("secret_token")
    if secret is not None and secret != "" and not _SECRET_RE.match(secret):
        raise bad_request("secret token contains unallowed characters")
    max_connections = p.integer("max_connections") or 40
    if not 1 <= max_connections <= 100:
        raise bad_request("bad webhook: max_connections must be between 1 and 100")
    _apply_allowed_updates(bot, p)
    if p.flag("drop_pending_updates"):
        bot.updates.clear()
        bot.redeliveries.clear()
    same = bot.webhook is not None and bot.webhook.url == url
    bot.webhook = WebhookConfig(url=url, secret_token=secret or None, max_connections=max_connections)
    bot.webhook.ip_address = p.string("ip_address")
    bot.poll_generation += 1
    bot.updates_signal.fire()
    ctx.webhooks.start(bot)
    return Described(True, "Webhook is already set" if same else "Webhook was set")


@method("deleteWebhook")
async def delete_webhook(ctx: ApiContext, bot: Bot, p: Params) -> Described:
    if p.flag("drop_pending_updates"):
        bot.updates.clear()
        bot.redeliveries.clear()
    if bot.webhook is None:
        return Described(True, "Webhook is already deleted")
    bot.webhook = None
    ctx.webhooks.stop(bot)
    return Described(True, "Webhook was deleted")


@method("getWebhookInfo")
async def get_webhook_info(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    hook = bot.webhook
    info: Json = {"url": hook.url if hook else "", "has_custom_certificate": False}
    info["pending_update_count"] = bot.pending_count
    if hook is not None:
        if hook.ip_address:
            info["ip_address"] = hook.ip_address
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message or ""
        info["max_connections"] = hook.max_connections
        if bot.allowed_updates:
            info["allowed_updates"] = sorted(bot.allowed_updates)
    return info


# ------------------------------------------------------------------------------------------------ commands


def scope_key(raw: Any) -> str:
    """A key for a BotCommandScope: default, all_private_chats, chat:<id>, chat_member:<id>:<user>..."""
    if raw is None:
        return "default"
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise bad_request("can't parse BotCommandScope JSON object")
    kind = raw["type"]
    if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
        return str(kind)
    if kind in ("chat", "chat_administrators", "chat_member"):
        chat_id = raw.get("chat_id")
        if chat_id is None:
            raise bad_request("chat_id is empty")
        if kind == "chat_member":
            return f"chat_member:{chat_id}:{int(raw.get('user_id', 0))}"
        return f"{kind}:{chat_id}"
    raise bad_request("wrong bot command scope type specified")


def _language(p: Params) -> str:
    lang = (p.string("language_code") or "").strip()
    if lang and not _LANG_RE.match(lang):
        raise bad_request("invalid language code specified")
    return lang


@method("setMyCommands")
async def set_my_commands(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    commands = p.json("commands", "commands")
    if not isinstance(commands, list):
        raise bad_request("commands is empty" if commands is None else "can't parse commands JSON object")
    if len(commands) > 100:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    clean: list[Json] = []
    for item in commands:
        if not isinstance(item, dict):
            raise bad_request("can't parse BotCommand JSON object")
        command = str(item.get("command", "")).removeprefix("/")
        description = str(item.get("description", "")).strip()
        if not _COMMAND_RE.match(command):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(description) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        clean.append({"command": command, "description": description})
    key = (scope_key(p.json("scope", "BotCommandScope")), _language(p))
    if clean:
        bot.commands[key] = clean
    else:
        bot.commands.pop(key, None)
    return True


@method("getMyCommands")
async def get_my_commands(ctx: ApiContext, bot: Bot, p: Params) -> list[Json]:
    key = (scope_key(p.json("scope", "BotCommandScope")), _language(p))
    return list(bot.commands.get(key, []))


@method("deleteMyCommands")
async def delete_my_commands(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    bot.commands.pop((scope_key(p.json("scope", "BotCommandScope")), _language(p)), None)
    return True


def effective_commands(bot: Bot, chat_id: int, language_code: str | None) -> list[Json]:
    """The command menu a user sees in his private chat with the bot (Telegram's scope resolution)."""
    lang = (language_code or "")[:2].lower()
    for scope in (f"chat:{chat_id}", "all_private_chats", "default"):
        for key in ((scope, lang), (scope, "")):
            if key in bot.commands:
                return list(bot.commands[key])
    return []


@method("setChatMenuButton")
async def set_chat_menu_button(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    chat_id = p.integer("chat_id")
    button = p.json("menu_button", "MenuButton") or {"type": "default"}
    if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
        raise bad_request("can't parse MenuButton JSON object")
    if chat_id is not None:
        find_conversation(ctx, bot, chat_id)
    if button["type"] == "default":
        bot.menu_buttons.pop(chat_id, None)
    else:
        bot.menu_buttons[chat_id] = dict(button)
    return True


@method("getChatMenuButton")
async def get_chat_menu_button(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    chat_id = p.integer("chat_id")
    button = bot.menu_buttons.get(chat_id) or bot.menu_buttons.get(None) or {"type": "commands"}
    return dict(button)


def _text_setting(kind: str, limit: int) -> None:
    field = kind

    async def setter(ctx: ApiContext, bot: Bot, p: Params) -> bool:
        value = p.string(field) or ""
        if len(value) > limit:
            raise bad_request(f"{field} is too long")
        key = (kind, _language(p))
        if value:
            bot.texts[key] = value
        else:
            bot.texts.pop(key, None)
        if kind == "name" and key[1] == "" and value:
            bot.user.first_name = value
        return True

    async def getter(ctx: ApiContext, bot: Bot, p: Params) -> Json:
        lang = _language(p)
        value = bot.texts.get((kind, lang)) or bot.texts.get((kind, ""))
        if value is None:
            value = bot.user.first_name if kind == "name" else ""
        return {field: value}

    camel = "".join(part.title() for part in kind.split("_"))
    method(f"setMy{camel}")(setter)
    method(f"getMy{camel}")(getter)


_text_setting("name", 64)
_text_setting("description", 512)
_text_setting("short_description", 120)


# ------------------------------------------------------------------------------------------------ chats


@method("getChat")
async def get_chat(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    conv = find_conversation(ctx, bot, p.chat_id())
    ctx.state.refresh_private_chat(conv)
    return conv.chat.full_info()


def _member(ctx: ApiContext, bot: Bot, chat_id: int | str, user_id: int) -> Json:
    conv = find_conversation(ctx, bot, chat_id)
    chat = conv.chat
    user = ctx.state.users.get(user_id) or (
        ctx.state.bots[user_id].user if user_id in ctx.state.bots else None
    )
    if user is None:
        raise bad_request("PARTICIPANT_ID_INVALID")
    if chat.type == "private":
        if user_id not in (chat.id, bot.id):
            raise bad_request("user not found")
        return {"status": "member", "user": user.to_api()}
    member = chat.members.get(user_id)
    if member is None:
        return {"status": "left", "user": user.to_api()}
    return dict(member)


@method("getChatMember")
async def get_chat_member(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    return _member(ctx, bot, p.chat_id(), p.required_integer("user_id", "user_id is empty"))


@method("getChatAdministrators")
async def get_chat_administrators(ctx: ApiContext, bot: Bot, p: Params) -> list[Json]:
    conv = find_conversation(ctx, bot, p.chat_id())
    if conv.chat.type == "private":
        raise bad_request("there are no administrators in the private chat")
    return [dict(m) for m in conv.chat.members.values() if m.get("status") in ("creator", "administrator")]


@method("getChatMemberCount", "getChatMembersCount")
async def get_chat_member_count(ctx: ApiContext, bot: Bot, p: Params) -> int:
    conv = find_conversation(ctx, bot, p.chat_id())
    if conv.chat.type == "private":
        return 2
    return sum(1 for m in conv.chat.members.values() if m.get("status") not in ("left", "kicked"))


@method("getUserProfilePhotos")
async def get_user_profile_photos(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    user_id = p.required_integer("user_id", "user_id is empty")
    if user_id not in ctx.state.users:
        raise bad_request("user not found")
    return {"total_count": 0, "photos": []}
