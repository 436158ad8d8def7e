"""Bot API method registry and the helpers the method modules share."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from . import errors
from .errors import ApiError, bad_request, forbidden
from .markup import ParseError, check_link, finalize, parse, utf16_len, validate_entities
from .params import Params
from .state import Bot, Chat, Conversation, Json, State, StoredMessage

if TYPE_CHECKING:
    import aiohttp


@dataclass
class Settings:
    callback_query_timeout: float = 15.0  # seconds until an unanswered callback query is "too old"
    pre_checkout_timeout: float = 10.0  # seconds the bot has to answer a pre-checkout query
    webhook_retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
    webhook_timeout: float = 10.0
    max_poll_timeout: float = 50.0
    url_fetch_timeout: float = 5.0


class WebhookControl(Protocol):
    def start(self, bot: Bot) -> None: ...
    def stop(self, bot: Bot) -> None: ...


@dataclass
class Described:
    """A successful result that also carries a ``description`` (e.g. setWebhook's "Webhook was set")."""

    result: Any
    description: str


@dataclass
class ApiContext:
    state: State
    settings: Settings
    webhooks: WebhookControl
    http: Callable[[], aiohttp.ClientSession]

    def now_monotonic(self) -> float:
        return time.monotonic()


Handler = Callable[[ApiContext, Bot, Params], Awaitable[Any]]
METHODS: dict[str, Handler] = {}


def method(*names: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        for name in names:
            METHODS[name.lower()] = func
        return func

    return register


# ------------------------------------------------------------------------------------------------ chats


def target_conversation(ctx: ApiContext, bot: Bot, p: Params, name: str = "chat_id") -> Conversation:
    """The conversation a bot wants to send to, with Telegram's errors for unknown/blocked/unstarted users."""
    chat_id = p.chat_id(name)
    conv = find_conversation(ctx, bot, chat_id)
    if conv.chat.type == "private":
        user = ctx.state.users[conv.chat.id]
        if bot.id in user.blocked_bots:
            raise forbidden(errors.BLOCKED)
        if bot.id not in user.started_bots:
            raise forbidden("bot can't initiate conversation with a user")
    elif conv.chat.type == "channel":
        check_can_post(bot, conv.chat)
    else:
        member = conv.chat.members.get(bot.id) or {}
        if member.get("status") == "restricted" and not member.get("can_send_messages"):
            raise bad_request("not enough rights to send text messages to the chat")
    return conv


def check_can_post(bot: Bot, chat: Chat) -> None:
    """In a channel only administrators with can_post_messages post (Telegram's error otherwise)."""
    member = chat.members.get(bot.id) or {}
    status = member.get("status")
    if status == "creator" or (status == "administrator" and member.get("can_post_messages")):
        return
    raise bad_request("need administrator rights in the channel chat")


def find_conversation(ctx: ApiContext, bot: Bot, chat_id: int | str) -> Conversation:
    if isinstance(chat_id, str):
        chat = next((c for c in ctx.state.chats.values() if c.username and f"@{c.username}" == chat_id), None)
        if chat is None:
            raise bad_request(errors.CHAT_NOT_FOUND)
        chat_id = chat.id
    if chat_id == bot.id:
        raise bad_request(errors.CHAT_NOT_FOUND)
    conv = ctx.state.conversation(bot, chat_id)
    if conv is None:
        chat = ctx.state.chats.get(chat_id)
        member = chat.members.get(bot.id) if chat is not None else None
        if chat is not None and member is not None:
            # the bot was in the chat once: Telegram says why it cannot act there now
            if member.get("status") == "kicked":
                raise forbidden(f"bot was kicked from the {chat.kind_name}")
            raise forbidden(f"bot is not a member of the {chat.kind_name}")
        raise bad_request(errors.CHAT_NOT_FOUND)
    return conv


def bot_message(
    ctx: ApiContext, bot: Bot, p: Params, *, not_found: str = errors.EDIT_NOT_FOUND
) -> tuple[Conversation, StoredMessage]:
    """The message named by chat_id + message_id (inline_message_id is not supported)."""
    if p.get("inline_message_id") is not None:
        raise bad_request("MESSAGE_ID_INVALID")
    conv = find_conversation(ctx, bot, p.chat_id())
    message_id = p.required_integer("message_id", "message identifier is not specified")
    stored = conv.messages.get(message_id)
    if stored is None:
        raise bad_request(not_found)
    return conv, stored


# ------------------------------------------------------------------------------------------------ text


def formatted(
    p: Params,
    field: str,
    entities_field: str,
    limit: int,
    *,
    required: bool,
    empty_error: str = errors.TEXT_EMPTY,
    long_error: str = errors.TEXT_TOO_LONG,
) -> tuple[str, list[Json]]:
    """Text + entities of a message or caption, as Telegram would store them."""
    raw = p.string(field)
    if raw is None:
        if required:
            raise bad_request(empty_error)
        return "", []
    try:
        explicit = p.json(entities_field)
        if explicit is not None:
            text, entities = finalize(raw, validate_entities(raw, explicit))
        else:
            text, entities = parse(raw, p.string("parse_mode"))
    except ParseError as exc:
        if str(exc) == "Unsupported parse_mode":
            raise bad_request("unsupported parse_mode") from None
        raise bad_request(f"can't parse entities: {exc}") from None
    if not text and required:
        raise bad_request(empty_error)
    if utf16_len(text) > limit:
        raise bad_request(long_error)
    return text, entities


def text_fields(text: str, entities: list[Json], *, caption: bool = False) -> Json:
    if not text:
        return {}
    if caption:
        return {"caption": text, "caption_entities": entities} if entities else {"caption": text}
    return {"text": text, "entities": entities} if entities else {"text": text}


# ------------------------------------------------------------------------------------------------ markup

_INLINE_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "copy_text", "callback_game", "pay",
)  # fmt: skip


def reply_markup(p: Params, *, inline_only: bool = False) -> tuple[Json | None, Json | None]:
    """(inline keyboard for the message, reply keyboard/remove/force reply for the chat)."""
    markup = p.json("reply_markup", "reply keyboard markup")
    if markup is None:
        return None, None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        return inline_keyboard(markup["inline_keyboard"]), None
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in markup:
        return None, _reply_keyboard(markup)
    if markup.get("remove_keyboard"):
        return None, {"remove_keyboard": True, **({"selective": True} if markup.get("selective") else {})}
    if markup.get("force_reply"):
        kept = {k: markup[k] for k in ("input_field_placeholder", "selective") if k in markup}
        return None, {"force_reply": True, **kept}
    raise bad_request("can't parse reply keyboard markup JSON object")


def inline_keyboard(rows: Any) -> Json | None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
    result: list[list[Json]] = []
    for row in rows:
        buttons: list[Json] = []
        for button in row:
            if not isinstance(button, dict):
                raise bad_request(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            text = button.get("text")
            if not isinstance(text, str):
                raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
            if not text.strip():
                raise bad_request("BUTTON_TEXT_INVALID")
            actions = [k for k in _INLINE_ACTIONS if button.get(k) is not None]
            if not actions:
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            clean: Json = {"text": text}
            for key in actions:
                clean[key] = button[key]
            if "callback_data" in clean:
                data = clean["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= 64:
                    raise bad_request("BUTTON_DATA_INVALID")
            if "url" in clean and (not isinstance(clean["url"], str) or check_link(clean["url"]) is None):
                raise bad_request("BUTTON_URL_INVALID")
            buttons.append(clean)
        if buttons:
            result.append(buttons)
    return {"inline_keyboard": result} if result else None


def _reply_keyboard(markup: Json) -> Json:
    rows = markup["keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse reply keyboard markup JSON object")
    keyboard: list[list[Json]] = []
    for row in rows:
        buttons: list[Json] = []
        for button in row:
            if isinstance(button, str):
                button = {"text": button}
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise bad_request('can\'t parse keyboard button: Field "text" must be of type String')
            buttons.append(dict(button))
        if buttons:
            keyboard.append(buttons)
    result: Json = {"keyboard": keyboard}
    for key in (
        "is_persistent",
        "resize_keyboard",
        "one_time_keyboard",
        "input_field_placeholder",
        "selective",
    ):
        if markup.get(key) is not None:
            result[key] = markup[key]
    return result


# ------------------------------------------------------------------------------------------------ replies


def reply_fields(conv: Conversation, p: Params) -> Json:
    params = p.json("reply_parameters")
    message_id: int | None
    allow_without = p.flag("allow_sending_without_reply")
    if isinstance(params, dict):
        try:
            message_id = int(params["message_id"])
        except (KeyError, TypeError, ValueError):
            raise bad_request("can't parse ReplyParameters JSON object") from None
        allow_without = bool(params.get("allow_sending_without_reply", allow_without))
    else:
        message_id = p.integer("reply_to_message_id")
    if message_id is None:
        return {}
    stored = conv.messages.get(message_id)
    if stored is None:
        if allow_without:
            return {}
        raise bad_request("message to be replied not found")
    replied = {k: v for k, v in stored.message.items() if k != "reply_to_message"}
    return {"reply_to_message": replied}


def extra_fields(p: Params) -> Json:
    fields: Json = {}
    options = p.json("link_preview_options")
    if isinstance(options, dict) and options:
        fields["link_preview_options"] = options
    elif p.flag("disable_web_page_preview"):
        fields["link_preview_options"] = {"is_disabled": True}
    if p.flag("protect_content"):
        fields["has_protected_content"] = True
    effect = p.string("message_effect_id")
    if effect:
        fields["effect_id"] = effect
    return fields


def check_action_allowed(ctx: ApiContext, bot: Bot, conv: Conversation) -> None:
    if conv.chat.type == "private":
        user = ctx.state.users.get(conv.chat.id)
        if user is not None and bot.id in user.blocked_bots:
            raise forbidden(errors.BLOCKED)


def api_error(code: int, description: str, retry_after: int | None = None) -> ApiError:
    return ApiError(code, description, retry_after=retry_after)
