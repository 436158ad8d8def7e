"""Bot API: sending, editing, deleting, forwarding and copying messages; callback answers; chat actions."""

from __future__ import annotations

from . import errors
from .api import (
    ApiContext,
    bot_message,
    check_action_allowed,
    extra_fields,
    find_conversation,
    formatted,
    method,
    reply_fields,
    reply_markup,
    target_conversation,
    text_fields,
)
from .errors import bad_request
from .params import Params
from .state import Bot, Conversation, Json, StoredMessage, file_id_of

CONTENT_KEYS = (
    "text", "entities", "link_preview_options", "caption", "caption_entities", "show_caption_above_media",
    "photo", "document", "voice", "audio", "video", "video_note", "animation", "sticker", "contact",
    "location", "venue", "dice", "poll",
)  # fmt: skip
CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
    }
)  # fmt: skip


@method("sendMessage")
async def send_message(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    text, entities = formatted(p, "text", "entities", 4096, required=True)
    inline, keyboard = reply_markup(p)
    conv = target_conversation(ctx, bot, p)
    fields = reply_fields(conv, p)
    fields.update(text_fields(text, entities))
    fields.update(extra_fields(p))
    if inline is not None:
        fields["reply_markup"] = inline
    return ctx.state.store_message(conv, bot.user, fields, reply_keyboard=keyboard)


def _edited(ctx: ApiContext, stored: StoredMessage, changes: Json, inline: Json | None) -> Json:
    message = {
        k: v for k, v in stored.message.items() if k not in ("reply_markup", "entities", "caption_entities")
    }
    if "text" not in changes and "entities" in stored.message:
        message["entities"] = stored.message["entities"]
    if "caption" not in changes and "caption_entities" in stored.message:
        message["caption_entities"] = stored.message["caption_entities"]
    message.update(changes)
    message["edit_date"] = ctx.state.now()
    if inline is not None:
        message["reply_markup"] = inline
    return message


def _editable(bot: Bot, stored: StoredMessage) -> None:
    if stored.sender_id != bot.id:
        raise bad_request("message can't be edited")


@method("editMessageText")
async def edit_message_text(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    text, entities = formatted(p, "text", "entities", 4096, required=True)
    inline, _ = reply_markup(p, inline_only=True)
    conv, stored = bot_message(ctx, bot, p)
    _editable(bot, stored)
    old = stored.message
    if "text" not in old:
        raise bad_request("there is no text in the message to edit")
    if old["text"] == text and old.get("entities", []) == entities and old.get("reply_markup") == inline:
        raise bad_request(errors.NOT_MODIFIED)
    changes: Json = {"text": text}
    if entities:
        changes["entities"] = entities
    options = p.json("link_preview_options")
    if isinstance(options, dict) and options:
        changes["link_preview_options"] = options
    message = _edited(ctx, stored, changes, inline)
    if not entities:
        message.pop("entities", None)
    ctx.state.replace_message(conv, stored, message)
    return message


@method("editMessageCaption")
async def edit_message_caption(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    caption, entities = formatted(
        p, "caption", "caption_entities", 1024, required=False, long_error=errors.CAPTION_TOO_LONG
    )
    inline, _ = reply_markup(p, inline_only=True)
    conv, stored = bot_message(ctx, bot, p)
    _editable(bot, stored)
    old = stored.message
    if file_id_of(old) is None:
        raise bad_request("there is no caption in the message to edit")
    if (
        old.get("caption", "") == caption
        and old.get("caption_entities", []) == entities
        and old.get("reply_markup") == inline
    ):
        raise bad_request(errors.NOT_MODIFIED)
    message = _edited(ctx, stored, {}, inline)
    message.pop("caption", None)
    message.pop("caption_entities", None)
    message.update(text_fields(caption, entities, caption=True))
    ctx.state.replace_message(conv, stored, message)
    return message


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    inline, _ = reply_markup(p, inline_only=True)
    conv, stored = bot_message(ctx, bot, p)
    _editable(bot, stored)
    if stored.message.get("reply_markup") == inline:
        raise bad_request(errors.NOT_MODIFIED)
    message = _edited(ctx, stored, {}, inline)
    ctx.state.replace_message(conv, stored, message)
    return message


@method("deleteMessage")
async def delete_message(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    conv = find_conversation(ctx, bot, p.chat_id())
    message_id = p.required_integer("message_id", "message identifier is not specified")
    if not ctx.state.delete_message(conv, message_id):
        raise bad_request(errors.DELETE_NOT_FOUND)
    return True


@method("deleteMessages")
async def delete_messages(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    conv = find_conversation(ctx, bot, p.chat_id())
    ids = p.json("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must be a non-empty list of at most 100 identifiers")
    for message_id in ids:
        ctx.state.delete_message(conv, int(message_id))
    return True


@method("answerCallbackQuery")
async def answer_callback_query(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    query_id = p.required_string("callback_query_id", "QUERY_ID_INVALID")
    record = bot.callback_queries.get(query_id)
    if record is None or record.answered:
        raise bad_request(errors.QUERY_TOO_OLD)
    if ctx.now_monotonic() - record.created > ctx.settings.callback_query_timeout:
        raise bad_request(errors.QUERY_TOO_OLD)
    text = p.string("text")
    if text is not None and len(text) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    record.answered = True
    record.text = text or None
    record.show_alert = p.flag("show_alert")
    record.url = p.string("url")
    conv = ctx.state.conversations.get((bot.id, record.chat_id)) or ctx.state.conversations.get(
        (0, record.chat_id)
    )
    if conv is not None:
        ctx.state.emit(
            conv,
            "callback_answer",
            callback_query_id=record.id,
            text=record.text,
            show_alert=record.show_alert,
            url=record.url,
        )
    return True


@method("sendChatAction")
async def send_chat_action(ctx: ApiContext, bot: Bot, p: Params) -> bool:
    action = p.required_string("action", "action is empty")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    conv = find_conversation(ctx, bot, p.chat_id())
    check_action_allowed(ctx, bot, conv)
    ctx.state.emit(conv, "chat_action", action=action)
    return True


def _content(stored: StoredMessage) -> Json:
    return {k: stored.message[k] for k in CONTENT_KEYS if k in stored.message}


def _source(ctx: ApiContext, bot: Bot, p: Params, not_found: str) -> tuple[Conversation, StoredMessage]:
    conv = find_conversation(ctx, bot, p.chat_id("from_chat_id"))
    message_id = p.required_integer("message_id", "message identifier is not specified")
    stored = conv.messages.get(message_id)
    if stored is None:
        raise bad_request(not_found)
    return conv, stored


def _origin(stored: StoredMessage) -> Json:
    message = stored.message
    if "forward_origin" in message:
        return dict(message["forward_origin"])
    if "sender_chat" in message:
        chat = message["sender_chat"]
        kind = "channel" if chat.get("type") == "channel" else "chat"
        origin: Json = {
            "type": kind,
            "date": message["date"],
            ("chat" if kind == "channel" else "sender_chat"): chat,
        }
        if kind == "channel":
            origin["message_id"] = message["message_id"]
        return origin
    return {"type": "user", "date": message["date"], "sender_user": message["from"]}


@method("forwardMessage")
async def forward_message(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    _, source = _source(ctx, bot, p, "message to forward not found")
    conv = target_conversation(ctx, bot, p)
    fields: Json = {"forward_origin": _origin(source)}
    fields.update(_content(source))
    if p.flag("protect_content"):
        fields["has_protected_content"] = True
    return ctx.state.store_message(conv, bot.user, fields, file_ids=source.file_ids)


@method("copyMessage")
async def copy_message(ctx: ApiContext, bot: Bot, p: Params) -> Json:
    _, source = _source(ctx, bot, p, "message to copy not found")
    inline, keyboard = reply_markup(p)
    conv = target_conversation(ctx, bot, p)
    fields = reply_fields(conv, p)
    content = _content(source)
    if p.get("caption") is not None and "text" not in content:
        caption, entities = formatted(
            p, "caption", "caption_entities", 1024, required=False, long_error=errors.CAPTION_TOO_LONG
        )
        content.pop("caption", None)
        content.pop("caption_entities", None)
        content.update(text_fields(caption, entities, caption=True))
    fields.update(content)
    fields.update(extra_fields(p))
    if inline is not None:
        fields["reply_markup"] = inline
    message = ctx.state.store_message(
        conv, bot.user, fields, file_ids=source.file_ids, reply_keyboard=keyboard
    )
    return {"message_id": message["message_id"]}


def _message_ids(p: Params) -> list[int]:
    ids = p.json("message_ids")
    if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
        raise bad_request("message_ids must be a non-empty list of at most 100 identifiers")
    return sorted(int(i) for i in ids)


async def _forward_many(ctx: ApiContext, bot: Bot, p: Params, *, copying: bool) -> list[Json]:
    source_conv = find_conversation(ctx, bot, p.chat_id("from_chat_id"))
    conv = target_conversation(ctx, bot, p)
    result: list[Json] = []
    for message_id in _message_ids(p):
        stored = source_conv.messages.get(message_id)
        if stored is None:
            continue
        fields: Json = {} if copying else {"forward_origin": _origin(stored)}
        content = _content(stored)
        if copying and p.flag("remove_caption"):
            content.pop("caption", None)
            content.pop("caption_entities", None)
        fields.update(content)
        message = ctx.state.store_message(conv, bot.user, fields, file_ids=stored.file_ids)
        result.append({"message_id": message["message_id"]})
    if not result:
        raise bad_request(
            "there are no messages to forward" if not copying else "there are no messages to copy"
        )
    return result


@method("forwardMessages")
async def forward_messages(ctx: ApiContext, bot: Bot, p: Params) -> list[Json]:
    return await _forward_many(ctx, bot, p, copying=False)


@method("copyMessages")
async def copy_messages(ctx: ApiContext, bot: Bot, p: Params) -> list[Json]:
    return await _forward_many(ctx, bot, p, copying=True)
